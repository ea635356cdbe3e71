"""Export of a filtered range of the log: CSV, JSON Lines, and a verification bundle.

CSV and JSON Lines carry only the entries that match the filter, each with its
``prev_hash`` and ``entry_hash`` (so any single entry's hash can be recomputed), streamed
row by row. In CSV, text cells starting with ``= + - @`` or a tab are prefixed with ``'``
so a spreadsheet never runs them as formulas (CSV is for reading, not for verification).

The verification bundle (a zip) is what an auditor checks offline. A filtered selection
is usually not contiguous, and a lone entry cannot be tied to a signature, so the bundle
always carries the *contiguous* run of entries from the first matching one up to the first
signed checkpoint at or after the last matching one, each marked ``"matched": true|false``
(the filter is in the manifest and the verifier re-applies it). The export first signs the
current tip (``checkpoint_now``), so that checkpoint always exists. Files::

    manifest.json      format, filter, first/last seq, boundary hashes (prev_hash of the
                       first entry, entry_hash of the last), counts, key id, SHA-256 of
                       files; signed with the audit key, so the selection itself (where
                       the run starts, which filter) cannot be changed either
    entries.jsonl      one entry per line, fields as in the canonical form (details as an
                       object), plus prev_hash, entry_hash, matched
    checkpoints.jsonl  every checkpoint inside the run; the last one signs the run's end
    witness.jsonl      every line of the server's witness file inside the run: the verifier
                       holds the entries and checkpoints.jsonl to them, so a bundle exported
                       from a database whose checkpoints were removed and whose chain was
                       recomputed does not verify
    public_key.pem     the checkpoint key (its fingerprint is the key id; pin it when verifying)

Entries outside the matching run are never included, so an export for one site shows
other sites' entries only where they interleave with it (ids only: no personal data).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import sqlalchemy as sa
from sqlmodel import Session

from locker_server.audit import canonical, store
from locker_server.audit.models import checkpoints_table, entries_table
from locker_server.audit.store import ENTRY_COLUMNS, Row

BUNDLE_FORMAT: Final = "locker-audit-bundle-v1"
ENTRIES_FILE: Final = "entries.jsonl"
CHECKPOINTS_FILE: Final = "checkpoints.jsonl"
WITNESS_FILE: Final = "witness.jsonl"
PUBLIC_KEY_FILE: Final = "public_key.pem"
MANIFEST_FILE: Final = "manifest.json"
PROGRESS_EVERY: Final = 100_000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries an export or a listing selects. ``until`` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    action_prefix: str | None = None
    site_id: int | None = None
    cabinet_id: int | None = None
    parcel_id: int | None = None
    #: Sites a site-limited principal may see (``None``: all sites, entries without a site too).
    allowed_sites: frozenset[int] | None = field(default=None)
    door_id: int | None = None
    outcome: str | None = None
    #: ``type`` or ``type:id`` of the actor, e.g. ``user:3`` or ``cabinet``.
    actor: str | None = None
    #: Case-insensitive text looked for in the action, the reason and the details.
    text: str | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        """The filter as SQL conditions on ``audit_entries``."""
        c = entries_table.c
        clauses: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            clauses.append(c.recorded_at >= _utc(self.since))
        if self.until is not None:
            clauses.append(c.recorded_at < _utc(self.until))
        if self.action_prefix:
            clauses.append(c.action.startswith(self.action_prefix, autoescape=True))
        for name in ("site_id", "cabinet_id", "parcel_id", "door_id", "outcome"):
            if getattr(self, name) is not None:
                clauses.append(c[name] == getattr(self, name))
        if self.actor is not None:
            actor_type, _, actor_id = self.actor.partition(":")
            clauses.append(c.actor_type == actor_type)
            if actor_id:
                clauses.append(c.actor_id == actor_id)
        if self.text:
            pattern = f"%{_escape_like(self.text.lower())}%"
            clauses.append(
                sa.or_(
                    *(
                        sa.func.lower(c[name]).like(pattern, escape="\\")
                        for name in ("action", "reason", "details")
                    )
                )
            )
        if self.allowed_sites is not None:
            clauses.append(c.site_id.in_(sorted(self.allowed_sites)))
        return clauses

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """The same filter applied to an entry dict (canonical time strings), for bundles."""
        recorded = entry["recorded_at"]
        if self.since is not None and recorded < canonical.format_time(self.since):
            return False
        if self.until is not None and recorded >= canonical.format_time(self.until):
            return False
        if self.action_prefix and not entry["action"].startswith(self.action_prefix):
            return False
        for name in ("site_id", "cabinet_id", "parcel_id", "door_id", "outcome"):
            wanted = getattr(self, name)
            if wanted is not None and entry[name] != wanted:
                return False
        if self.actor is not None and not _actor_matches(self.actor, entry):
            return False
        if self.text and not _text_matches(self.text, entry):
            return False
        return self.allowed_sites is None or entry["site_id"] in self.allowed_sites

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": canonical.format_time(self.since) if self.since else None,
            "until": canonical.format_time(self.until) if self.until else None,
            "action_prefix": self.action_prefix,
            "site_id": self.site_id,
            "cabinet_id": self.cabinet_id,
            "parcel_id": self.parcel_id,
            "allowed_sites": sorted(self.allowed_sites) if self.allowed_sites is not None else None,
            # Only when set: bundles exported before these filters existed still verify.
            **{
                name: getattr(self, name)
                for name in _NEWER_FILTERS
                if getattr(self, name) is not None
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntryFilter:
        allowed = data.get("allowed_sites")
        return cls(
            since=canonical.parse_time(data["since"]) if data.get("since") else None,
            until=canonical.parse_time(data["until"]) if data.get("until") else None,
            action_prefix=data.get("action_prefix"),
            site_id=data.get("site_id"),
            cabinet_id=data.get("cabinet_id"),
            parcel_id=data.get("parcel_id"),
            allowed_sites=frozenset(allowed) if allowed is not None else None,
            **{name: data.get(name) for name in _NEWER_FILTERS},
        )


_NEWER_FILTERS: Final = ("door_id", "outcome", "actor", "text")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _actor_matches(actor: str, entry: Mapping[str, Any]) -> bool:
    actor_type, _, actor_id = actor.partition(":")
    return entry["actor_type"] == actor_type and (not actor_id or entry["actor_id"] == actor_id)


def _text_matches(text: str, entry: Mapping[str, Any]) -> bool:
    wanted = text.lower()
    details = entry["details"]
    details_text = details if isinstance(details, str) else canonical.canonical_details(details)
    haystacks = (entry["action"], entry["reason"] or "", details_text)
    return any(wanted in haystack.lower() for haystack in haystacks)


def entry_dict(row: Row) -> dict[str, Any]:
    """A canonical entry tuple as a dict, with ``details`` parsed to an object."""
    entry = dict(zip(ENTRY_COLUMNS, row, strict=True))
    entry["details"] = json.loads(entry["details"])
    return entry


def entry_values(entry: Mapping[str, Any]) -> list[Any]:
    """Canonical values of an exported entry dict (details back to canonical text)."""
    values = [entry[name] for name in canonical.CANONICAL_FIELDS]
    values[-1] = canonical.canonical_details(entry["details"])
    return values


def _rows(session: Session, entry_filter: EntryFilter) -> Iterator[Row]:
    for batch in store.stream_entries(session, *entry_filter.clauses()):
        yield from batch


def _counted(rows: Iterator[Row], progress: Callable[[int], None] | None) -> Iterator[Row]:
    for count, row in enumerate(rows, start=1):
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
        yield row


def jsonl_lines(
    session: Session, entry_filter: EntryFilter, progress: Callable[[int], None] | None = None
) -> Generator[str]:
    """Matching entries as JSON Lines, one string per line (newline included)."""
    for row in _counted(_rows(session, entry_filter), progress):
        yield json.dumps(entry_dict(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_lines(
    session: Session, entry_filter: EntryFilter, progress: Callable[[int], None] | None = None
) -> Generator[str]:
    """Matching entries as CSV (header first), one string per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ENTRY_COLUMNS)
    for row in _counted(_rows(session, entry_filter), progress):
        writer.writerow([_csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():  # the header of an empty export
        yield buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


@dataclass(frozen=True, slots=True)
class BundleSummary:
    path: Path
    first_seq: int | None
    last_seq: int | None
    entries: int
    matched: int
    checkpoints: int


def _matching_span(
    session: Session, entry_filter: EntryFilter, up_to_seq: int | None
) -> tuple[int, int] | None:
    c = entries_table.c
    clauses = entry_filter.clauses()
    if up_to_seq is not None:
        clauses.append(c.seq <= up_to_seq)
    statement = sa.select(sa.func.min(c.seq), sa.func.max(c.seq)).where(*clauses)
    first, last = session.execute(statement).one()
    return None if first is None else (int(first), int(last))


def _anchor_seq(session: Session, last_matched: int) -> int | None:
    """The first checkpoint at or after ``last_matched``: it signs the run's end."""
    c = checkpoints_table.c
    statement = sa.select(sa.func.min(c.seq)).where(c.seq >= last_matched)
    value = session.execute(statement).scalar()
    return int(value) if value is not None else None


def write_bundle(
    session: Session,
    path: Path,
    entry_filter: EntryFilter,
    *,
    up_to_seq: int | None = None,
    public_key_pem: bytes,
    key_id: str,
    sign: Callable[[bytes], bytes],
    progress: Callable[[int], None] | None = None,
    witness: Sequence[Row] = (),
) -> BundleSummary:
    """Write the verification bundle for ``entry_filter`` to the zip file ``path``.

    The caller signs the tip first (``AuditLog.checkpoint_now``) and passes its seq as
    ``up_to_seq``, so the run always ends on a signed checkpoint even while entries keep
    arriving; ``sign`` signs the manifest (``AuditLog.sign_bundle_manifest``);
    ``witness``: the witness file's checkpoints (those inside the run are carried).
    """
    span = _matching_span(session, entry_filter, up_to_seq)
    anchor = _anchor_seq(session, span[1]) if span else None
    run = (span[0], anchor if anchor is not None else span[1]) if span else None
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        digests: dict[str, str] = {}
        stats = _write_entries(bundle, session, run, entry_filter, digests, progress)
        checkpoints = _write_checkpoints(bundle, session, run, digests)
        witnessed = _write_witness(bundle, witness, run, digests)
        digests[PUBLIC_KEY_FILE] = _write_file(bundle, PUBLIC_KEY_FILE, public_key_pem)
        manifest = {
            "format": BUNDLE_FORMAT,
            "chain_format": canonical.FORMAT,
            "created_at": canonical.format_time(datetime.now(UTC)),
            "filter": entry_filter.to_dict(),
            "first_seq": run[0] if run else None,
            "last_seq": run[1] if run else None,
            "start_prev_hash": stats.start_prev_hash,
            "end_entry_hash": stats.end_entry_hash,
            "entries": stats.entries,
            "matched": stats.matched,
            "checkpoints": checkpoints,
            "witness_checkpoints": witnessed,
            "key_id": key_id,
            "files": digests,
        }
        manifest["signature"] = sign(canonical.manifest_message(manifest)).hex()
        _write_file(bundle, MANIFEST_FILE, json.dumps(manifest, indent=2).encode() + b"\n")
    return BundleSummary(
        path=path,
        first_seq=run[0] if run else None,
        last_seq=run[1] if run else None,
        entries=stats.entries,
        matched=stats.matched,
        checkpoints=checkpoints,
    )


@dataclass
class _RunStats:
    entries: int = 0
    matched: int = 0
    start_prev_hash: str | None = None
    end_entry_hash: str | None = None


def _write_entries(
    bundle: zipfile.ZipFile,
    session: Session,
    run: tuple[int, int] | None,
    entry_filter: EntryFilter,
    digests: dict[str, str],
    progress: Callable[[int], None] | None,
) -> _RunStats:
    stats = _RunStats()
    digest = hashlib.sha256()
    with bundle.open(ENTRIES_FILE, "w", force_zip64=True) as handle:
        if run is not None:
            c = entries_table.c
            rows = _rows_between(session, c.seq >= run[0], c.seq <= run[1])
            for row in _counted(rows, progress):
                _write_entry(handle, digest, row, entry_filter, stats)
    digests[ENTRIES_FILE] = digest.hexdigest()
    return stats


def _rows_between(session: Session, *where: sa.ColumnElement[bool]) -> Iterator[Row]:
    for batch in store.stream_entries(session, *where):
        yield from batch


def _write_entry(
    handle: IO[bytes], digest: Any, row: Row, entry_filter: EntryFilter, stats: _RunStats
) -> None:
    entry = entry_dict(row)
    entry["matched"] = entry_filter.matches(entry)
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    handle.write(line)
    digest.update(line)
    if stats.start_prev_hash is None:
        stats.start_prev_hash = entry["prev_hash"]
    stats.end_entry_hash = entry["entry_hash"]
    stats.entries += 1
    stats.matched += entry["matched"]


def _write_checkpoints(
    bundle: zipfile.ZipFile,
    session: Session,
    run: tuple[int, int] | None,
    digests: dict[str, str],
) -> int:
    rows: Sequence[Row] = []
    if run is not None:
        c = checkpoints_table.c
        rows = store.checkpoint_rows(session, c.seq >= run[0], c.seq <= run[1])
    digests[CHECKPOINTS_FILE] = _write_file(bundle, CHECKPOINTS_FILE, _checkpoint_lines(rows))
    return len(rows)


def _write_witness(
    bundle: zipfile.ZipFile,
    witness: Sequence[Row],
    run: tuple[int, int] | None,
    digests: dict[str, str],
) -> int:
    rows = [row for row in witness if run is not None and run[0] <= row[0] <= run[1]]
    digests[WITNESS_FILE] = _write_file(bundle, WITNESS_FILE, _checkpoint_lines(rows))
    return len(rows)


def _checkpoint_lines(rows: Sequence[Row]) -> bytes:
    names = ("seq", "entry_hash", "signed_at", "key_id", "signature")
    text = "".join(json.dumps(dict(zip(names, row, strict=True))) + "\n" for row in rows)
    return text.encode()


def _write_file(bundle: zipfile.ZipFile, name: str, data: bytes) -> str:
    bundle.writestr(name, data)
    return hashlib.sha256(data).hexdigest()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
