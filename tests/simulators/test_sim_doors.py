"""Door physics: latch, spring, people, break-ins, and who hears about every move."""

from __future__ import annotations

import time

import pytest
from sim_helpers import FAST, wait_until

from firmware_protocol import xor8a80
from simulators import BoardConfig, DoorChange, SimulatedBus
from simulators.errors import NotServingError, UnknownDoorError


def test_a_break_in_opens_the_door_without_any_command_and_is_reported(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    changes: list[DoorChange] = []
    bus.subscribe(changes.append)

    bus.board(1).door(4).force_open()

    assert [(c.board, c.lock, c.is_open) for c in changes] == [(1, 4, True)]
    assert bus.board(1).door(4).unlock_pulses == 0
    assert host.ask(xor8a80.QueryLockRequest(1, 4)).feedback() == {4: False}


def test_a_person_closing_the_door_reengages_the_latch(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    door = bus.board(1).door(2)
    changes: list[DoorChange] = []
    bus.subscribe(changes.append)
    host.ask(xor8a80.UnlockRequest(1, 2))
    assert door.is_open

    door.close()

    assert door.latched
    assert not door.is_open
    assert [c.is_open for c in changes] == [True, False]
    assert host.ask(xor8a80.QueryLockRequest(1, 2)).feedback() == {2: True}


def test_a_scripted_person_closes_the_door_after_the_given_time(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    changes: list[DoorChange] = []
    bus.subscribe(changes.append)
    host.ask(xor8a80.UnlockRequest(1, 7))

    scheduled_at = time.monotonic()
    bus.schedule_close(1, 7, after=0.15)

    assert wait_until(lambda: len(changes) == 2)
    assert changes[-1].is_open is False
    assert changes[-1].at - scheduled_at >= 0.15


def test_unlocking_an_open_door_counts_the_pulse_and_moves_nothing(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    door = bus.board(1).door(1)
    door.force_open()
    changes: list[DoorChange] = []
    bus.subscribe(changes.append)

    host.ask(xor8a80.UnlockRequest(1, 1))

    assert door.unlock_pulses == 1
    assert door.is_open
    assert changes == []


def test_a_door_pushed_shut_before_the_spring_acts_stays_shut(serve):
    bus, host = serve("8a80", boards=[1], locks=8)
    door = bus.board(1).door(3)
    door.faults.slow_open = 0.15
    host.send(xor8a80.UnlockRequest(1, 3))
    assert wait_until(lambda: not door.latched)

    door.close()
    # the simulated world runs its events in time order: once a witness door closed at
    # the spring's moment has shut, door 3's spring has had its turn
    witness = bus.board(1).door(8)
    witness.force_open()
    bus.schedule_close(1, 8, after=door.faults.slow_open)
    assert wait_until(lambda: not witness.is_open)

    assert not door.is_open
    assert door.latched


def test_an_unsubscribed_listener_hears_nothing_more(serve):
    bus, _ = serve("8a80", boards=[1], locks=8)
    changes: list[DoorChange] = []
    unsubscribe = bus.subscribe(changes.append)
    bus.board(1).door(1).force_open()

    unsubscribe()
    bus.board(1).door(1).close()

    assert len(changes) == 1


def test_a_failing_listener_does_not_stop_the_doors_or_other_listeners(serve):
    bus, host = serve("8a80", boards=[1], locks=8)

    def broken(change: DoorChange) -> None:
        raise RuntimeError("listener bug")

    changes: list[DoorChange] = []
    bus.subscribe(broken)
    bus.subscribe(changes.append)

    host.ask(xor8a80.UnlockRequest(1, 5))

    assert [c.lock for c in changes] == [5]


def test_doors_can_start_open_and_with_parcels_inside():
    bus = SimulatedBus(
        "8a80", [BoardConfig(1, 8, open_doors=frozenset({2}), items=frozenset({5}))], FAST
    )

    assert [d.lock for d in bus.board(1).doors if d.is_open] == [2]
    assert [d.lock for d in bus.board(1).doors if d.item_inside] == [5]


def test_boards_and_locks_that_do_not_exist_are_refused_clearly():
    bus = SimulatedBus("8a80", [BoardConfig(1, 8)], FAST)

    with pytest.raises(UnknownDoorError, match="no board 9"):
        bus.board(9)
    with pytest.raises(UnknownDoorError, match="no lock 9"):
        bus.board(1).door(9)


def test_an_unsolicited_frame_needs_a_serving_bus():
    bus = SimulatedBus("8a80", [BoardConfig(1, 8)], FAST)

    with pytest.raises(NotServingError):
        bus.board(1).send_unsolicited()
