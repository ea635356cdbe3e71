"""The agent's durable journal: one SQLite file, WAL mode, ``synchronous=FULL``.

It sits below both the MQTT link and the pickup desk, because all three writers of the
cabinet's record use it: door events (the runtime), pickups (:mod:`locker_agent.pickup`)
and the link (outbox, command runner, presence counter, refusals). Each of them keeps
its own tables' SQL in its own store; the journal owns the file, the schema and the
transaction.

What it holds (one table each):

* ``events`` — what the cabinet has to tell the server, in ``seq`` order, each with a
  stable ``event_id`` and a class: ``custody`` or ``telemetry``;
* ``doors`` + ``meta.state_version`` — the door snapshot published on ``state``;
* ``doors_last_seen`` — each door's last state that was really read (open or closed,
  never unknown): what a door read after a gap is compared with
  (:mod:`locker_agent.door_record`);
* ``meta.connection`` — the presence connection counter (+1 before every CONNECT);
* ``decided_commands`` + ``meta.command_counter`` — what the command guard must
  remember (command ids already decided, the highest counter; see
  :mod:`locker_agent.link.guard_store`);
* ``allow_list``, ``allow_consumed``, ``allow_failures`` + ``meta.allow_list_version``
  — the offline pickup allow-list (see :mod:`locker_agent.pickup.store`);
* ``pickups_pending`` — pickups granted whose door has not yet opened and closed again:
  the parcels, the credential kind, the allow-list version, whether the link was up,
  the consumed entries (to give back) and whether the door was seen open (see
  :mod:`locker_agent.pickup.pending`);
* ``command_results`` — final ``cmd/res`` messages the server has not acknowledged yet;
* ``reservations`` + ``meta.reservations_version`` — doors the server reserved here, for
  deposits while it is out of reach, and ``deposits_reported`` — parcels whose
  ``deposit`` event was journaled, so it is journaled once (see
  :mod:`locker_agent.link.courier_desk`).

Rules:

1. **Same transaction.** An event is written in the same transaction as the local
   state change it describes (door snapshot + version, a consumed allow-list entry and
   its pending pickup, a door's close and the pickup it completes, an executed command
   id). After a crash either both are there or neither is.
2. **Durable before published.** Events are published *from the journal*, in ``seq``
   order; an event row is deleted only when an ``evt/ack`` names its ``event_id`` (the
   server has committed it — a broker PUBACK is not that). After a reconnect every
   unacknowledged event is published again; the server de-duplicates by ``event_id``.
   A final command result is kept the same way, until an ``evt/ack`` names its message
   id in ``result_ids``.
3. **Bounded, and the bound only ever drops telemetry.** When more than
   ``max_telemetry_events`` telemetry rows are waiting, the oldest telemetry rows are
   deleted and counted in ``meta.dropped_telemetry``. Custody events — every ``door.*``
   type, ``deposit``, ``pickup``, ``pickup.refused``, ``alarm`` and any type we do not
   recognise — are NEVER dropped: an event type is telemetry only if it starts with
   ``telemetry.``. The journal grows with custody events for as long as the outage lasts
   (a few hundred bytes each: a year of a busy cabinet's door events is a few MB).
4. **Power cuts.** WAL + ``synchronous=FULL`` makes every commit durable when
   ``commit`` returns; a file copied mid-run (WAL not checkpointed) opens with every
   committed transaction present.
"""

from __future__ import annotations

import enum
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from locker_agent.errors import JournalError
from locker_contract import Event

logger = logging.getLogger(__name__)

