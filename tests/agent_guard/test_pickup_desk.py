"""The pickup desk a kiosk calls: a typed code or a scanned token in, a door or a refusal out.

What happens after the door opened (the pickup journaled at the close) is in
``test_pending_pickups.py``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from locker_agent.doors import OpenOutcome, OpenResult
from locker_agent.journal import Journal
from locker_agent.layout import DoorAddress
from locker_agent.pickup import (
    AllowList,
    Granted,
    JournalAllowListStore,
    PickupDesk,
    PickupOutcome,
    Refused,
    ScannedToken,
    TypedCode,
    presented,
)
from locker_contract import AllowListEntry, credential_hash
from tests.agent_link.rig import PICKUP_KEY, entry
from tests.contract import messages

CODE = "48151623"
TOKEN = "qr-token-of-parcel-41"


@dataclass
class FakeDoors:
    """Doors that answer every unlock with ``outcome``, and note what the journal held
    at that moment: a pickup must be on record (pending) before its door moves, and no
    ``pickup`` event may be there yet."""

    journal: Journal
    outcome: OpenOutcome = OpenOutcome.CONFIRMED
    opened: list[int] = field(default_factory=list)
    journaled_before_opening: list[list[str]] = field(default_factory=list)
    pending_before_opening: list[list[tuple[int, ...]]] = field(default_factory=list)
    desk: PickupDesk | None = None

    def open_door(self, door: int) -> OpenResult:
        self.opened.append(door)
        self.journaled_before_opening.append([e.type for e in self.journal.pending()])
        assert self.desk is not None
        with self.journal.transaction() as tx:
            held = self.desk.pending.held(tx)
        self.pending_before_opening.append([p.parcel_ids for p in held])
        detail = "" if self.outcome is OpenOutcome.CONFIRMED else "not seen open"
        return OpenResult(
            door, DoorAddress(1, door), self.outcome, True, b"\x8a", 0.0, None, detail
        )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    yield journal
    journal.close()


def _desk(journal: Journal, doors: FakeDoors, *entries: AllowListEntry) -> PickupDesk:
    allow_list = AllowList(PICKUP_KEY, JournalAllowListStore(journal))
    allow_list.apply(messages.allow_list_sync(version=1, entries=list(entries)).body)
    desk = PickupDesk(
        allow_list,
        journal,
        doors,
        server_now=lambda: datetime.now(UTC),
        link_up=lambda: False,
    )
    doors.desk = desk
    return desk


def _held(desk: PickupDesk, journal: Journal) -> list[tuple[int, tuple[int, ...], bool]]:
    with journal.transaction() as tx:
        return [(p.door, p.parcel_ids, p.opened) for p in desk.pending.held(tx)]


def _qr_entry(parcel_id: int, door: int, token: str) -> AllowListEntry:
    return AllowListEntry(
        parcel_id=parcel_id,
        door=door,
        code_hash=None,
        qr_hash=credential_hash(PICKUP_KEY, "qr", token),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def test_a_typed_code_opens_its_door_once_with_the_pickup_pending_until_the_door_closes(
    journal: Journal,
) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors, entry(11, 5, CODE), entry(12, 5, CODE))

    outcome = desk.pickup(TypedCode(CODE))

    assert outcome == PickupOutcome(True, 5, (11, 12), OpenOutcome.CONFIRMED, None)
    assert doors.opened == [5]
    assert doors.pending_before_opening == [[(11, 12)]]
    assert doors.journaled_before_opening == [[]]  # no pickup event before the close
    assert _held(desk, journal) == [(5, (11, 12), True)]
    assert not [e for e in journal.pending() if e.type == "pickup"]
    assert not desk.pickup(TypedCode(CODE)).opened  # used up meanwhile
    assert doors.opened == [5]


def test_a_kiosk_learns_the_door_before_anything_moves(journal: Journal) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors, _qr_entry(41, 3, TOKEN))

    decision = desk.decide(ScannedToken(TOKEN))

    assert decision == Granted(3, (41,))
    assert doors.opened == []
    assert desk.open(decision).opened
    assert doors.opened == [3]


def test_a_token_presented_at_another_door_is_refused_and_opens_nothing(
    journal: Journal,
) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors, _qr_entry(41, 3, TOKEN))

    assert desk.decide(ScannedToken(TOKEN), door=4) == Refused("no_match", 4)
    assert doors.opened == []
    [refused] = journal.pending()
    assert (refused.type, refused.door) == ("pickup.refused", 4)
    assert refused.data == {"reason": "no_match", "credential": "qr"}


@pytest.mark.parametrize(
    "outcome",
    [OpenOutcome.JAMMED, OpenOutcome.OUTCOME_UNKNOWN, OpenOutcome.BOARD_UNAVAILABLE],
)
def test_a_door_that_does_not_open_raises_an_alarm_and_the_code_works_again(
    journal: Journal, outcome: OpenOutcome
) -> None:
    doors = FakeDoors(journal, outcome=outcome)
    desk = _desk(journal, doors, entry(11, 5, CODE))

    result = desk.pickup(TypedCode(CODE))

    assert result == PickupOutcome(False, 5, (11,), outcome, outcome.value)
    [alarm] = journal.pending()
    assert (alarm.type, alarm.door, alarm.data["kind"]) == ("alarm", 5, "pickup_door_not_opened")
    assert alarm.data["detail"].startswith(f"{outcome.value} not seen open")
    assert alarm.data["detail"].endswith("the credential works again")
    assert _held(desk, journal) == []
    doors.outcome = OpenOutcome.CONFIRMED  # the fault is gone: the same code, once more
    assert desk.pickup(TypedCode(CODE)) == PickupOutcome(True, 5, (11,), OpenOutcome.CONFIRMED)
    assert doors.opened == [5, 5]
    assert not [e for e in journal.pending() if e.type in ("pickup", "pickup.refused")]


@pytest.mark.parametrize(
    ("code", "token", "kind"),
    [(CODE, TOKEN, "code"), (None, None, "qr")],
)
def test_both_credentials_at_once_or_none_is_refused_as_no_credential(
    journal: Journal, code: str | None, token: str | None, kind: str
) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors, entry(11, 5, CODE))

    outcome = desk.pickup(presented(code=code, qr_token=token))

    assert outcome == PickupOutcome(False, reason="no_credential")
    assert [e.data for e in journal.pending()] == [{"reason": "no_credential", "credential": kind}]


def test_a_presented_credential_never_shows_in_a_repr() -> None:
    assert CODE not in repr(TypedCode(CODE))
    assert TOKEN not in repr(ScannedToken(TOKEN))


def test_parcels_behind_several_doors_are_claimed_and_journaled_one_door_at_a_time(
    journal: Journal,
) -> None:
    doors = FakeDoors(journal)
    desk = _desk(journal, doors, entry(11, 5, CODE), entry(12, 2, CODE))

    first = desk.decide(TypedCode(CODE))
    assert first == Granted(5, (11,), more_doors=(2,))
    assert desk.open(first).opened
    second = desk.decide(TypedCode(CODE), door=2)
    assert second == Granted(2, (12,))
    assert desk.open(second).opened

    assert doors.opened == [5, 2]
    assert doors.pending_before_opening == [[(11,)], [(11,), (12,)]]
    assert _held(desk, journal) == [(5, (11,), True), (2, (12,), True)]


def test_a_kiosk_can_say_how_many_attempts_are_left(journal: Journal) -> None:
    desk = _desk(journal, FakeDoors(journal), entry(11, 5, CODE))
    before = desk.lockout_status().attempts_left

    desk.decide(TypedCode("00000000"))

    assert desk.lockout_status().attempts_left == before - 1
