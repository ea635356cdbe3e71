"""The offline allow-list: which pickup credentials the cabinet may honour on its own.

While the link is down the kiosk still lets recipients collect parcels: the server keeps
the cabinet supplied (``sync`` kind ``allow_list``) with the keyed hashes of the live
credentials of the parcels inside it, and ``AllowList.check`` matches a typed code or a
scanned QR token against them. Rules:

* versions only move forward: a sync whose version is not higher than ours is ignored;
  a delta needs a list to apply to (the server sends a full list on every connect);
* every entry is compared with ``hmac.compare_digest`` — no early exit, so the time
  taken does not reveal which entry (if any) matched;
* an entry matches once: it is consumed, and its parcel id stays in a "consumed" set so
  a later full list that still carries it (the server has not yet stored our ``pickup``
  event) cannot bring it back; ids the server no longer lists are forgotten;
* a consumed entry can be given back (``restore``) when its door was not seen open: the
  recipient may try again. Only entries still consumed come back: one the server has
  withdrawn meanwhile (no longer listed) stays gone;
* expired entries never match; repeated failures lock the door / the whole cabinet out
  (5 failures in 15 minutes each by default, as on the server);
* a credential whose parcels lie behind several doors matches one door at a time: the
  match names the other doors (``more_doors``), and each is claimed by presenting the
  same credential again with ``door=`` set, so every door has its own match, its own
  consumed entries and its own journal record.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from locker_contract import AllowListEntry, AllowListSync, CredentialKind, credential_hash
from locker_contract.lockout import LockoutPolicy

logger = logging.getLogger(__name__)

NoMatchReason = Literal["no_credential", "no_list", "no_match", "expired", "locked_out"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One refused attempt, for the lockout counters (``door`` None: typed at the cabinet)."""

    door: int | None
    at: datetime


class AllowListStore(Protocol):
    """Durable allow-list state (the agent journal implements it on SQLite)."""

    def version(self) -> int | None:
        """Version of the list held, None before the first full list."""
        ...

    def entries(self) -> Sequence[AllowListEntry]: ...

    def consumed(self) -> frozenset[int]:
        """Parcel ids matched offline whose removal the server has not yet confirmed."""
        ...

    def replace(
        self, version: int, entries: Sequence[AllowListEntry], consumed: frozenset[int]
    ) -> None:
        """Full replacement of the list and of the consumed set."""
        ...

    def update(
        self, version: int, upserts: Sequence[AllowListEntry], removed: Iterable[int]
    ) -> None:
        """Delta: upsert entries by parcel id; drop removed ids from entries and consumed set."""
        ...

    def consume(self, parcel_ids: Iterable[int]) -> None:
        """Remove these entries and add their ids to the consumed set."""
        ...

    def restore(self, entries: Sequence[AllowListEntry]) -> None:
        """Put back the entries whose ids are still consumed; drop those ids from the set."""
        ...

    def record_failure(self, failure: Failure) -> None: ...

    def failures_since(self, since: datetime) -> Sequence[Failure]:
        """Failures at or after ``since`` (older ones may be pruned)."""
        ...


@dataclass(slots=True)
class MemoryAllowListStore:
    """In-memory ``AllowListStore`` for tests and the simulator."""

    held_version: int | None = None
    by_parcel: dict[int, AllowListEntry] = field(default_factory=dict)
    consumed_ids: set[int] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)

    def version(self) -> int | None:
        return self.held_version

    def entries(self) -> Sequence[AllowListEntry]:
        return list(self.by_parcel.values())

    def consumed(self) -> frozenset[int]:
        return frozenset(self.consumed_ids)

    def replace(
        self, version: int, entries: Sequence[AllowListEntry], consumed: frozenset[int]
    ) -> None:
        self.held_version = version
        self.by_parcel = {entry.parcel_id: entry for entry in entries}
        self.consumed_ids = set(consumed)

    def update(
        self, version: int, upserts: Sequence[AllowListEntry], removed: Iterable[int]
    ) -> None:
        self.held_version = version
        for parcel_id in removed:
            self.by_parcel.pop(parcel_id, None)
            self.consumed_ids.discard(parcel_id)
        self.by_parcel.update((entry.parcel_id, entry) for entry in upserts)

    def consume(self, parcel_ids: Iterable[int]) -> None:
        for parcel_id in parcel_ids:
            self.by_parcel.pop(parcel_id, None)
            self.consumed_ids.add(parcel_id)

    def restore(self, entries: Sequence[AllowListEntry]) -> None:
        for entry in entries:
            if entry.parcel_id in self.consumed_ids:
                self.consumed_ids.discard(entry.parcel_id)
                self.by_parcel[entry.parcel_id] = entry

    def record_failure(self, failure: Failure) -> None:
        self.failures.append(failure)

    def failures_since(self, since: datetime) -> Sequence[Failure]:
        self.failures = [failure for failure in self.failures if failure.at >= since]
        return list(self.failures)


