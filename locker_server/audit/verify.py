"""Verification of the chain and its checkpoints, with the first bad position and its kind.

One streaming pass checks, for every entry in ``seq`` order: the sequence has no gap, the
entry links to its predecessor (``prev_hash``), its hash recomputes from its content, and a
signed checkpoint sits wherever the log's cadence made one due (every ``checkpoint_entries``
entries and ``checkpoint_interval`` after the last one, exactly the writer's rule).
Checkpoint signatures — the database's and the witness's — are checked up front; every
witnessed checkpoint must still be in the database, and the pass compares each signed
hash with the entry at that position. The first anomaly found is classified with a few
indexed look-ups (only then, so the pass stays a tight loop):

==========================  ==============================================================
kind                        meaning (``first_bad_seq``)
==========================  ==============================================================
``edited``                  an entry's content or hash no longer matches (that entry)
``deleted``                 a sequence gap, or an entry renumbered over one (first missing)
``inserted``                an entry that does not belong between its neighbours, or rows
                            written past the chain head (the first such entry)
``reordered``               an entry links to a predecessor that sits *after* it (it)
``rewritten``               chain self-consistent but a signed checkpoint disagrees: the
                            chain was recomputed (first entry after the last good checkpoint)
``truncated``               the tail is missing: a checkpoint or the head points past the end
                            (first missing position)
``bad_checkpoint_signature``a checkpoint's signature is invalid (its seq)
``unknown_checkpoint_key``  a checkpoint signed by a key that is not trusted (its seq)
``checkpoint_missing``      the cadence made a checkpoint due here and there is none (its seq)
``checkpoint_removed``      the witness holds a signed checkpoint the database lost or
                            changed (its seq)
``bad_witness_signature``   a witness line is not validly signed by a trusted key (its seq)
==========================  ==============================================================

A junk entry at position K is reported at K, not at its predecessor: K-1 is blamed only
when entry K is shown to be the genuine one (the entry after it, or the chain head, is
chained to it).

Past inserted rows whose real successor is known the pass carries on along the real
chain (rows the log stepped over stay forever; they must not hide a later change), so
``findings`` can name several problems; any other break ends the pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any, Final

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from locker_server.audit import canonical, store
from locker_server.audit.models import HEAD_ID, head_table
from locker_server.audit.store import HASH_INDEX, PREV_INDEX, Row

PROGRESS_EVERY: Final = 100_000
_RENUMBER_PROBE: Final = 16  # how far a renumbered entry's original seq is searched
#: The most the writer ever lets pass between checkpoints (``AuditLog`` refuses more).
MAX_CHECKPOINT_ENTRIES: Final = 1000
MAX_CHECKPOINT_INTERVAL: Final = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class Cadence:
    """When the writer signs: every ``entries`` entries and ``interval`` after the last."""

    entries: int = MAX_CHECKPOINT_ENTRIES
    interval: timedelta = MAX_CHECKPOINT_INTERVAL


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    seq: int
    message: str


@dataclass(frozen=True, slots=True)
class VerificationReport:
    ok: bool
    entries_checked: int
    checkpoints_checked: int
    last_seq: int
    last_entry_hash: str
    latest_checkpoint_seq: int | None
    first_bad_seq: int | None = None
    kind: str | None = None
    message: str = "chain intact; every checkpoint signature valid"
    #: Witnessed checkpoints held against the database (0: no witness given).
    witness_checked: int = 0
    #: Every problem found, first position first (the fields above name the first).
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Scan:
    """Progress of the streaming pass."""

    next_seq: int = 1
    prev_hash: str = canonical.GENESIS_HASH
    last_good_checkpoint: int = 0
    finding: Finding | None = None
    bad_row: Row | None = None
    #: The next checkpoint is due at this seq, or at the first entry recorded at or after
    #: this canonical time ("" before the first checkpoint: entry 1 is always signed).
    due_seq: int = 1
    due_time: str = ""


@dataclass(frozen=True, slots=True)
class _Checkpoints:
    #: Validly signed checkpoints: seq -> entry hash, and seq -> canonical signed_at.
    valid: dict[int, str]
    signed_at: dict[int, str]
    findings: list[Finding]
    count: int
    witnessed: int = 0


def verify_chain(
    session: Session,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    *,
    progress: Callable[[int], None] | None = None,
    witness: Iterable[Row] | None = None,
    cadence: Cadence | None = None,
) -> VerificationReport:
    """Verify the whole log in ``session`` against checkpoints signed by ``trusted_keys``.

    ``witness``: the checkpoints kept outside the database (``witness.read_witness``);
    ``cadence``: the writer's (default: the most any writer allows).
    """
    rows = store.checkpoint_rows(session)
    checkpoints = _check_checkpoints(rows, trusted_keys)
    if witness is not None:
        checkpoints = _with_witness(checkpoints, rows, witness, trusted_keys)
    scan = _Scan()
    chain = _scan_chain(session, checkpoints, cadence or Cadence(), scan, progress)
    return _report(scan, checkpoints, [*checkpoints.findings, *chain])


def _scan_chain(
    session: Session,
    checkpoints: _Checkpoints,
    cadence: Cadence,
    scan: _Scan,
    progress: Callable[[int], None] | None,
) -> list[Finding]:
    """The streaming pass. Past inserted rows whose real successor is known (rows written
    around the head, which the log steps over, are the usual case) it carries on along
    the real chain, so one incident does not hide a later one."""
    found: list[Finding] = []
    from_seq = 1
    while True:
        batches = store.stream_all_entries(session, from_seq=from_seq)
        try:
            _run_scan(batches, checkpoints, cadence, scan, progress)
        finally:
            batches.close()
        if scan.finding is None and scan.bad_row is not None:
            scan.finding = _classify_link_break(session, scan, checkpoints.valid)
        if scan.finding is None:
            return found + _tail_findings(session, scan, checkpoints.valid)
        found.append(scan.finding)
        resume = _resume_point(session, scan)
        if resume is None:
            return found
        from_seq, scan.prev_hash = resume
        scan.next_seq, scan.finding, scan.bad_row = from_seq, None, None


def _resume_point(session: Session, scan: _Scan) -> tuple[int, str] | None:
    """Where the real chain goes on after inserted rows, and the hash it links to."""
    row, seq = scan.bad_row, scan.next_seq
    if scan.finding is None or scan.finding.kind != "inserted" or row is None:
        return None
    if row[PREV_INDEX] != scan.prev_hash:  # the row links back past the inserted ones
        linked_to = store.seq_of_hash(session, row[PREV_INDEX])
        if linked_to is not None and linked_to < seq - 1:
            return seq, row[PREV_INDEX]
    if _skipped_by_its_successor(session, scan):  # the row itself was inserted
        return seq + 1, scan.prev_hash
    return None


def _check_checkpoints(
    rows: Iterable[Row], trusted_keys: Mapping[str, Ed25519PublicKey]
) -> _Checkpoints:
    valid: dict[int, str] = {}
    signed_at: dict[int, str] = {}
    findings: list[Finding] = []
    count = 0
    for row in rows:
        count += 1
        problem = _signature_problem(row, trusted_keys)
        if problem is None:
            valid[row[0]], signed_at[row[0]] = row[1], row[2]
        else:
            findings.append(Finding(problem[0], row[0], problem[1]))
    return _Checkpoints(valid, signed_at, findings, count)


def _signature_problem(
    row: Row, trusted_keys: Mapping[str, Ed25519PublicKey]
) -> tuple[str, str] | None:
    seq, entry_hash, signed_at, key, signature = row
    public_key = trusted_keys.get(key)
    if public_key is None:
        return "unknown_checkpoint_key", f"key {key} not trusted"
    if not canonical.checkpoint_signature_ok(public_key, seq, entry_hash, signed_at, signature):
        return "bad_checkpoint_signature", "signature invalid"
    return None


def _with_witness(
    checkpoints: _Checkpoints,
    stored: Iterable[Row],
    witness: Iterable[Row],
    trusted_keys: Mapping[str, Ed25519PublicKey],
) -> _Checkpoints:
    """Hold the database to the witness: every validly witnessed checkpoint must still be
    stored unchanged, and its hash joins the ones the scan checks entries against."""
    in_database = {row[0]: tuple(row) for row in stored}
    valid, signed_at = dict(checkpoints.valid), dict(checkpoints.signed_at)
    findings = list(checkpoints.findings)
    count = 0
    for row in witness:
        count += 1
        seq = row[0]
        if _signature_problem(row, trusted_keys) is not None:
            message = f"witness line for checkpoint {seq} is not validly signed"
            findings.append(Finding("bad_witness_signature", seq, message))
            continue
        if in_database.get(seq) != tuple(row):
            state = "changed in" if seq in in_database else "missing from"
            message = f"witnessed checkpoint {seq} is {state} the database"
            findings.append(Finding("checkpoint_removed", seq, message))
        valid[seq], signed_at[seq] = row[1], row[2]
    return replace(
        checkpoints, valid=valid, signed_at=signed_at, findings=findings, witnessed=count
    )


def _run_scan(
    batches: Iterable[Sequence[Row]],
    checkpoints: _Checkpoints,
    cadence: Cadence,
    scan: _Scan,
    progress: Callable[[int], None] | None,
) -> None:
    reported = 0
    for batch in batches:
        if not _scan_batch(batch, checkpoints, cadence, scan):
            return
        if progress is not None and scan.next_seq - 1 - reported >= PROGRESS_EVERY:
            reported = scan.next_seq - 1
            progress(reported)


def _scan_batch(
    batch: Sequence[Row], checkpoints: _Checkpoints, cadence: Cadence, scan: _Scan
) -> bool:
    """The hot loop. Returns False at the first anomaly (recorded on ``scan``)."""
    sha256, encode, tag = hashlib.sha256, canonical.canonical_bytes, canonical.ENTRY_TAG
    signed = checkpoints.valid
    expected, prev = scan.next_seq, scan.prev_hash
    due_seq, due_time = scan.due_seq, scan.due_time
    try:
        for row in batch:
            if row[0] != expected:
                scan.finding = Finding("deleted", expected, f"entry {expected} is missing")
                return False
            if row[PREV_INDEX] != prev:
                scan.bad_row = row
                return False
            digest = sha256(tag + bytes.fromhex(prev) + encode(row[:PREV_INDEX])).hexdigest()
            if digest != row[HASH_INDEX]:
                scan.bad_row = row
                return False
            prev = digest
            if expected in signed:
                if signed[expected] != digest:
                    scan.finding = _rewritten(scan.last_good_checkpoint, expected)
                    return False
                scan.last_good_checkpoint = expected
                _next_due(scan, cadence, expected, checkpoints.signed_at[expected])
                due_seq, due_time = scan.due_seq, scan.due_time
            elif expected >= due_seq or row[1] >= due_time:
                scan.finding = _missing_checkpoint(expected, scan)
                return False
            expected += 1
    finally:
        scan.next_seq, scan.prev_hash = expected, prev
    return True


def _next_due(scan: _Scan, cadence: Cadence, seq: int, signed_at: str) -> None:
    scan.due_seq = seq + cadence.entries
    due = canonical.parse_time(signed_at) + cadence.interval
    scan.due_time = canonical.format_time(due)


def _missing_checkpoint(seq: int, scan: _Scan) -> Finding:
    why = f"{seq - scan.last_good_checkpoint} entries" if seq >= scan.due_seq else "time"
    return Finding(
        "checkpoint_missing",
        seq,
        f"a signed checkpoint was due at entry {seq} ({why} since the one at "
        f"{scan.last_good_checkpoint}) and there is none: checkpoints were removed",
    )


def _rewritten(last_good: int, checkpoint_seq: int) -> Finding:
    return Finding(
        "rewritten",
        last_good + 1,
        f"chain recomputed: the checkpoint at {checkpoint_seq} disagrees; "
        f"altered somewhere in {last_good + 1}..{checkpoint_seq}",
    )


def _classify_link_break(session: Session, scan: _Scan, signed: Mapping[int, str]) -> Finding:
    """Entry ``scan.next_seq`` does not link to its predecessor, or its hash does not
    recompute: work out what happened."""
    row = scan.bad_row
    assert row is not None
    seq = scan.next_seq
    head_seq = _head(session)[0]
    if seq > head_seq:
        message = f"entries after {head_seq} were written around the chain head"
        return Finding("inserted", seq, message)
    if row[PREV_INDEX] == scan.prev_hash:  # linked, but its hash does not recompute
        return _edited_or_inserted(session, scan, row)
    linked_to = store.seq_of_hash(session, row[PREV_INDEX])
    if linked_to is not None and linked_to < seq - 1:
        return Finding("inserted", linked_to + 1, f"entries {linked_to + 1}..{seq - 1} inserted")
    if linked_to is not None and linked_to > seq:
        return Finding("reordered", seq, f"entry {seq} belongs after entry {linked_to}")
    if _skipped_by_its_successor(session, scan):
        return Finding("inserted", seq, f"entry {seq} does not belong to the chain")
    if not _self_consistent(row):
        return _altered_or_renumbered(row, seq)
    if _vouched_for(session, row, seq) and signed.get(seq - 1) != scan.prev_hash:
        return Finding("edited", seq - 1, f"entry {seq - 1} was altered and its hash recomputed")
    return Finding("edited", seq, f"entry {seq} was replaced: it does not link to {seq - 1}")


def _edited_or_inserted(session: Session, scan: _Scan, row: Row) -> Finding:
    seq = scan.next_seq
    if _skipped_by_its_successor(session, scan):
        return Finding("inserted", seq, f"entry {seq} does not belong to the chain")
    return Finding("edited", seq, f"entry {seq} was altered")


def _skipped_by_its_successor(session: Session, scan: _Scan) -> bool:
    """Whether the entry after the bad one links straight to the last good one."""
    following = store.entry_at(session, scan.next_seq + 1)
    return following is not None and following[PREV_INDEX] == scan.prev_hash


def _vouched_for(session: Session, row: Row, seq: int) -> bool:
    """Whether entry ``seq`` is the chain's own: the next entry, or the head, points at it."""
    following = store.entry_at(session, seq + 1)
    if following is not None:
        return bool(following[PREV_INDEX] == row[HASH_INDEX])
    return _head(session) == (seq, row[HASH_INDEX])


