"""A granted pickup waits in the journal until its door has opened and closed again.

The door events are fed in the way the runtime does it (inside the journal transaction
of the door event); the doors themselves are fakes here. The real agent on pty boards
is in ``tests/agent_link/test_pickup_on_close.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from locker_agent.boards import DoorState
from locker_agent.doors import DoorEvent, DoorEventKind, OpenOutcome
from locker_agent.journal import Journal, JournalEvent
from locker_agent.layout import DoorAddress
from locker_agent.pickup import (
    AllowList,
    Granted,
    JournalAllowListStore,
    PickupDesk,
    TypedCode,
)
from locker_agent.pickup.pending import PARCEL_NOT_TAKEN
from tests.agent_guard.test_pickup_desk import FakeDoors
from tests.agent_link.rig import PICKUP_KEY, entry
from tests.contract import messages

CODE = "48151623"
CLOSED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    yield journal
    journal.close()


def _desk(journal: Journal, doors: FakeDoors, *, link_up: bool = False) -> PickupDesk:
    allow_list = _allow_list(journal)
    entries = [entry(11, 5, CODE), entry(12, 5, CODE), entry(21, 2, "11112222")]
    allow_list.apply(messages.allow_list_sync(version=3, entries=entries).body)
    desk = PickupDesk(
        allow_list,
        journal,
        doors,
        server_now=lambda: datetime.now(UTC),
        link_up=lambda: link_up,
    )
    doors.desk = desk
    return desk


def _allow_list(journal: Journal) -> AllowList:
    return AllowList(PICKUP_KEY, JournalAllowListStore(journal))


def _event(kind: DoorEventKind, door: int = 5, *, state: DoorState | None = None) -> DoorEvent:
    return DoorEvent(kind, door, DoorAddress(1, door), 0.0, CLOSED_AT, "", state)


def _feed(desk: PickupDesk, journal: Journal, event: DoorEvent) -> list[JournalEvent]:
    with journal.transaction() as tx:
        return desk.pending.on_door_event(tx, event)


def _held(desk: PickupDesk, journal: Journal) -> list[tuple[int, tuple[int, ...], bool]]:
    with journal.transaction() as tx:
        return [(p.door, p.parcel_ids, p.opened) for p in desk.pending.held(tx)]


def _journaled(journal: Journal, event_type: str) -> list[JournalEvent]:
    return [event for event in journal.pending() if event.type == event_type]


def test_the_pickup_is_journaled_once_when_the_opened_door_closes(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert desk.pickup(TypedCode(CODE)).opened

    [pickup] = _feed(desk, journal, _event(DoorEventKind.CLOSED))
    again = _feed(desk, journal, _event(DoorEventKind.CLOSED))

    assert again == []
    assert _journaled(journal, "pickup") == [pickup]
    assert (pickup.door, pickup.device_time) == (5, "2026-03-01T12:30:00.000000Z")
    assert dict(pickup.data) == {
        "mode": "offline",
        "parcel_ids": [11, 12],
        "credential": "code",
        "allow_list_version": 3,
    }
    assert _held(desk, journal) == []


def test_a_close_before_the_door_was_seen_open_journals_nothing(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert isinstance(desk.decide(TypedCode(CODE)), Granted)

    assert _feed(desk, journal, _event(DoorEventKind.CLOSED)) == []
    assert _feed(desk, journal, _event(DoorEventKind.CLOSED, door=2)) == []

    assert _held(desk, journal) == [(5, (11, 12), False)]
    _feed(desk, journal, _event(DoorEventKind.OPENED))
    assert _held(desk, journal) == [(5, (11, 12), True)]
    assert len(_feed(desk, journal, _event(DoorEventKind.CLOSED))) == 1


def test_a_close_found_after_a_gap_completes_a_pickup_seen_open(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert desk.pickup(TypedCode(CODE)).opened

    assert _feed(desk, journal, _event(DoorEventKind.FOUND, state=DoorState.OPEN)) == []
    assert _feed(desk, journal, _event(DoorEventKind.FOUND, state=DoorState.UNKNOWN)) == []
    [pickup] = _feed(desk, journal, _event(DoorEventKind.FOUND, state=DoorState.CLOSED))

    assert pickup.data["parcel_ids"] == [11, 12]


def test_the_link_state_is_kept_but_the_contract_knows_only_offline_pickups(
    journal: Journal,
) -> None:
    desk = _desk(journal, FakeDoors(journal), link_up=True)
    assert desk.pickup(TypedCode(CODE)).opened

    [pickup] = _feed(desk, journal, _event(DoorEventKind.CLOSED))

    with journal.transaction() as tx:
        assert desk.pending.held(tx) == []
    assert pickup.data["mode"] == "offline"


def test_a_pending_pickup_survives_a_reopened_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = Journal.open(path)
    desk = _desk(first, FakeDoors(first))
    assert desk.pickup(TypedCode(CODE)).opened
    first.close()

    journal = Journal.open(path)
    try:
        desk = PickupDesk(
            _allow_list(journal),
            journal,
            FakeDoors(journal),
            server_now=lambda: datetime.now(UTC),
            link_up=lambda: False,
        )
        with journal.transaction() as tx:
            assert desk.pending.recover(tx) == []  # seen open: it waits for the close
        [pickup] = _feed(desk, journal, _event(DoorEventKind.FOUND, state=DoorState.CLOSED))
        assert pickup.data["parcel_ids"] == [11, 12]
    finally:
        journal.close()


def test_after_a_restart_a_pickup_never_seen_open_gives_its_code_back(
    journal: Journal,
) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors)
    desk.decide(TypedCode(CODE))  # the agent died before the door was seen open

    with journal.transaction() as tx:
        [given_back] = desk.pending.recover(tx)

    assert given_back.parcel_ids == (11, 12)
    [alarm] = _journaled(journal, "alarm")
    assert (alarm.door, alarm.data["kind"]) == (5, "pickup_door_not_opened")
    assert "restarted" in alarm.data["detail"]
    assert desk.pickup(TypedCode(CODE)).opened
    assert not _journaled(journal, "pickup")


def test_a_door_closed_with_the_parcel_still_inside_is_no_pickup(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert desk.pickup(TypedCode(CODE)).opened

    with journal.transaction() as tx:
        assert desk.pending.closed(tx, 5, at=CLOSED_AT, occupied=True) == []

    assert not _journaled(journal, "pickup")
    [alarm] = _journaled(journal, "alarm")
    assert (alarm.door, alarm.data["kind"]) == (5, PARCEL_NOT_TAKEN)
    assert _held(desk, journal) == []
    assert desk.pickup(TypedCode(CODE)).opened  # the recipient can come back


def test_an_item_sensor_reading_empty_counts_as_a_pickup(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert desk.pickup(TypedCode(CODE)).opened

    with journal.transaction() as tx:
        assert len(desk.pending.closed(tx, 5, at=CLOSED_AT, occupied=False)) == 1


def test_a_parcel_the_server_withdrew_meanwhile_is_not_given_back(journal: Journal) -> None:
    doors = FakeDoors(journal, outcome=OpenOutcome.JAMMED)
    desk = _desk(journal, doors)
    granted = desk.decide(TypedCode(CODE))
    assert isinstance(granted, Granted)
    # a full list without parcel 12 (cancelled on the server) arrives meanwhile
    fresh = messages.allow_list_sync(version=4, entries=[entry(11, 5, CODE)]).body
    assert _allow_list(journal).apply(fresh)

    assert not desk.open(granted).opened

    doors.outcome = OpenOutcome.CONFIRMED
    outcome = desk.pickup(TypedCode(CODE))
    assert (outcome.opened, outcome.parcel_ids) == (True, (11,))


def test_a_late_event_for_another_door_leaves_the_pending_pickup_alone(
    journal: Journal,
) -> None:
    desk = _desk(journal, FakeDoors(journal))
    assert desk.pickup(TypedCode(CODE)).opened

    _feed(desk, journal, _event(DoorEventKind.JAMMED))
    _feed(desk, journal, _event(DoorEventKind.LEFT_OPEN))
    _feed(desk, journal, _event(DoorEventKind.CLOSED, door=2))

    assert _held(desk, journal) == [(5, (11, 12), True)]
    assert _journaled(journal, "pickup") == []