@dataclass(frozen=True, slots=True)
class Match:
    """Open ``door``: the parcels it holds for this credential (already consumed)."""

    parcel_ids: tuple[int, ...]
    door: int
    credential: CredentialKind
    allow_list_version: int
    #: other doors holding live parcels for the same credential (not consumed by this match)
    more_doors: tuple[int, ...] = ()
    #: the consumed entries themselves, to give back if the door is not seen open
    entries: tuple[AllowListEntry, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    """How many wrong attempts are left before the lockout, and how long a lockout lasts."""

    attempts_left: int
    #: zero when not locked out
    locked_for: timedelta


@dataclass(frozen=True, slots=True)
class NoMatch:
    reason: NoMatchReason


class AllowList:
    """Applies allow-list syncs and checks credentials offline."""

    def __init__(
        self, cabinet_key: bytes, store: AllowListStore, lockout: LockoutPolicy | None = None
    ) -> None:
        self._key = cabinet_key
        self._store = store
        self._lockout = lockout or LockoutPolicy()

    @property
    def version(self) -> int | None:
        return self._store.version()

    def apply(self, sync: AllowListSync) -> bool:
        """Apply a full list or a delta; False (and nothing changed) if it is not newer."""
        held = self._store.version()
        if held is not None and sync.version <= held:
            logger.info("allow-list version %s ignored (holding %s)", sync.version, held)
            return False
        if sync.full:
            self._replace(sync)
            return True
        if held is None:
            logger.warning("allow-list delta %s ignored: no full list yet", sync.version)
            return False
        consumed = self._store.consumed()
        fresh = [entry for entry in sync.entries if entry.parcel_id not in consumed]
        self._store.update(sync.version, fresh, sync.removed)
        return True

    def _replace(self, sync: AllowListSync) -> None:
        listed = {entry.parcel_id for entry in sync.entries}
        still_pending = self._store.consumed() & listed
        fresh = [entry for entry in sync.entries if entry.parcel_id not in still_pending]
        self._store.replace(sync.version, fresh, still_pending)

    def check(
        self,
        *,
        code: str | None = None,
        qr: str | None = None,
        door: int | None = None,
        now: datetime,
    ) -> Match | NoMatch:
        """Match one presented credential; a match is consumed, a miss counts as a failure."""
        if (code is None) == (qr is None):
            return NoMatch("no_credential")
        version = self._store.version()
        if version is None:
            return NoMatch("no_list")
        if self._locked_out(door, now):
            return NoMatch("locked_out")
        kind: CredentialKind = "code" if code is not None else "qr"
        presented = credential_hash(self._key, kind, code if code is not None else str(qr))
        return self._match(kind, presented, door, now, version)

    def _match(
        self, kind: CredentialKind, presented: str, door: int | None, now: datetime, version: int
    ) -> Match | NoMatch:
        hits = _matching_entries(self._store.entries(), kind, presented, door)
        live = [entry for entry in hits if entry.expires_at > now]
        if not live:
            self._store.record_failure(Failure(door, now))
            return NoMatch("expired" if hits else "no_match")
        chosen_door = live[0].door
        taken = tuple(sorted((e for e in live if e.door == chosen_door), key=_parcel_id))
        parcel_ids = tuple(entry.parcel_id for entry in taken)
        more_doors = tuple(sorted({entry.door for entry in live} - {chosen_door}))
        self._store.consume(parcel_ids)
        return Match(parcel_ids, chosen_door, kind, version, more_doors, taken)

    def restore(self, entries: Sequence[AllowListEntry]) -> None:
        """Give back consumed entries (their door was not seen open): the credential
        works again, unless the server has withdrawn the parcel meanwhile."""
        self._store.restore(entries)

    def lockout(self, *, door: int | None = None, now: datetime) -> LockoutStatus:
        """Attempts left before the lockout for an attempt at ``door``, and how long a
        lockout already in force still lasts (what a kiosk tells the person)."""
        failures = self._store.failures_since(now - self._lockout.window)
        counted = [(sorted(f.at for f in failures), self._lockout.cabinet_threshold)]
        if door is not None:
            at_door = sorted(f.at for f in failures if f.door == door)
            counted.append((at_door, self._lockout.door_threshold))
        left = min(max(threshold - len(times), 0) for times, threshold in counted)
        # locked until enough of the oldest failures have left the sliding window
        locked_until = [
            times[len(times) - threshold] + self._lockout.window
            for times, threshold in counted
            if len(times) >= threshold
        ]
        locked_for = max((until - now for until in locked_until), default=timedelta(0))
        return LockoutStatus(left, max(locked_for, timedelta(0)))

    def _locked_out(self, door: int | None, now: datetime) -> bool:
        failures = self._store.failures_since(now - self._lockout.window)
        at_door = None if door is None else sum(1 for failure in failures if failure.door == door)
        return self._lockout.locks(cabinet_failures=len(failures), door_failures=at_door)


def _parcel_id(entry: AllowListEntry) -> int:
    return entry.parcel_id


def _matching_entries(
    entries: Sequence[AllowListEntry], kind: CredentialKind, presented: str, door: int | None
) -> list[AllowListEntry]:
    """Every entry is compared in constant time, whether or not an earlier one matched."""
    hits = []
    for entry in entries:
        stored = entry.code_hash if kind == "code" else entry.qr_hash
        equal = hmac.compare_digest(stored or "", presented)
        if equal and (door is None or entry.door == door):
            hits.append(entry)
    return hits
