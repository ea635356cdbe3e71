"""Fast confirmation: after an unlock, the opener queries THAT lock at the confirmation
cadence until the door is seen open or the window ends.

The normal poll interval is made long in these tests, so only the confirmation reads
can explain a quick confirmation; every test also checks the door got one pulse only.
"""

from __future__ import annotations

import threading
import time

import pytest

from firmware_protocol import get_protocol
from firmware_protocol.base import Request, RequestKind
from locker_agent.doors import ControllerSettings, DoorEventKind, OpenOutcome
from locker_agent.errors import ConfigError
from tests.agent.conftest import MakeRig, Rig

SLOW_POLLING = {"poll_interval": 1.0, "confirm_window": 2.0, "confirm_poll_interval": 0.015}


def _queries_to(rig: Rig, board: int, after: float, before: float) -> int:
    return sum(
        1
        for at, frame in rig.bus.received
        if isinstance(frame, Request)
        and frame.kind is not RequestKind.UNLOCK
        and frame.board == board
        and after <= at <= before
    )


def _one_pulse(rig: Rig, door: int) -> None:
    assert len(rig.unlocks_on_the_wire()) == 1
    assert rig.door(door).unlock_pulses == 1


def test_door_opening_after_the_unlock_reply_is_confirmed_within_a_few_reads(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol, control=SLOW_POLLING)
    rig.door(3).faults.slow_open = 0.15  # springs ~100 ms after the board answered

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert result.seconds_to_open is not None
    # a poll every 1.0 s could not confirm this before ~1 s
    assert 0.15 <= result.seconds_to_open < 0.4
    assert rig.events_of(DoorEventKind.OPEN_CONFIRMED, 3)
    _one_pulse(rig, 3)


def test_first_look_at_the_door_goes_right_behind_the_unlock_ahead_of_polls(
    make_rig: MakeRig, protocol: str
) -> None:
    # polls back to back on both boards: one is almost always waiting in the queue
    rig = make_rig(protocol, control={"poll_interval": 0.001})
    codec = get_protocol(protocol)

    result = rig.cabinet.doors.open_door(11)  # board 2, lock 3

    assert result.outcome is OpenOutcome.CONFIRMED
    frames = [f for _, f in rig.bus.received if isinstance(f, Request)]
    after_unlock = frames[frames.index(codec.unlock(2, 3)) + 1]
    assert after_unlock.to_bytes() == codec.query_lock(2, 3).to_bytes()
    _one_pulse(rig, 11)


def test_jammed_door_is_still_reported_at_the_end_of_the_window(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol, control={**SLOW_POLLING, "confirm_window": 0.5})
    rig.door(3).faults.jammed = True

    started = time.monotonic()
    result = rig.cabinet.doors.open_door(3)
    took = time.monotonic() - started

    assert result.outcome is OpenOutcome.JAMMED
    assert 0.5 <= took < 0.5 + 0.15  # at the end of the window, not after a late read
    assert rig.events_of(DoorEventKind.JAMMED, 3)
    # the board was read at the confirmation cadence, not once per poll interval
    assert _queries_to(rig, 1, started, started + took) >= 8
    _one_pulse(rig, 3)


def test_other_boards_keep_their_normal_polling_during_a_confirmation(
    make_rig: MakeRig, protocol: str
) -> None:
    control = {"poll_interval": 0.05, "confirm_window": 1.0, "confirm_poll_interval": 0.01}
    rig = make_rig(protocol, control=control)
    rig.door(3).faults.jammed = True  # door 3 (board 1): confirmation lasts the whole window

    break_in = threading.Timer(0.3, rig.door(12).force_open)  # door 12 is on board 2

    started = time.monotonic()
    break_in.start()
    result = rig.cabinet.doors.open_door(3)
    ended = time.monotonic()
    break_in.join()

    assert result.outcome is OpenOutcome.JAMMED
    assert _queries_to(rig, 2, started, ended) >= 5  # ~20 expected: one per poll interval
    forced = rig.events_of(DoorEventKind.FORCED_OPEN, 12)
    assert forced, "a break-in on board 2 during the confirmation went unseen"
    assert forced[0].monotonic < ended
    _one_pulse(rig, 3)


def test_confirmation_cadence_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        ControllerSettings(confirm_poll_interval=0.0)
