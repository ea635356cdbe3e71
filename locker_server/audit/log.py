"""The audit log service: append entries to the chain, sign checkpoints, verify.

``record`` appends in the *caller's* transaction: the caller commits, and a rollback
removes the entry together with the business change, so log and state always agree.

Appends are serialised by the one-row ``audit_head``. Its first touch is a write
(``UPDATE ... RETURNING``), which takes PostgreSQL's row lock and, on SQLite, the database
write lock before this transaction has read anything — so a deferred SQLite transaction
never has to upgrade a stale read snapshot (the ``SQLITE_BUSY_SNAPSHOT`` dead end), and two
appenders never see the same tip. Record audit entries late in a transaction: the head
stays locked until commit.

Entries written *around* the head (an intruder's rows past the tip) never block appends:
the lock also reads the highest ``seq`` stored, and if it is past the head the log
appends after it, chained to the real tip, with an ``audit.head_bypassed`` alarm entry
first. The intruder's rows stay where they are, and verification reports them as
``inserted`` at their first position.

Every signed checkpoint is also handed to the witness (``locker_server.audit.witness``)
once its transaction has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import Session

from locker_server.audit import canonical
from locker_server.audit.events import SYSTEM, AuditEvent
from locker_server.audit.models import HEAD_ID, checkpoints_table, entries_table, head_table
from locker_server.audit.store import Row
from locker_server.audit.verify import Cadence, VerificationReport, verify_chain
from locker_server.audit.witness import FileWitness, Witness, witness_after_commit

if TYPE_CHECKING:
    from locker_server.config import Settings
    from locker_server.keys import ServerKeys

logger = logging.getLogger(__name__)


# Built once: statements with bound parameters hit SQLAlchemy's compiled cache every time.
_HEAD = head_table.c
_LOCK_HEAD = (
    sa.update(head_table)
    .where(_HEAD.id == HEAD_ID)
    .values(seq=_HEAD.seq)  # a no-op write: it takes the lock before anything is read
    .returning(
        _HEAD.seq,
        _HEAD.entry_hash,
        _HEAD.last_checkpoint_seq,
        _HEAD.last_checkpoint_at,
        # The stored tip, in the same round trip (an index lookup): rows past the head
        # were written around it.
        sa.select(sa.func.max(entries_table.c.seq)).scalar_subquery(),
    )
)
_ADVANCE_HEAD = (
    sa.update(head_table)
    .where(_HEAD.id == HEAD_ID)
    .values(seq=sa.bindparam("new_seq"), entry_hash=sa.bindparam("new_hash"))
)
_MARK_CHECKPOINT = (
    sa.update(head_table)
    .where(_HEAD.id == HEAD_ID)
    .values(
        last_checkpoint_seq=sa.bindparam("checkpoint_seq"),
        last_checkpoint_at=sa.bindparam("checkpoint_at"),
    )
)
_INSERT_ENTRY = sa.insert(entries_table)
_INSERT_CHECKPOINT = sa.insert(checkpoints_table)


@dataclass(frozen=True, slots=True)
class RecordedEntry:
    """Where an event landed in the chain."""

    seq: int
    entry_hash: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    entry_hash: str
    signed_at: datetime
    key_id: str
    signature: str


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    entry_hash: str
    last_checkpoint_seq: int
    last_checkpoint_at: datetime | None
    #: The highest ``seq`` stored; past ``seq`` only if rows were written around the head.
    stored_tip: int


class AuditLog:
    """Tamper-evident audit log; one instance per application, shared by all requests."""

    def __init__(
        self,
        *,
        signing_key: Ed25519PrivateKey,
        checkpoint_entries: int = 1000,
        checkpoint_seconds: int = 300,
        trusted_public_keys: Iterable[Ed25519PublicKey] = (),
        clock: Callable[[], datetime] | None = None,
        witness: Witness | None = None,
    ) -> None:
        if not 1 <= checkpoint_entries <= 1000 or not 1 <= checkpoint_seconds <= 300:
            raise ValueError("checkpoints are due at least every 1,000 entries and 300 s")
        self._signing_key = signing_key
        self.public_key = signing_key.public_key()
        self.key_id = canonical.key_id(self.public_key)
        self.checkpoint_entries = checkpoint_entries
        self.checkpoint_interval = timedelta(seconds=checkpoint_seconds)
        keys = [self.public_key, *trusted_public_keys]
        #: Keys whose checkpoints verification accepts (the current one and retired ones).
        self.trusted_keys = {canonical.key_id(key): key for key in keys}
        self._clock = clock or (lambda: datetime.now(UTC))
        #: Gets every checkpoint after its commit (``None``: checkpoints stay in the database).
        self.witness = witness

    @classmethod
    def for_server(cls, settings: Settings, keys: ServerKeys) -> AuditLog:
        """The server's log: its signing key, checkpoint cadence and witness file."""
        return cls(
            signing_key=keys.audit_signing_key,
            checkpoint_entries=settings.audit_checkpoint_entries,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
            witness=FileWitness(settings.resolved_audit_witness_path),
        )

    def record(self, session: Session, event: AuditEvent) -> RecordedEntry:
        """Append ``event`` in the caller's transaction (the caller commits)."""
        return self.record_many(session, [event])[-1]

    def record_many(self, session: Session, events: Sequence[AuditEvent]) -> list[RecordedEntry]:
        """Append ``events`` in order in the caller's transaction (the caller commits).

        The chain is the one that many ``record`` calls would build (one ``recorded_at`` for
        all, checkpoints wherever they fall due), but the head is locked and advanced once and
        the entries are inserted in one statement: a batch costs a handful of round trips.
        """
        if not events:
            return []
        head = self._lock_head(session)
        now = self._now()
        wanted = len(events)
        if head.stored_tip > head.seq:
            head, events = self._step_over_foreign_rows(head, events)
        rows, recorded = _chain_rows(head.seq, head.entry_hash, now, events)
        # One row as one plain INSERT: the executemany path costs a single append more.
        session.execute(_INSERT_ENTRY, rows[0] if len(rows) == 1 else rows)
        for entry in recorded:  # at most one per 1,000 entries, and one per interval
            if self._checkpoint_due(head, entry.seq, now):
                self._write_checkpoint(session, entry.seq, entry.entry_hash, now)
                head = replace(head, last_checkpoint_seq=entry.seq, last_checkpoint_at=now)
        tip = recorded[-1]
        session.execute(_ADVANCE_HEAD, {"new_seq": tip.seq, "new_hash": tip.entry_hash})
        return recorded[-wanted:]  # the caller's entries, not an alarm put before them

    def _step_over_foreign_rows(
        self, head: _Head, events: Sequence[AuditEvent]
    ) -> tuple[_Head, list[AuditEvent]]:
        """Rows sit past the head: append after them, chained to the real tip, alarm first.

        Refusing to append would let anyone able to INSERT one row stop every audited
        write; overwriting is impossible (the rows are the evidence). Stepping over keeps
        both the service and the evidence: the next entry links to the head's hash, so
        the foreign rows can never become part of the chain.
        """
        first, last = head.seq + 1, head.stored_tip
        logger.error(
            "audit entries %s..%s were written around the chain head; appending after them "
            "(run `locker-server audit verify`)",
            first,
            last,
        )
        alarm = AuditEvent(
            action="audit.head_bypassed",
            actor=SYSTEM,
            outcome="alarm",
            channel=events[0].channel,
            reason="entries were written around the chain head; run `locker-server audit verify`",
            details={"first_seq": first, "last_seq": last},
        )
        # The chain continues from the head's hash; only the numbering moves past the rows.
        return replace(head, seq=last), [alarm, *events]

    def checkpoint_now(self, session: Session) -> Checkpoint | None:
        """Sign the current tip unless it is already signed (or the log is empty).

        Run by the CLI (``audit checkpoint``) or a worker so a quiet log's tail is signed too.
        """
        head = self._lock_head(session)
        if head.seq == 0 or head.seq == head.last_checkpoint_seq:
            return None
        return self._write_checkpoint(session, head.seq, head.entry_hash, self._now())

    def verify(
        self,
        session: Session,
        *,
        progress: Callable[[int], None] | None = None,
        witness: Sequence[Row] | None = None,
    ) -> VerificationReport:
        """Check the whole chain, every checkpoint, the checkpoint cadence and, given the
        witness's checkpoints (``witness.read_witness``), that the database still holds
        every one of them; report the first bad position."""
        cadence = Cadence(self.checkpoint_entries, self.checkpoint_interval)
        return verify_chain(
            session, self.trusted_keys, progress=progress, witness=witness, cadence=cadence
        )

    def sign_bundle_manifest(self, message: bytes) -> bytes:
        """Sign an export bundle's manifest (``canonical.manifest_message``) only."""
        if not message.startswith(canonical.BUNDLE_TAG):
            raise ValueError("only bundle manifests are signed here")
        return self._signing_key.sign(message)

    def _now(self) -> datetime:
        # Canonical timestamps have microsecond resolution; so does every backend.
        return self._clock().astimezone(UTC)

    def _lock_head(self, session: Session) -> _Head:
        row = session.execute(_LOCK_HEAD).one()
        return _Head(row[0], row[1], row[2], _utc(row[3]), int(row[4] or 0))

    def _checkpoint_due(self, head: _Head, seq: int, now: datetime) -> bool:
        if seq - head.last_checkpoint_seq >= self.checkpoint_entries:
            return True
        last = head.last_checkpoint_at
        return last is None or now - last >= self.checkpoint_interval

    def _write_checkpoint(
        self, session: Session, seq: int, entry_hash: str, now: datetime
    ) -> Checkpoint:
        signed_at = canonical.format_time(now)
        key, signature = canonical.sign_checkpoint(self._signing_key, seq, entry_hash, signed_at)
        checkpoint = Checkpoint(seq, entry_hash, now, key, signature)
        session.execute(
            _INSERT_CHECKPOINT,
            {
                "seq": seq,
                "entry_hash": entry_hash,
                "signed_at": now,
                "key_id": key,
                "signature": signature,
            },
        )
        session.execute(_MARK_CHECKPOINT, {"checkpoint_seq": seq, "checkpoint_at": now})
        if self.witness is not None:
            signed = (seq, entry_hash, signed_at, key, signature)
            witness_after_commit(session, self.witness, signed)
        logger.debug("audit checkpoint signed at seq %s", seq)
        return checkpoint


