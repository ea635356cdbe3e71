"""The simulator's fault menu, one by one, against the agent over a real pty.

Each test shows what the agent does (recovers, reports or refuses) and checks, in
every case, that no door state is reported that was not observed and that no second
unlock is ever sent on the agent's own initiative.
"""

from __future__ import annotations

import threading

import pytest

from firmware_protocol import get_protocol
from locker_agent.boards import DoorState
from locker_agent.doors import DoorEventKind, OpenOutcome
from locker_agent.errors import BoardTimeout
from locker_agent.layout import Polarity
from locker_agent.serial_link import SerialLink
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.agent.conftest import LOCKS, MakeRig, Rig, fast_link, wait_until


def _assert_one_unlock(rig: Rig, door: int) -> None:
    assert len(rig.unlocks_on_the_wire()) == 1
    assert rig.door(door).unlock_pulses <= 1


def _board_states(rig: Rig, board: int) -> set[DoorState]:
    doors = rig.cabinet.layout.doors_on(board).values()
    states = rig.cabinet.doors.states()
    return {states[door] for door in doors}


def test_delayed_replies_still_open_and_read_doors_correctly(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.bus.board(1).faults.reply_delay = 0.08

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert result.acknowledged
    rig.wait_state(3, DoorState.OPEN)
    rig.assert_never_wrong()
    assert rig.cabinet.doors.states()[4] is DoorState.CLOSED
    _assert_one_unlock(rig, 3)


def test_fragmented_replies_are_reassembled(make_rig: MakeRig, protocol: str) -> None:
    rig = make_rig(protocol)
    rig.door(5).force_open()
    for board in (1, 2):
        rig.bus.board(board).faults.fragment = 3
        rig.bus.board(board).faults.fragment_gap = 0.012  # under the 25 ms quiet gap

    result = rig.cabinet.doors.open_door(2)

    assert result.outcome is OpenOutcome.CONFIRMED
    rig.wait_state(5, DoorState.OPEN)
    rig.wait_state(2, DoorState.OPEN)
    assert rig.cabinet.doors.states()[10] is DoorState.CLOSED
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 2)


def test_reply_missing_its_first_byte_is_never_read_as_door_state(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.door(2).force_open()
    rig.bus.board(1).faults.drop_first_byte = True
    rig.wait_state(1, DoorState.UNKNOWN)

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.OUTCOME_UNKNOWN
    assert not result.acknowledged
    assert _board_states(rig, 1) == {DoorState.UNKNOWN}
    assert _board_states(rig, 2) == {DoorState.CLOSED}
    assert rig.cabinet.link.stats.garbage > 0
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 3)


def test_adapter_echo_is_discarded_when_the_echo_option_is_set(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol, link={"echo": True}, start=False)
    rig.bus.faults.echo = True
    rig.door(6).force_open()
    rig.cabinet.start()
    assert rig.cabinet.doors.wait_first_poll(3.0)

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert result.acknowledged
    assert rig.cabinet.doors.states()[6] is DoorState.OPEN
    assert rig.cabinet.doors.states()[1] is DoorState.CLOSED
    assert rig.cabinet.link.stats.echoes_discarded > 0
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 3)


def test_adapter_echo_without_the_option_never_gives_a_wrong_state(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol, start=False)
    rig.bus.faults.echo = True
    rig.door(6).force_open()
    rig.cabinet.start()
    rig.cabinet.doors.wait_first_poll(3.0)
    states_seen: list[dict[int, DoorState]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            states_seen.append(rig.cabinet.doors.states())
            rig.assert_never_wrong()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = rig.cabinet.doors.open_door(3)
    finally:
        stop.set()
        watcher.join()

    # Our own copy is never an answer: the real reply behind it is.
    assert result.outcome is OpenOutcome.CONFIRMED
    assert rig.cabinet.doors.states()[6] is DoorState.OPEN
    assert rig.cabinet.doors.states()[1] is DoorState.CLOSED
    assert states_seen
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 3)


def test_corrupted_check_byte_is_never_taken_as_an_answer(make_rig: MakeRig, protocol: str) -> None:
    rig = make_rig(protocol)
    rig.bus.board(1).faults.corrupt_checksum = True
    rig.wait_state(1, DoorState.UNKNOWN)

    result = rig.cabinet.doors.open_door(4)

    assert result.outcome is OpenOutcome.OUTCOME_UNKNOWN
    assert rig.events_of(DoorEventKind.OPEN_OUTCOME_UNKNOWN, 4)
    assert _board_states(rig, 1) == {DoorState.UNKNOWN}
    assert _board_states(rig, 2) == {DoorState.CLOSED}
    assert rig.cabinet.link.stats.garbage > 0
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 4)


