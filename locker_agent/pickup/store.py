"""The journal-backed storage behind the offline allow-list.

:class:`JournalAllowListStore` implements
:class:`~locker_agent.pickup.allowlist.AllowListStore` on the journal's SQLite file.
Every write goes through ``Journal.transaction()``, which is re-entrant: when the pickup
desk wraps an allow-list match in its own transaction together with the ``pickup``
event that records it, both commit as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from locker_agent.journal import Journal, JournalTx
from locker_agent.pickup.allowlist import Failure
from locker_contract import AllowListEntry, format_utc

_ALLOW_VERSION = "allow_list_version"


class JournalAllowListStore:
    """``AllowListStore``: entries, the consumed set, failures and the list version."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def version(self) -> int | None:
        value = self._journal.meta(_ALLOW_VERSION, -1)
        return None if value < 0 else value

    def entries(self) -> Sequence[AllowListEntry]:
        with self._journal.transaction() as tx:
            rows = tx.query(
                "SELECT parcel_id, door, code_hash, qr_hash, expires_at FROM allow_list"
                " ORDER BY parcel_id"
            )
        fields = ("parcel_id", "door", "code_hash", "qr_hash", "expires_at")
        return [AllowListEntry.model_validate(dict(zip(fields, row, strict=True))) for row in rows]

    def consumed(self) -> frozenset[int]:
        with self._journal.transaction() as tx:
            rows = tx.query("SELECT parcel_id FROM allow_consumed")
        return frozenset(int(row[0]) for row in rows)

    def replace(
        self, version: int, entries: Sequence[AllowListEntry], consumed: frozenset[int]
    ) -> None:
        with self._journal.transaction() as tx:
            tx.execute("DELETE FROM allow_list")
            tx.execute("DELETE FROM allow_consumed")
            tx.executemany(
                "INSERT INTO allow_consumed (parcel_id) VALUES (?)", [(pid,) for pid in consumed]
            )
            self._upsert(version, entries)

    def update(
        self, version: int, upserts: Sequence[AllowListEntry], removed: Iterable[int]
    ) -> None:
        with self._journal.transaction() as tx:
            gone = [(pid,) for pid in removed]
            tx.executemany("DELETE FROM allow_list WHERE parcel_id = ?", gone)
            tx.executemany("DELETE FROM allow_consumed WHERE parcel_id = ?", gone)
            self._upsert(version, upserts)

    def _upsert(self, version: int, entries: Sequence[AllowListEntry]) -> None:
        with self._journal.transaction() as tx:
            self._upsert_entries(tx, entries)
            tx.put(_ALLOW_VERSION, version)

    @staticmethod
    def _upsert_entries(tx: JournalTx, entries: Sequence[AllowListEntry]) -> None:
        rows = [
            (e.parcel_id, e.door, e.code_hash, e.qr_hash, format_utc(e.expires_at)) for e in entries
        ]
        tx.executemany(
            "INSERT OR REPLACE INTO allow_list"
            " (parcel_id, door, code_hash, qr_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def consume(self, parcel_ids: Iterable[int]) -> None:
        ids = [(pid,) for pid in parcel_ids]
        with self._journal.transaction() as tx:
            tx.executemany("DELETE FROM allow_list WHERE parcel_id = ?", ids)
            tx.executemany("INSERT OR IGNORE INTO allow_consumed (parcel_id) VALUES (?)", ids)

    def restore(self, entries: Sequence[AllowListEntry]) -> None:
        with self._journal.transaction() as tx:
            for entry in entries:
                # an id no longer consumed was withdrawn by the server: it stays gone
                if tx.execute("DELETE FROM allow_consumed WHERE parcel_id = ?", (entry.parcel_id,)):
                    self._upsert_entries(tx, [entry])

    def record_failure(self, failure: Failure) -> None:
        with self._journal.transaction() as tx:
            tx.execute(
                "INSERT INTO allow_failures (door, at) VALUES (?, ?)",
                (failure.door, format_utc(failure.at)),
            )

    def failures_since(self, since: datetime) -> Sequence[Failure]:
        cutoff = format_utc(since)
        with self._journal.transaction() as tx:
            tx.execute("DELETE FROM allow_failures WHERE at < ?", (cutoff,))
            rows = tx.query("SELECT door, at FROM allow_failures ORDER BY id")
        return [Failure(door, datetime.fromisoformat(at)) for door, at in rows]