def _self_consistent(row: Row, seq: int | None = None) -> bool:
    values = list(row[:PREV_INDEX])
    if seq is not None:
        values[0] = seq
    try:
        return bool(canonical.entry_hash(row[PREV_INDEX], values) == row[HASH_INDEX])
    except ValueError:  # prev_hash is not even hex
        return False


def _altered_or_renumbered(row: Row, seq: int) -> Finding:
    for original in range(seq + 1, seq + 1 + _RENUMBER_PROBE):
        if _self_consistent(row, original):
            return Finding("deleted", seq, f"entry {original} renumbered over deleted entries")
    return Finding("edited", seq, f"entry {seq} was altered")


def _tail_findings(session: Session, scan: _Scan, signed: Mapping[int, str]) -> list[Finding]:
    last_seq = scan.next_seq - 1
    findings: list[Finding] = []
    beyond = [seq for seq in signed if seq > last_seq]
    if beyond:
        message = f"checkpoint at {max(beyond)} but the log ends at {last_seq}"
        findings.append(Finding("truncated", last_seq + 1, message))
    head_seq = _head(session)[0]
    if head_seq < last_seq:
        message = f"entries after {head_seq} were written around the chain head"
        findings.append(Finding("inserted", head_seq + 1, message))
    elif head_seq > last_seq and store.max_seq(session) < head_seq:
        message = f"the chain head is at {head_seq} but the log ends at {last_seq}"
        findings.append(Finding("truncated", last_seq + 1, message))
    return findings


def _head(session: Session) -> tuple[int, str]:
    statement = sa.select(head_table.c.seq, head_table.c.entry_hash).where(
        head_table.c.id == HEAD_ID
    )
    seq, entry_hash = session.execute(statement).one()
    return int(seq), str(entry_hash)


def _report(scan: _Scan, checkpoints: _Checkpoints, findings: list[Finding]) -> VerificationReport:
    report = VerificationReport(
        ok=not findings,
        entries_checked=scan.next_seq - 1,
        checkpoints_checked=checkpoints.count,
        last_seq=scan.next_seq - 1,
        last_entry_hash=scan.prev_hash,
        latest_checkpoint_seq=max(checkpoints.valid, default=None),
        witness_checked=checkpoints.witnessed,
    )
    if not findings:
        return report
    ordered = sorted(findings, key=lambda finding: finding.seq)  # stable: first found wins
    first = ordered[0]
    return replace(
        report,
        first_bad_seq=first.seq,
        kind=first.kind,
        message=first.message,
        findings=ordered,
    )
