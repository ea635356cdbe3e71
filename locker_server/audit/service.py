"""Reading the log, audited: every view, verification and export becomes an entry itself.

The CLI and the API both go through these functions, so neither can forget to log that
somebody looked (``audit.viewed``), checked (``audit.verified``) or took a copy
(``audit.exported``). The caller commits, as for any ``record``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.audit import canonical, export, store
from locker_server.audit.events import Actor, AuditEvent
from locker_server.audit.export import BundleSummary, EntryFilter
from locker_server.audit.log import AuditLog
from locker_server.audit.models import entries_table
from locker_server.audit.verify import VerificationReport
from locker_server.audit.witness import FileWitness, read_witness
from locker_server.db import session_scope


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads the log, and from where (the audit entry's who and where)."""

    actor: Actor
    channel: str
    source: str | None = None
    #: Added to every entry's details (e.g. the operating-system user of a CLI run).
    details: Mapping[str, Any] = field(default_factory=dict)

    def event(self, action: str, outcome: str, details: dict[str, Any]) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=self.actor,
            outcome=outcome,
            channel=self.channel,
            source=self.source,
            details={**self.details, **details},
        )


def default_witness_path(audit: AuditLog) -> Path | None:
    """The log's own witness file, if it has one and it exists."""
    witness = audit.witness
    if isinstance(witness, FileWitness) and witness.path.exists():
        return witness.path
    return None


def _witness_rows(path: Path | None) -> list[store.Row]:
    return read_witness(path) if path is not None else []


def verify_log(
    audit: AuditLog,
    session: Session,
    reader: Reader,
    *,
    progress: Callable[[int], None] | None = None,
    witness_path: Path | None = None,
) -> VerificationReport:
    """Verify the whole log (held to the witness file at ``witness_path``, default the
    log's own when it exists), then record ``audit.verified`` with the verdict."""
    witness_path = witness_path or default_witness_path(audit)
    witness = _witness_rows(witness_path) if witness_path is not None else None
    report = audit.verify(session, progress=progress, witness=witness)
    details = {
        "entries_checked": report.entries_checked,
        "kind": report.kind,
        "first_bad_seq": report.first_bad_seq,
        "witness_checked": report.witness_checked,
    }
    outcome = "success" if report.ok else "failure"
    audit.record(session, reader.event("audit.verified", outcome, details))
    return report


@dataclass(frozen=True, slots=True)
class EntryPage:
    entries: list[dict[str, Any]]
    total: int


def list_entries(
    audit: AuditLog,
    session: Session,
    reader: Reader,
    entry_filter: EntryFilter,
    *,
    limit: int,
    offset: int,
) -> EntryPage:
    """A page of matching entries (oldest first), recorded as ``audit.viewed``."""
    clauses = entry_filter.clauses()
    total = session.execute(
        sa.select(sa.func.count()).select_from(entries_table).where(*clauses)
    ).scalar_one()
    seq = entries_table.c.seq
    page_clauses = [*clauses, seq.in_(_page_seqs(clauses, limit, offset))]
    entries = [export.entry_dict(row) for row in _rows(session, page_clauses)]
    details = {"filter": entry_filter.to_dict(), "returned": len(entries), "offset": offset}
    audit.record(session, reader.event("audit.viewed", "success", details))
    return EntryPage(entries=entries, total=int(total))


def _page_seqs(
    clauses: list[sa.ColumnElement[bool]], limit: int, offset: int
) -> sa.Select[tuple[int]]:
    seq = entries_table.c.seq
    return sa.select(seq).where(*clauses).order_by(seq).limit(limit).offset(offset)


def _rows(session: Session, clauses: list[sa.ColumnElement[bool]]) -> list[store.Row]:
    return [row for batch in store.stream_entries(session, *clauses) for row in batch]


def record_export(
    audit: AuditLog,
    session: Session,
    reader: Reader,
    entry_filter: EntryFilter,
    *,
    export_format: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Record ``audit.exported`` for a CSV / JSON Lines / bundle export."""
    details = {"format": export_format, "filter": entry_filter.to_dict(), **(extra or {})}
    audit.record(session, reader.event("audit.exported", "success", details))


def export_bundle(
    audit: AuditLog,
    engine: Engine,
    reader: Reader,
    entry_filter: EntryFilter,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> BundleSummary:
    """Sign the tip, write the bundle (with the witness lines of its run), record
    ``audit.exported`` (three transactions).

    The tip is signed and committed first, so a long export never holds the chain head
    (which would stall every appender) and the run always ends on a signed checkpoint.
    """
    with session_scope(engine) as session:
        audit.checkpoint_now(session)
        signed_tip = store.latest_checkpoint_seq(session)
    with session_scope(engine) as session:
        summary = export.write_bundle(
            session,
            path,
            entry_filter,
            up_to_seq=signed_tip,
            public_key_pem=canonical.public_key_pem(audit.public_key),
            key_id=audit.key_id,
            sign=audit.sign_bundle_manifest,
            progress=progress,
            witness=_witness_rows(default_witness_path(audit)),
        )
    extra = {"first_seq": summary.first_seq, "last_seq": summary.last_seq}
    with session_scope(engine) as session:
        record_export(audit, session, reader, entry_filter, export_format="bundle", extra=extra)
    return summary


@dataclass(frozen=True, slots=True)
class BrowsePage:
    """Newest entries first; ``older_than`` is the ``before`` of the next page (None: last)."""

    entries: list[dict[str, Any]]
    total: int
    older_than: int | None


def browse_entries(
    audit: AuditLog,
    session: Session,
    reader: Reader,
    entry_filter: EntryFilter,
    *,
    before: int | None,
    limit: int,
) -> BrowsePage:
    """A page of matching entries, newest first, keyset-paged on ``seq`` (``before``: only
    entries below it), so the thousandth page costs what the first does. Recorded as
    ``audit.viewed``."""
    clauses = entry_filter.clauses()
    seq = entries_table.c.seq
    total = session.execute(
        sa.select(sa.func.count()).select_from(entries_table).where(*clauses)
    ).scalar_one()
    page_clauses = [*clauses] if before is None else [*clauses, seq < before]
    dialect = session.get_bind().dialect.name
    statement = (
        sa.select(*store.entry_columns(dialect))
        .where(*page_clauses)
        .order_by(seq.desc())
        .limit(limit + 1)
    )
    rows = [tuple(row) for row in session.execute(statement)]
    entries = [export.entry_dict(row) for row in rows[:limit]]
    older_than = entries[-1]["seq"] if len(rows) > limit else None
    details = {"filter": entry_filter.to_dict(), "returned": len(entries), "before": before}
    audit.record(session, reader.event("audit.viewed", "success", details))
    return BrowsePage(entries=entries, total=int(total), older_than=older_than)


@dataclass(frozen=True, slots=True)
class LastVerification:
    recorded_at: str
    ok: bool
    details: dict[str, Any]


def last_verification(session: Session) -> LastVerification | None:
    """The newest ``audit.verified`` entry: when the log was last checked, and the verdict.

    Only as trustworthy as the log it is read from; the Verify button re-checks."""
    seq = entries_table.c.seq
    dialect = session.get_bind().dialect.name
    row = session.execute(
        sa.select(*store.entry_columns(dialect))
        .where(entries_table.c.action == "audit.verified")
        .order_by(seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    entry = export.entry_dict(tuple(row))
    return LastVerification(
        recorded_at=entry["recorded_at"], ok=entry["outcome"] == "success", details=entry["details"]
    )
