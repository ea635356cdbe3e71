"""Door controller behaviour: events, alarms, rate limit, ordering, serialised opens."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from firmware_protocol import get_protocol
from firmware_protocol.base import Request, RequestKind
from locker_agent.boards import DoorState
from locker_agent.doors import DoorEventKind, OpenOutcome
from locker_agent.errors import UnknownDoorError
from locker_agent.serial_link import SerialLink
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.agent.conftest import LOCKS, MakeRig, fast_link, wait_until


def test_opening_then_closing_a_door_emits_opened_then_closed(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)

    result = rig.cabinet.doors.open_door(12)
    rig.wait_event(DoorEventKind.OPENED, 12)
    rig.door(12).close()
    closed = rig.wait_event(DoorEventKind.CLOSED, 12)

    assert result.outcome is OpenOutcome.CONFIRMED
    opened = rig.events_of(DoorEventKind.OPENED, 12)[0]
    confirmed = rig.events_of(DoorEventKind.OPEN_CONFIRMED, 12)[0]
    assert opened.monotonic <= confirmed.monotonic < closed.monotonic
    assert opened.wall <= closed.wall
    assert (closed.address.board, closed.address.lock) == (2, 4)
    assert not rig.events_of(DoorEventKind.FORCED_OPEN)
    assert rig.cabinet.doors.state(12) is DoorState.CLOSED


def test_door_opened_without_a_command_raises_forced_open(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")

    rig.door(5).force_open()

    forced = rig.wait_event(DoorEventKind.FORCED_OPEN, 5)
    assert rig.events_of(DoorEventKind.OPENED, 5)
    assert "without a command" in forced.detail
    assert rig.unlocks_on_the_wire() == []


def test_door_left_open_too_long_is_reported_once_per_opening(make_rig: MakeRig) -> None:
    rig = make_rig("8a80", control={"left_open_after": 0.2})

    rig.cabinet.doors.open_door(2)
    rig.wait_event(DoorEventKind.LEFT_OPEN, 2)
    rig.wait_polls(2, rounds=8)  # still open for 8 more polls, over twice left_open_after
    assert len(rig.events_of(DoorEventKind.LEFT_OPEN, 2)) == 1

    rig.door(2).close()
    rig.wait_event(DoorEventKind.CLOSED, 2)
    rig.door(2).force_open()
    reported_twice = wait_until(lambda: len(rig.events_of(DoorEventKind.LEFT_OPEN, 2)) == 2, 3.0)
    assert reported_twice


def test_seventh_open_within_a_minute_is_refused_and_sends_no_frame(make_rig: MakeRig) -> None:
    rig = make_rig("8a80", control={"confirm_window": 0.3})

    outcomes = [rig.cabinet.doors.open_door(4).outcome for _ in range(7)]

    assert outcomes[:6] == [OpenOutcome.CONFIRMED] * 6  # door stays open; relay still fires
    assert outcomes[6] is OpenOutcome.RATE_LIMITED
    assert len(rig.unlocks_on_the_wire()) == 6
    assert rig.door(4).unlock_pulses == 6
    refusal = rig.events_of(DoorEventKind.OPEN_REFUSED, 4)
    assert len(refusal) == 1
    assert "try again" in refusal[0].detail
    # the budget is per door: another door still opens
    assert rig.cabinet.doors.open_door(5).outcome is OpenOutcome.CONFIRMED


def test_relay_fires_even_when_the_sensor_already_says_open(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")
    rig.door(6).force_open()
    rig.wait_state(6, DoorState.OPEN)

    result = rig.cabinet.doors.open_door(6)

    assert result.frame is not None
    assert [(u.board, u.to_bytes()) for u in rig.unlocks_on_the_wire()] == [(1, result.frame)]
    assert rig.door(6).unlock_pulses == 1
    assert "already said open" in result.detail
    assert result.already_open


def test_unlocks_go_ahead_of_queued_polls(protocol: str) -> None:
    codec = get_protocol(protocol)
    bus = SimulatedBus(protocol, [SimBoardConfig(1, LOCKS)], Timing.fast())
    with bus, SerialLink(bus.start_pty(), codec, fast_link(protocol)) as link:
        polls = [link.submit(codec.query_all(1)) for _ in range(6)]
        unlock = link.submit(codec.unlock(1, 3))
        unlock.result()
        for poll in polls:
            poll.result()

    kinds = [f.kind for _, f in bus.received if isinstance(f, Request)]
    assert kinds.count(RequestKind.UNLOCK) == 1
    assert kinds.index(RequestKind.UNLOCK) <= 1  # at most the poll already in flight before it


def test_opens_are_serialised_one_after_another(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")
    start = threading.Barrier(2)

    def open_door(door: int) -> float:
        start.wait()
        result = rig.cabinet.doors.open_door(door)
        assert result.outcome is OpenOutcome.CONFIRMED
        assert result.confirmed_at is not None
        return result.confirmed_at

    with ThreadPoolExecutor(2) as pool:
        confirmed = list(pool.map(open_door, (3, 11)))

    received = [
        (at, f) for at, f in rig.bus.received if getattr(f, "kind", None) is RequestKind.UNLOCK
    ]
    assert len(received) == 2
    (_, _), (second_at, _) = received
    assert second_at >= min(confirmed)  # the second unlock waited for the first door


def test_open_of_unknown_door_is_a_clear_error(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")

    with pytest.raises(UnknownDoorError, match="door 99 is not in the cabinet layout"):
        rig.cabinet.doors.open_door(99)
    assert rig.unlocks_on_the_wire() == []


def test_lost_serial_port_turns_every_door_unknown(make_rig: MakeRig) -> None:
    rig = make_rig("8a80")
    rig.door(2).force_open()
    rig.wait_state(2, DoorState.OPEN)

    rig.bus.stop()  # the adapter is unplugged: the pty disappears

    assert wait_until(lambda: set(rig.cabinet.doors.states().values()) == {DoorState.UNKNOWN}, 5.0)
    result = rig.cabinet.doors.open_door(3)
    assert result.outcome is OpenOutcome.BOARD_UNAVAILABLE  # refused now, not queued
    assert result.frame is None
    assert rig.unlocks_on_the_wire() == []
