"""Pickups granted but not done yet: the door has to open, then close again.

A parcel counts as picked up only once the door unlocked for it was seen open and then
closed again. :meth:`~locker_agent.pickup.desk.PickupDesk.decide` consumes the
allow-list entries (the credential cannot be used twice meanwhile) and records a
*pending pickup* in the same journal transaction — no ``pickup`` event yet. This module
moves it on, always inside the journal transaction of whatever moved it:

* the door seen open (``door.opened``, ``door.open_confirmed``, or the desk's own
  confirmed open) → the row is marked opened;
* an opened row's door closed (``door.closed``, or found closed after a gap in
  observation: an agent restart, a board answering again) → the ``pickup`` event is
  journaled, with the close's time as its device time, and the row deleted, in one
  transaction: exactly once. A close found after a gap is not claimed as seen:
  :mod:`locker_agent.door_record` journals it as ``door.closed`` ``observed: false`` in
  that same transaction (the ``pickup`` data has no field for it);
* the door not seen open after the unlock (jammed, outcome unknown, board unavailable),
  or the agent restarted before it was → the entries are given back, so the recipient
  can try again, and an ``alarm`` ``pickup_door_not_opened`` says so;
* closed while the door's item sensor still reads the compartment occupied (in the
  board reply that showed it closed) → no pickup: the entries are given back and an
  ``alarm`` ``parcel_not_taken`` is raised. A door without a wired item sensor
  (``item_sensor`` in ``[[doors]]``) closes with ``occupied`` None: the close alone is
  the pickup.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from locker_agent.boards import DoorState
from locker_agent.doors import DoorEvent, DoorEventKind
from locker_agent.journal import JournalEvent, JournalTx, to_contract_event
from locker_agent.pickup.allowlist import AllowList, Match
from locker_contract import (
    AlarmData,
    AlarmKind,
    AllowListEntry,
    CredentialKind,
    EventType,
    OfflinePickupData,
)

#: the door layer's events that show a door open
_SEEN_OPEN: Final = frozenset({DoorEventKind.OPENED, DoorEventKind.OPEN_CONFIRMED})
#: not in the contract's AlarmKind: the set is open
PARCEL_NOT_TAKEN: Final = "parcel_not_taken"


@dataclass(frozen=True, slots=True)
class PendingPickup:
    """One granted pickup waiting for its door to open and close again."""

    id: int
    door: int
    parcel_ids: tuple[int, ...]
    credential: CredentialKind
    allow_list_version: int
    #: whether the link was up when it was granted (the ``pickup`` event's ``mode``)
    link_up: bool
    #: the consumed allow-list entries, given back if the door is not seen open
    entries: tuple[AllowListEntry, ...]
    #: the door was seen open after the unlock
    opened: bool

    def event_data(self) -> dict[str, Any]:
        """The ``pickup`` event's data (``OfflinePickupData``)."""
        data: dict[str, Any] = {
            "mode": "online" if self.link_up else "offline",
            "parcel_ids": list(self.parcel_ids),
            "credential": self.credential,
            "allow_list_version": self.allow_list_version,
        }
        if not _contract_accepts(data):
            data["mode"] = "offline"  # the contract knows only cabinet-validated pickups
        return data


