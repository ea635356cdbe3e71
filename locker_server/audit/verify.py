"""Verification of the chain and its checkpoints, with the first bad position and its kind.

One streaming pass checks, for every entry in ``seq`` order: the sequence has no gap, the
entry links to its predecessor (``prev_hash``), and its hash recomputes from its content.
Checkpoint signatures are checked up front; the pass then compares each signed hash with
the entry at that position. The first anomaly found is classified with a few indexed
look-ups (only then, so the pass stays a tight loop):

==========================  ==============================================================
kind                        meaning (``first_bad_seq``)
==========================  ==============================================================
``edited``                  an entry's content or hash no longer matches (that entry)
``deleted``                 a sequence gap, or an entry renumbered over one (first missing)
``inserted``                an entry that does not belong between its neighbours (it)
``reordered``               an entry links to a predecessor that sits *after* it (it)
``rewritten``               chain self-consistent but a signed checkpoint disagrees: the
                            chain was recomputed (first entry after the last good checkpoint)
``truncated``               the tail is missing: a checkpoint or the head points past the end
                            (first missing position)
``bad_checkpoint_signature``a checkpoint's signature is invalid (its seq)
``unknown_checkpoint_key``  a checkpoint signed by a key that is not trusted (its seq)
==========================  ==============================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from locker_server.audit import canonical, store
from locker_server.audit.models import HEAD_ID, head_table
from locker_server.audit.store import HASH_INDEX, PREV_INDEX, Row

PROGRESS_EVERY: Final = 100_000
_RENUMBER_PROBE: Final = 16  # how far a renumbered entry's original seq is searched


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


@dataclass(frozen=True, slots=True)
class _Checkpoints:
    valid: dict[int, str]
    findings: list[Finding]
    count: int


def verify_chain(
    session: Session,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    *,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify the whole log in ``session`` against checkpoints signed by ``trusted_keys``."""
    checkpoints = _check_checkpoints(store.checkpoint_rows(session), trusted_keys)
    scan = _Scan()
    _run_scan(store.stream_all_entries(session), checkpoints.valid, scan, progress)
    if scan.finding is None and scan.bad_row is not None:
        scan.finding = _classify_link_break(session, scan)
    findings = [*checkpoints.findings]
    if scan.finding is not None:
        findings.append(scan.finding)
    else:
        findings.extend(_tail_findings(session, scan, checkpoints.valid))
    return _report(scan, checkpoints, findings)


def _check_checkpoints(
    rows: Iterable[Row], trusted_keys: Mapping[str, Ed25519PublicKey]
) -> _Checkpoints:
    valid: dict[int, str] = {}
    findings: list[Finding] = []
    count = 0
    for seq, entry_hash, signed_at, key, signature in rows:
        count += 1
        public_key = trusted_keys.get(key)
        if public_key is None:
            findings.append(Finding("unknown_checkpoint_key", seq, f"key {key} not trusted"))
        elif not canonical.checkpoint_signature_ok(
            public_key, seq, entry_hash, signed_at, signature
        ):
            findings.append(Finding("bad_checkpoint_signature", seq, "signature invalid"))
        else:
            valid[seq] = entry_hash
    return _Checkpoints(valid, findings, count)


def _run_scan(
    batches: Iterable[Sequence[Row]],
    signed: Mapping[int, str],
    scan: _Scan,
    progress: Callable[[int], None] | None,
) -> None:
    reported = 0
    for batch in batches:
        if not _scan_batch(batch, signed, scan):
            return
        if progress is not None and scan.next_seq - 1 - reported >= PROGRESS_EVERY:
            reported = scan.next_seq - 1
            progress(reported)


def _scan_batch(batch: Sequence[Row], signed: Mapping[int, str], scan: _Scan) -> bool:
    """The hot loop. Returns False at the first anomaly (recorded on ``scan``)."""
    sha256, encode, tag = hashlib.sha256, canonical.canonical_bytes, canonical.ENTRY_TAG
    expected, prev = scan.next_seq, scan.prev_hash
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
                scan.finding = Finding("edited", expected, f"entry {expected} was altered")
                return False
            prev = digest
            if expected in signed:
                if signed[expected] != digest:
                    scan.finding = _rewritten(scan.last_good_checkpoint, expected)
                    return False
                scan.last_good_checkpoint = expected
            expected += 1
    finally:
        scan.next_seq, scan.prev_hash = expected, prev
    return True


def _rewritten(last_good: int, checkpoint_seq: int) -> Finding:
    return Finding(
        "rewritten",
        last_good + 1,
        f"chain recomputed: the checkpoint at {checkpoint_seq} disagrees; "
        f"altered somewhere in {last_good + 1}..{checkpoint_seq}",
    )


def _classify_link_break(session: Session, scan: _Scan) -> Finding:
    """Entry ``scan.next_seq`` does not link to its predecessor: work out what happened."""
    row = scan.bad_row
    assert row is not None
    seq = scan.next_seq
    linked_to = store.seq_of_hash(session, row[PREV_INDEX])
    if linked_to is not None and linked_to < seq - 1:
        return Finding("inserted", linked_to + 1, f"entries {linked_to + 1}..{seq - 1} inserted")
    if linked_to is not None and linked_to > seq:
        return Finding("reordered", seq, f"entry {seq} belongs after entry {linked_to}")
    if not _self_consistent(row):
        return _altered_or_renumbered(row, seq)
    following = store.entry_at(session, seq + 1)
    if following is not None and following[PREV_INDEX] == scan.prev_hash:
        return Finding("inserted", seq, f"entry {seq} does not belong to the chain")
    return Finding("edited", seq - 1, f"entry {seq - 1} was altered and its hash recomputed")


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
    head_seq = _head_seq(session)
    if head_seq < last_seq:
        message = f"entries after {head_seq} were written around the chain head"
        findings.append(Finding("inserted", head_seq + 1, message))
    elif head_seq > last_seq and store.max_seq(session) < head_seq:
        message = f"the chain head is at {head_seq} but the log ends at {last_seq}"
        findings.append(Finding("truncated", last_seq + 1, message))
    return findings


def _head_seq(session: Session) -> int:
    statement = sa.select(head_table.c.seq).where(head_table.c.id == HEAD_ID)
    return int(session.execute(statement).scalar_one())


def _report(scan: _Scan, checkpoints: _Checkpoints, findings: list[Finding]) -> VerificationReport:
    report = VerificationReport(
        ok=not findings,
        entries_checked=scan.next_seq - 1,
        checkpoints_checked=checkpoints.count,
        last_seq=scan.next_seq - 1,
        last_entry_hash=scan.prev_hash,
        latest_checkpoint_seq=max(checkpoints.valid, default=None),
    )
    if not findings:
        return report
    first = min(findings, key=lambda finding: finding.seq)
    return replace(report, first_bad_seq=first.seq, kind=first.kind, message=first.message)
