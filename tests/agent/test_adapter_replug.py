"""The USB adapter goes away and comes back as a new pty behind the same stable name:
the door layer reopens it by itself, never guesses a door across the gap, and raises and
clears one "board not answering" alarm."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from locker_agent.boards import DoorState
from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.doors import BoardAlarm, DoorEventKind, OpenOutcome
from locker_agent.layout import BoardConfig, CabinetLayout
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.agent.conftest import FAST_CONTROL, LOCKS, Rig, fast_link, wait_until


class AlarmLog:
    def __init__(self) -> None:
        self._alarms: list[BoardAlarm] = []
        self._lock = threading.Lock()

    def record(self, alarm: BoardAlarm) -> None:
        with self._lock:
            self._alarms.append(alarm)

    @property
    def raised(self) -> list[BoardAlarm]:
        with self._lock:
            return [a for a in self._alarms if a.raised]

    @property
    def cleared(self) -> list[BoardAlarm]:
        with self._lock:
            return [a for a in self._alarms if not a.raised]


@pytest.fixture
def replug_rig(tmp_path: Path) -> Iterator[tuple[Rig, AlarmLog, Path]]:
    """Boards 1 and 2 behind ``by-id/usb-adapter`` (a symlink to the pty), reopened fast."""
    stable = tmp_path / "usb-FTDI_FT232R_USB_UART_TEST-if00-port0"
    bus = SimulatedBus("8a80", [SimBoardConfig(a, LOCKS) for a in (1, 2)], Timing.fast())
    port = bus.start_pty(stable)
    codec = protocol_named("8a80")
    layout = CabinetLayout.sequential(codec, [BoardConfig(a, LOCKS) for a in (1, 2)])
    link = fast_link("8a80", reopen_backoff_initial=0.05, reopen_backoff_max=0.2)
    cabinet = Cabinet(port, codec, layout, link, replace(FAST_CONTROL, board_alarm_after=0.4))
    rig = Rig(bus, cabinet)
    alarms = AlarmLog()
    bus.subscribe(rig.note_change)
    cabinet.doors.subscribe(rig.record)
    cabinet.doors.subscribe_board_alarms(alarms.record)
    cabinet.start()
    try:
        assert cabinet.doors.wait_first_poll(3.0)
        yield rig, alarms, stable
    finally:
        cabinet.stop()
        bus.stop()


def test_replugged_adapter_is_reopened_and_a_door_moved_meanwhile_is_found_not_seen(
    replug_rig: tuple[Rig, AlarmLog, Path],
) -> None:
    rig, alarms, stable = replug_rig
    rig.wait_state(2, DoorState.CLOSED)

    rig.bus.unplug()
    assert not stable.exists()  # the adapter's name is gone with it
    assert wait_until(lambda: alarms.raised, 5.0), "no alarm while the port is gone"
    assert set(rig.cabinet.doors.states().values()) == {DoorState.UNKNOWN}
    rig.door(2).force_open()  # someone opens door 2 while nobody is watching
    rig.bus.replug()

    assert wait_until(lambda: alarms.cleared, 5.0), "the alarm was never cleared"
    rig.wait_state(2, DoorState.OPEN)
    assert stable.is_symlink()  # a new pty (the OS may reuse the number) behind the name
    assert len(alarms.raised) == 1
    assert "serial port" in alarms.raised[0].detail
    found = rig.events_of(DoorEventKind.FOUND, 2)
    assert [event.state for event in found] == [DoorState.CLOSED, DoorState.OPEN]
    # the opening was not seen: never reported as one, never as a break-in seen live
    assert not rig.events_of(DoorEventKind.OPENED, 2)
    assert not rig.events_of(DoorEventKind.FORCED_OPEN, 2)
    assert rig.unlocks_on_the_wire() == []
    rig.assert_never_wrong()


def test_an_open_asked_for_while_the_adapter_is_away_fails_at_once_and_never_fires_later(
    replug_rig: tuple[Rig, AlarmLog, Path],
) -> None:
    rig, alarms, _ = replug_rig
    rig.bus.unplug()
    assert wait_until(lambda: not rig.cabinet.link.available, 5.0)

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.BOARD_UNAVAILABLE
    assert result.frame is None
    rig.bus.replug()
    assert wait_until(lambda: alarms.cleared, 5.0)
    rig.wait_polls(3, rounds=3)  # the reopened line has carried traffic since
    assert rig.unlocks_on_the_wire() == []
    assert rig.door(3).unlock_pulses == 0


def test_a_board_silent_past_the_threshold_raises_one_alarm_cleared_when_it_answers(
    replug_rig: tuple[Rig, AlarmLog, Path],
) -> None:
    rig, alarms, _ = replug_rig
    board = rig.bus.board(2)
    board.faults.offline = True
    assert wait_until(lambda: alarms.raised, 5.0)
    assert alarms.raised[0].boards == (2,)
    assert "board 2" in alarms.raised[0].detail
    rig.wait_polls(9, rounds=3)  # polled and unanswered again: no second alarm
    assert len(alarms.raised) == 1

    rig.door(9).force_open()  # moved while its board was silent
    board.faults.offline = False

    assert wait_until(lambda: alarms.cleared, 5.0)
    rig.wait_state(9, DoorState.OPEN)
    assert [event.state for event in rig.events_of(DoorEventKind.FOUND, 9)][-1] is DoorState.OPEN
    assert not rig.events_of(DoorEventKind.OPENED, 9)
    assert rig.cabinet.doors.state(1) is DoorState.CLOSED  # board 1 was never in doubt