def test_silent_board_open_is_outcome_unknown_and_never_resent(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.bus.board(1).faults.silent = True

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.OUTCOME_UNKNOWN
    assert rig.events_of(DoorEventKind.OPEN_OUTCOME_UNKNOWN, 3)
    assert rig.door(3).is_open  # the board obeyed; we just cannot see it
    assert rig.cabinet.doors.state(3) is DoorState.UNKNOWN
    rig.wait_polls(3, rounds=3)  # several more poll rounds: still one unlock
    _assert_one_unlock(rig, 3)
    rig.assert_never_wrong()


def test_unanswered_unlock_is_confirmed_by_the_sensor_never_by_a_resend(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    board = rig.bus.board(1)
    board.faults.silent = True

    def board_recovers(event: object) -> None:
        board.faults.silent = False

    rig.cabinet.doors.subscribe(
        lambda e: board_recovers(e) if e.kind is DoorEventKind.OPEN_OUTCOME_UNKNOWN else None
    )

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert not result.acknowledged
    assert "unanswered" in result.detail
    assert rig.events_of(DoorEventKind.OPEN_OUTCOME_UNKNOWN, 3)
    assert rig.events_of(DoorEventKind.OPEN_CONFIRMED, 3)
    _assert_one_unlock(rig, 3)


def test_late_reply_after_timeout_is_never_taken_as_next_answer(protocol: str) -> None:
    codec = get_protocol(protocol)
    settings = fast_link(protocol, query_timeout=0.4, query_retries=0, settle_after_error=0.02)
    with SimulatedBus(protocol, [SimBoardConfig(1, LOCKS)], Timing.fast()) as bus:
        board = bus.board(1)
        board.faults.late_reply = 0.5  # after the 0.4 s timeout
        with SerialLink(bus.start_pty(), codec, settings) as link:
            with pytest.raises(BoardTimeout):
                link.request(codec.query_all(1))
            # The next answer comes 0.3 s after the next request; the late one lands
            # first, showing door 2 closed; door 2 opens before the real answer is built.
            board.faults.late_reply = None
            board.faults.reply_delay = 0.3
            threading.Timer(0.15, board.door(2).force_open).start()
            exchange = link.request(codec.query_all(1))

        assert exchange.reply.feedback()[2] is False  # signal gone: door 2 open
        assert exchange.round_trip >= 0.3
        assert link.stats.late_replies_discarded == 1


def test_unsolicited_frames_are_counted_and_never_taken_as_answers(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.bus.board(1).faults.unsolicited_every = 0.05
    rig.door(7).force_open()

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    rig.wait_state(7, DoorState.OPEN)
    stats = rig.cabinet.link.stats
    assert wait_until(lambda: stats.unexpected_frames + stats.garbage > 0, 3.0)
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 3)


def test_inverted_feedback_with_matching_config_reports_true_states(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol, polarity={1: Polarity.INVERTED}, start=False)
    rig.bus.board(1).faults.inverted_polarity = True
    rig.door(2).force_open()
    rig.cabinet.start()
    assert rig.cabinet.doors.wait_first_poll(3.0)

    assert rig.cabinet.doors.states()[2] is DoorState.OPEN
    assert rig.cabinet.doors.states()[1] is DoorState.CLOSED
    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert _board_states(rig, 2) == {DoorState.CLOSED}  # board 2 keeps normal polarity
    rig.assert_never_wrong()
    _assert_one_unlock(rig, 3)


def test_jammed_door_is_reported_jammed_and_never_resent(make_rig: MakeRig, protocol: str) -> None:
    rig = make_rig(protocol)
    rig.door(3).faults.jammed = True

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.JAMMED
    assert result.acknowledged
    assert rig.events_of(DoorEventKind.JAMMED, 3)
    assert rig.cabinet.doors.state(3) is DoorState.CLOSED
    assert rig.door(3).unlock_pulses == 1
    _assert_one_unlock(rig, 3)


def test_slow_door_is_confirmed_late_within_the_window(make_rig: MakeRig, protocol: str) -> None:
    rig = make_rig(protocol)
    rig.door(3).faults.slow_open = 0.3

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.CONFIRMED
    assert result.seconds_to_open is not None
    assert result.seconds_to_open >= 0.3
    _assert_one_unlock(rig, 3)


def test_door_slower_than_the_window_is_jammed_then_seen_open_without_alarm(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.door(3).faults.slow_open = 0.9  # the window is 0.6 s

    result = rig.cabinet.doors.open_door(3)

    assert result.outcome is OpenOutcome.JAMMED
    rig.wait_event(DoorEventKind.OPENED, 3)
    assert not rig.events_of(DoorEventKind.FORCED_OPEN, 3)  # late spring, not a break-in
    _assert_one_unlock(rig, 3)


def test_offline_board_doors_are_unknown_and_the_others_work(
    make_rig: MakeRig, protocol: str
) -> None:
    rig = make_rig(protocol)
    rig.bus.board(2).faults.offline = True
    rig.wait_state(9, DoorState.UNKNOWN)
    assert rig.events_of(DoorEventKind.UNKNOWN, 9)

    on_offline_board = rig.cabinet.doors.open_door(10)
    on_working_board = rig.cabinet.doors.open_door(3)

    assert on_offline_board.outcome is OpenOutcome.OUTCOME_UNKNOWN
    assert on_working_board.outcome is OpenOutcome.CONFIRMED
    assert _board_states(rig, 2) == {DoorState.UNKNOWN}
    assert rig.cabinet.doors.states()[3] is DoorState.OPEN
    assert rig.cabinet.doors.states()[1] is DoorState.CLOSED
    assert rig.door(10).unlock_pulses == 0
    assert [unlock.board for unlock in rig.unlocks_on_the_wire()] == [2, 1]
    rig.assert_never_wrong()