class PendingPickups:
    """The ``pickups_pending`` rows of the journal and what moves them on."""

    def __init__(self, allow_list: AllowList) -> None:
        self._allow_list = allow_list

    def add(self, tx: JournalTx, match: Match, *, link_up: bool) -> None:
        """Record a granted match (in the transaction that consumed its entries)."""
        entries = [entry.model_dump(mode="json") for entry in match.entries]
        tx.execute(
            "INSERT INTO pickups_pending (door, parcel_ids, credential, allow_list_version,"
            " link_up, entries, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                match.door,
                _ids_text(match.parcel_ids),
                match.credential,
                match.allow_list_version,
                int(link_up),
                json.dumps(entries),
                time.time(),
            ),
        )

    def held(self, tx: JournalTx, door: int | None = None) -> list[PendingPickup]:
        """Pending pickups, oldest first (of ``door`` only, if given)."""
        rows = tx.query(
            "SELECT id, door, parcel_ids, credential, allow_list_version, link_up, entries,"
            " opened FROM pickups_pending WHERE ? IS NULL OR door = ? ORDER BY id",
            (door, door),
        )
        return [_pending(row) for row in rows]

    def on_door_event(self, tx: JournalTx, event: DoorEvent) -> list[JournalEvent]:
        """Move the door's pending pickups on (in the door event's transaction); returns
        the ``pickup`` events journaled."""
        if event.kind in _SEEN_OPEN:
            self.opened(tx, event.door)
            return []
        found_closed = event.kind is DoorEventKind.FOUND and event.state is DoorState.CLOSED
        if event.kind is DoorEventKind.CLOSED or found_closed:
            return self.closed(tx, event.door, at=event.wall, occupied=event.occupied)
        return []

    def opened(self, tx: JournalTx, door: int) -> None:
        """The door was seen open: its pending pickups wait for the close."""
        tx.execute("UPDATE pickups_pending SET opened = 1 WHERE door = ?", (door,))

    def closed(
        self, tx: JournalTx, door: int, *, at: datetime, occupied: bool | None = None
    ) -> list[JournalEvent]:
        """The door closed (seen, or found after a gap): each pending pickup of it that
        was seen open is journaled and deleted. ``occupied``: the item sensor's reading,
        None where there is none."""
        done = [pending for pending in self.held(tx, door) if pending.opened]
        events = []
        for pending in done:
            self._delete(tx, pending)
            if occupied:
                self._give_back(tx, pending, PARCEL_NOT_TAKEN, _not_taken(pending))
            else:
                event = tx.append(
                    EventType.PICKUP, door=door, data=pending.event_data(), device_time=at
                )
                events.append(_checked(event))
        return events

    def not_opened(self, tx: JournalTx, door: int, parcel_ids: Sequence[int], detail: str) -> None:
        """The unlock for these parcels was not seen to open the door: give their entries
        back (unless the door was seen open anyway: then the close decides) and raise
        ``pickup_door_not_opened`` with ``detail`` (what the door layer said)."""
        wanted = _ids_text(parcel_ids)
        pending = [p for p in self.held(tx, door) if _ids_text(p.parcel_ids) == wanted]
        given_back = [p for p in pending if not p.opened]
        for row in given_back:
            self._delete(tx, row)
            self._allow_list.restore(row.entries)
        note = "; the credential works again" if given_back else ""
        _alarm(tx, door, AlarmKind.PICKUP_DOOR_NOT_OPENED, detail[: 200 - len(note)] + note)

    def recover(self, tx: JournalTx) -> list[PendingPickup]:
        """After a restart: pending pickups whose door was never seen open are given back
        (the door may be found open; nobody can tell it opened for them). Those seen open
        stay, for the close to come or to be found."""
        stale = [pending for pending in self.held(tx) if not pending.opened]
        for pending in stale:
            self._delete(tx, pending)
            detail = (
                f"the agent restarted before door {pending.door} was seen open for parcels"
                f" {_ids_words(pending.parcel_ids)}; the credential works again"
            )
            self._give_back(tx, pending, AlarmKind.PICKUP_DOOR_NOT_OPENED, detail)
        return stale

    def _give_back(self, tx: JournalTx, pending: PendingPickup, kind: str, detail: str) -> None:
        self._allow_list.restore(pending.entries)
        _alarm(tx, pending.door, kind, detail)

    @staticmethod
    def _delete(tx: JournalTx, pending: PendingPickup) -> None:
        tx.execute("DELETE FROM pickups_pending WHERE id = ?", (pending.id,))


def _pending(row: tuple[Any, ...]) -> PendingPickup:
    row_id, door, ids, credential, version, link_up, entries, opened = row
    return PendingPickup(
        id=int(row_id),
        door=int(door),
        parcel_ids=tuple(int(pid) for pid in json.loads(ids)),
        credential=credential,
        allow_list_version=int(version),
        link_up=bool(link_up),
        entries=tuple(AllowListEntry.model_validate(e) for e in json.loads(entries)),
        opened=bool(opened),
    )


def _ids_text(parcel_ids: Sequence[int]) -> str:
    return json.dumps(sorted(parcel_ids))


def _ids_words(parcel_ids: Sequence[int]) -> str:
    return ", ".join(str(pid) for pid in parcel_ids)


def _not_taken(pending: PendingPickup) -> str:
    return (
        f"door {pending.door} closed with parcels {_ids_words(pending.parcel_ids)} still"
        " inside; the credential works again"
    )


def _alarm(tx: JournalTx, door: int, kind: str, detail: str) -> None:
    data = AlarmData(kind=kind, detail=detail[:200]).model_dump(exclude_defaults=True)
    _checked(tx.append(EventType.ALARM, door=door, data=data))


def _checked(event: JournalEvent) -> JournalEvent:
    """Checked against the contract now, so it can never block the outbox."""
    to_contract_event(event)
    return event


def _contract_accepts(data: dict[str, Any]) -> bool:
    try:
        OfflinePickupData.model_validate(data)
    except ValueError:
        return False
    return True