TELEMETRY_PREFIX: Final = "telemetry."

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    class TEXT NOT NULL CHECK (class IN ('custody', 'telemetry')),
    door INTEGER,
    device_time TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_class ON events (class, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS doors (
    door INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    occupied INTEGER
);
CREATE TABLE IF NOT EXISTS doors_last_seen (
    door INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed'))
);
CREATE TABLE IF NOT EXISTS decided_commands (
    command_id TEXT PRIMARY KEY,
    counter INTEGER NOT NULL,
    decided_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS allow_list (
    parcel_id INTEGER PRIMARY KEY,
    door INTEGER NOT NULL,
    code_hash TEXT,
    qr_hash TEXT,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS allow_consumed (parcel_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS allow_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    door INTEGER,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pickups_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    door INTEGER NOT NULL,
    parcel_ids TEXT NOT NULL,
    credential TEXT NOT NULL,
    allow_list_version INTEGER NOT NULL,
    link_up INTEGER NOT NULL,
    entries TEXT NOT NULL,
    opened INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reservations (
    parcel_id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL,
    door INTEGER NOT NULL,
    size TEXT NOT NULL,
    tracking_hash TEXT NOT NULL,
    reserved_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_by_tracking ON reservations (tracking_hash);
CREATE TABLE IF NOT EXISTS deposits_reported (
    parcel_id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS command_results (
    command_id TEXT NOT NULL,
    status TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (command_id, status)
);
"""


class EventClass(enum.StrEnum):
    CUSTODY = "custody"
    TELEMETRY = "telemetry"


def event_class(event_type: str) -> EventClass:
    """Telemetry only by explicit prefix; anything else (even unknown) is custody."""
    if event_type.startswith(TELEMETRY_PREFIX):
        return EventClass.TELEMETRY
    return EventClass.CUSTODY


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class JournalEvent:
    seq: int
    event_id: str
    type: str
    event_class: EventClass
    door: int | None
    device_time: str
    data: Mapping[str, Any]


def to_contract_event(event: JournalEvent) -> Event:
    """The contract's form of a journaled event; raises if the contract refuses it.

    Writers call it on the row they have just appended, inside their transaction, so an
    event the contract would refuse is never committed and can never block the outbox.
    """
    return Event.model_validate(
        {
            "event_id": event.event_id,
            "seq": event.seq,
            "type": event.type,
            "device_time": event.device_time,
            "door": event.door,
            "data": dict(event.data),
        }
    )


@dataclass(frozen=True, slots=True)
class DoorRecord:
    state: str
    occupied: bool | None = None


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    version: int
    doors: Mapping[int, DoorRecord] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingResult:
    """A final ``cmd/res`` message as journaled: published again, byte for byte, until
    the server acknowledges its envelope id."""

    command_id: str
    status: str
    payload: bytes

    @property
    def message_id(self) -> str:
        return str(json.loads(self.payload)["id"])


class JournalTx:
    """The writes of one transaction (only valid inside ``Journal.transaction()``)."""

    def __init__(self, db: sqlite3.Connection, max_telemetry: int) -> None:
        self._db = db
        self._max_telemetry = max_telemetry
        self._state_bumped = False

    # -- events ----------------------------------------------------------------

    def append(
        self,
        event_type: str,
        *,
        door: int | None = None,
        data: Mapping[str, Any] | None = None,
        device_time: datetime | None = None,
    ) -> JournalEvent:
        kind = event_class(event_type)
        event_id = uuid.uuid4().hex
        when = utc_text(device_time or datetime.now(UTC))
        body = dict(data or {})
        cursor = self._db.execute(
            "INSERT INTO events (event_id, type, class, door, device_time, payload, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, event_type, kind.value, door, when, json.dumps(body), time.time()),
        )
        if kind is EventClass.TELEMETRY:
            self._drop_excess_telemetry()
        seq = cursor.lastrowid
        assert seq is not None
        return JournalEvent(seq, event_id, event_type, kind, door, when, MappingProxyType(body))

    def _drop_excess_telemetry(self) -> None:
        (waiting,) = self._db.execute(
            "SELECT count(*) FROM events WHERE class = 'telemetry'"
        ).fetchone()
        excess = waiting - self._max_telemetry
        if excess <= 0:
            return
        self._db.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE class = 'telemetry'"
            " ORDER BY seq LIMIT ?)",
            (excess,),
        )
        self.bump("dropped_telemetry", excess)
        logger.warning("journal full: dropped %d oldest telemetry event(s)", excess)

    def delete_events(self, ids: list[tuple[str]]) -> int:
        before = self._db.total_changes
        self._db.executemany("DELETE FROM events WHERE event_id = ?", ids)
        return self._db.total_changes - before

    # -- meta counters ---------------------------------------------------------

    def get(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def put(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bump(self, key: str, by: int = 1) -> int:
        value = self.get(key) + by
        self.put(key, value)
        return value

    # -- door snapshot ---------------------------------------------------------

    def set_door(self, door: int, state: str, occupied: bool | None = None) -> None:
        """Change one door of the snapshot; the state version moves once per transaction."""
        self._db.execute(
            "INSERT INTO doors (door, state, occupied) VALUES (?, ?, ?)"
            " ON CONFLICT (door) DO UPDATE SET state = excluded.state,"
            " occupied = excluded.occupied",
            (door, state, None if occupied is None else int(occupied)),
        )
        if not self._state_bumped:
            self.bump("state_version")
            self._state_bumped = True

    def last_seen(self, door: int) -> str | None:
        """The door's last state really read ("open"/"closed"), None if never."""
        row = self._db.execute(
            "SELECT state FROM doors_last_seen WHERE door = ?", (door,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_last_seen(self, door: int, state: str) -> None:
        self._db.execute(
            "INSERT INTO doors_last_seen (door, state) VALUES (?, ?)"
            " ON CONFLICT (door) DO UPDATE SET state = excluded.state",
            (door, state),
        )

    # -- commands ----------------------------------------------------------------

    def save_result(self, command_id: str, status: str, payload: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO command_results (command_id, status, payload, created)"
            " VALUES (?, ?, ?, ?)",
            (command_id, status, payload, time.time()),
        )

    def delete_result(self, command_id: str, status: str) -> None:
        self._db.execute(
            "DELETE FROM command_results WHERE command_id = ? AND status = ?",
            (command_id, status),
        )

    # -- raw statements for the stores (guard_store, pickup.store) ----------------

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one statement; returns the rows it changed."""
        before = self._db.total_changes
        self._db.execute(sql, params)
        return self._db.total_changes - before

    def executemany(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        self._db.executemany(sql, rows)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()


class Journal:
    """The SQLite journal; thread-safe (one connection behind a lock)."""

    def __init__(self, db: sqlite3.Connection, path: Path, max_telemetry_events: int) -> None:
        self._db = db
        self.path = path
        self.max_telemetry_events = max_telemetry_events
        self._lock = threading.RLock()
        self._current: JournalTx | None = None

    @classmethod
    def open(cls, path: Path, *, max_telemetry_events: int = 10_000) -> Journal:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        if str(mode).lower() != "wal":
            db.close()
            raise JournalError(f"the journal {path} cannot use WAL mode (got {mode})")
        return cls(db, path, max_telemetry_events)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[JournalTx]:
        """One IMMEDIATE transaction: all of its writes commit together or not at all.

        Re-entrant in one thread: a nested ``transaction()`` joins the outer one, so a
        store method called inside the runtime's transaction commits with its event.
        """
        with self._lock:
            if self._current is not None:
                yield self._current
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise JournalError(f"cannot begin a journal transaction: {exc}") from exc
            self._current = JournalTx(self._db, self.max_telemetry_events)
            try:
                yield self._current
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._commit()
            finally:
                self._current = None

    def _commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise JournalError(f"journal commit failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"journal read failed: {exc}") from exc

    # -- events ----------------------------------------------------------------

    def append(
        self,
        event_type: str,
        *,
        door: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> JournalEvent:
        """Journal an event that describes no other local state change."""
        with self.transaction() as tx:
            return tx.append(event_type, door=door, data=data)

    def pending(self, *, after_seq: int = 0, limit: int = 100) -> list[JournalEvent]:
        """Unacknowledged events after ``after_seq``, oldest first."""
        rows = self._read(
            "SELECT seq, event_id, type, class, door, device_time, payload FROM events"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            JournalEvent(s, e, t, EventClass(c), d, w, MappingProxyType(json.loads(p)))
            for s, e, t, c, d, w, p in rows
        ]

    def newest_pending_before(self, seq: int) -> str | None:
        """The id of the newest unacknowledged event older than ``seq``, if any."""
        rows = self._read(
            "SELECT event_id FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1", (seq,)
        )
        return str(rows[0][0]) if rows else None

    def count_pending(self, *, upto_seq: int) -> int:
        """Unacknowledged events with ``seq <= upto_seq`` (those already published)."""
        rows = self._read("SELECT count(*) FROM events WHERE seq <= ?", (upto_seq,))
        return int(rows[0][0])

    def acknowledge(self, event_ids: Iterable[str]) -> int:
        """Delete the events the server says it has committed; returns how many went."""
        ids = [(event_id,) for event_id in event_ids]
        with self.transaction() as tx:
            return tx.delete_events(ids)

    def counts(self) -> dict[EventClass, int]:
        rows = self._read("SELECT class, count(*) FROM events GROUP BY class")
        found = {EventClass(kind): int(n) for kind, n in rows}
        return {kind: found.get(kind, 0) for kind in EventClass}

    # -- counters and snapshot -------------------------------------------------

    def meta(self, key: str, default: int = 0) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows else int(rows[0][0])

    @property
    def dropped_telemetry(self) -> int:
        return self.meta("dropped_telemetry")

    def next_connection(self) -> int:
        """+1 and persist the presence connection counter (before every CONNECT)."""
        with self.transaction() as tx:
            return tx.bump("connection")

    def snapshot(self) -> StateSnapshot:
        with self._lock:
            version = self.meta("state_version")
            rows = self._read("SELECT door, state, occupied FROM doors ORDER BY door")
        doors = {d: DoorRecord(s, None if o is None else bool(o)) for d, s, o in rows}
        return StateSnapshot(version, MappingProxyType(doors))

    # -- commands ----------------------------------------------------------------

    def pending_results(self) -> list[PendingResult]:
        rows = self._read(
            "SELECT command_id, status, payload FROM command_results ORDER BY created"
        )
        return [PendingResult(c, s, bytes(p)) for c, s, p in rows]

    def acknowledge_results(self, result_ids: Iterable[str]) -> int:
        """Delete the final results whose ``cmd/res`` message ids the server acknowledged;
        returns how many went (ids of results already gone are a replayed ack)."""
        wanted = set(result_ids)
        if not wanted:  # an ack of events only: no write transaction for nothing
            return 0
        with self.transaction() as tx:
            rows = tx.query("SELECT command_id, status, payload FROM command_results")
            stored = [PendingResult(c, s, bytes(p)) for c, s, p in rows]
            taken = [result for result in stored if result.message_id in wanted]
            for result in taken:
                tx.delete_result(result.command_id, result.status)
        return len(taken)