def _chain_rows(
    seq: int, prev_hash: str, now: datetime, events: Sequence[AuditEvent]
) -> tuple[list[dict[str, object]], list[RecordedEntry]]:
    """The entries after ``(seq, prev_hash)``, each hashed over its predecessor."""
    rows: list[dict[str, object]] = []
    recorded: list[RecordedEntry] = []
    for event in events:
        seq += 1
        values = _canonical_values(seq, now, event)
        entry_hash = canonical.entry_hash(prev_hash, values)
        row = dict(zip(canonical.CANONICAL_FIELDS, values, strict=True))
        row.update(recorded_at=now, device_time=_utc(event.device_time))
        rows.append({"prev_hash": prev_hash, "entry_hash": entry_hash, **row})
        recorded.append(RecordedEntry(seq=seq, entry_hash=entry_hash, recorded_at=now))
        prev_hash = entry_hash
    return rows, recorded


def _canonical_values(seq: int, now: datetime, event: AuditEvent) -> list[object]:
    device_time = _utc(event.device_time)
    return [
        seq,
        canonical.format_time(now),
        canonical.format_time(device_time) if device_time is not None else None,
        event.actor.type,
        event.actor.id,
        event.action,
        event.outcome,
        event.site_id,
        event.cabinet_id,
        event.door_id,
        event.parcel_id,
        event.recipient_id,
        event.channel,
        event.source,
        event.reason,
        canonical.canonical_details(event.details),
    ]


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC; naive values (SQLite's, or a device's) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
