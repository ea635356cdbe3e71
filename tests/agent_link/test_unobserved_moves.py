"""A door found after a gap is compared with the last state the journal saw: only a
difference is reported, as a move nobody observed, with an alarm."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from locker_agent.boards import DoorState
from locker_agent.door_record import record_board_alarm, record_found, unobserved_move
from locker_agent.doors import BoardAlarm, DoorEvent, DoorEventKind
from locker_agent.journal import Journal, to_contract_event
from locker_agent.layout import DoorAddress
from locker_contract import AlarmData, DoorMoveData


def found(door: int, state: DoorState) -> DoorEvent:
    return DoorEvent(
        DoorEventKind.FOUND, door, DoorAddress(1, door), 0.0, datetime.now(UTC), "", state
    )


@pytest.mark.parametrize(
    ("last_seen", "read", "reported"),
    [
        ("closed", DoorState.OPEN, "door.opened"),
        ("open", DoorState.CLOSED, "door.closed"),
        # closed before and closed now: it may have opened and closed; nobody can tell
        ("closed", DoorState.CLOSED, None),
        ("open", DoorState.OPEN, None),
        # never read before (a new journal): nothing to compare with
        (None, DoorState.OPEN, None),
        # unknown is never reported as open or closed
        ("closed", DoorState.UNKNOWN, None),
        ("open", DoorState.UNKNOWN, None),
    ],
)
def test_only_a_difference_between_two_states_really_read_is_a_move(
    last_seen: str | None, read: DoorState, reported: str | None
) -> None:
    move = unobserved_move(4, last_seen, read)
    assert (move.event_type if move else None) == reported


def test_a_door_found_open_after_a_gap_is_journaled_as_an_unobserved_opening_and_an_alarm(
    journal: Journal,
) -> None:
    with journal.transaction() as tx:
        tx.set_last_seen(2, "closed")
    with journal.transaction() as tx:
        record_found(tx, found(2, DoorState.OPEN))

    opened, alarm = (to_contract_event(event) for event in journal.pending())
    assert (opened.type, opened.door) == ("door.opened", 2)
    assert opened.typed_data() == DoorMoveData(
        observed=False, detail="found open after a gap in observation; last seen closed"
    )
    assert (alarm.type, alarm.door) == ("alarm", 2)
    data = alarm.typed_data()
    assert isinstance(data, AlarmData)
    assert (data.kind, data.cleared) == ("door_moved_unobserved", False)
    assert journal.snapshot().doors[2].state == "open"


def test_a_door_found_as_last_seen_reports_nothing_but_keeps_the_snapshot_true(
    journal: Journal,
) -> None:
    with journal.transaction() as tx:
        tx.set_last_seen(1, "closed")
        tx.set_door(1, "unknown")  # its board had stopped answering
    with journal.transaction() as tx:
        record_found(tx, found(1, DoorState.CLOSED))

    assert journal.pending() == []
    assert journal.snapshot().doors[1].state == "closed"


def test_the_last_state_seen_is_what_the_next_gap_is_compared_with(journal: Journal) -> None:
    with journal.transaction() as tx:
        record_found(tx, found(3, DoorState.CLOSED))  # first start: nothing to compare
    with journal.transaction() as tx:
        record_found(tx, found(3, DoorState.OPEN))  # after a gap

    assert [event.type for event in journal.pending()] == ["door.opened", "alarm"]


def test_the_board_alarm_is_raised_and_cleared_as_the_contract_says(journal: Journal) -> None:
    now = datetime.now(UTC)
    with journal.transaction() as tx:
        record_board_alarm(tx, BoardAlarm(True, (1,), "serial port gone", now))
        record_board_alarm(tx, BoardAlarm(False, (), "every board answers again", now))

    raised, cleared = (to_contract_event(event).typed_data() for event in journal.pending())
    assert raised == AlarmData(kind="board_not_answering", detail="serial port gone")
    assert cleared == AlarmData(
        kind="board_not_answering", detail="every board answers again", cleared=True
    )
