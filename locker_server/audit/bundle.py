"""Offline verification of an export bundle: no database, no server, only the zip.

An auditor runs ``locker-server audit verify-bundle PATH [--key-id FINGERPRINT]``. The check:

1. every file's SHA-256 matches the manifest (a consistency check, not a proof);
2. the public key's fingerprint is the manifest's ``key_id``, and the one the auditor pins
   with ``--key-id`` (a bundle can carry any key; the pin is what makes it the server's);
3. the manifest's signature is valid under that key (so the run's bounds, the filter and
   the file digests are the server's), and so is every checkpoint's Ed25519 signature;
4. the entries run gapless from ``first_seq`` to ``last_seq``, the first links to
   ``start_prev_hash``, each links to the one before, and each hash recomputes from its
   content (format in :mod:`locker_server.audit.canonical`);
5. each checkpoint's hash equals the recomputed hash at its position, and a checkpoint
   signs the last entry (``end_entry_hash``): that signature authenticates the whole run;
6. each ``matched`` flag equals the manifest's filter applied to the entry;
7. every validly signed line of ``witness.jsonl`` (the server's witness file inside the
   run; bundles from before the witness have none) is in ``checkpoints.jsonl`` unchanged
   and its hash is the entry's at its position: a bundle exported from a database whose
   checkpoints were deleted and whose chain was recomputed fails here.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from locker_server.audit import canonical
from locker_server.audit.errors import BundleError
from locker_server.audit.export import (
    BUNDLE_FORMAT,
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    MANIFEST_FILE,
    PROGRESS_EVERY,
    PUBLIC_KEY_FILE,
    WITNESS_FILE,
    EntryFilter,
    entry_values,
)

_BUNDLE_FILES: Final = (ENTRIES_FILE, CHECKPOINTS_FILE, PUBLIC_KEY_FILE)


@dataclass(frozen=True, slots=True)
class BundleReport:
    ok: bool
    entries_checked: int
    matched: int
    checkpoints_checked: int
    first_seq: int | None
    last_seq: int | None
    key_id: str
    first_bad_seq: int | None = None
    kind: str | None = None
    message: str = "bundle intact: every entry is covered by a valid signed checkpoint"
    #: Witness lines held against the bundle's checkpoints and entries.
    witness_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Problem(Exception):
    """Internal: stops the walk at the first problem found."""

    def __init__(self, kind: str, seq: int | None, message: str) -> None:
        super().__init__(message)
        self.kind, self.seq, self.message = kind, seq, message


@dataclass
class _Walk:
    manifest: dict[str, Any]
    public_key: Ed25519PublicKey
    key_id: str
    signed: dict[int, str]
    entries: int = 0
    matched: int = 0
    #: Witnessed checkpoints (seq -> entry hash) and how many witness lines were read.
    witnessed: dict[int, str] = field(default_factory=dict)
    witness_lines: int = 0
    #: Seqs of the checkpoints the server's database gave the bundle.
    stored: dict[int, str] = field(default_factory=dict)


def verify_bundle(
    path: Path,
    *,
    expected_key_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BundleReport:
    """Verify the bundle at ``path`` (a zip file or an unpacked directory)."""
    with _open_bundle(path) as read:
        manifest = _manifest(read)
        public_key = _public_key(read)
        walk = _Walk(manifest, public_key, canonical.key_id(public_key), {})
        try:
            _check_key(walk, expected_key_id)
            _check_manifest_signature(walk)
            _check_files(read, manifest)
            _check_checkpoints(read, walk)
            _check_witness(read, walk)
            _check_entries(read, walk, progress)
            _check_witness_held(walk)
        except _Problem as problem:
            return _report(walk, problem)
    return _report(walk, None)


@contextmanager
def _open_bundle(path: Path) -> Iterator[Callable[[str], IO[bytes]]]:
    if path.is_dir():
        yield lambda name: (path / name).open("rb")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            yield lambda name: archive.open(name)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot read bundle {path}: {exc}") from exc


def _read(read: Callable[[str], IO[bytes]], name: str) -> bytes:
    try:
        with read(name) as handle:
            return handle.read()
    except (OSError, KeyError) as exc:
        raise BundleError(f"bundle has no readable {name}") from exc


def _manifest(read: Callable[[str], IO[bytes]]) -> dict[str, Any]:
    try:
        manifest = json.loads(_read(read, MANIFEST_FILE))
    except ValueError as exc:
        raise BundleError("manifest.json is not JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT} bundle")
    return manifest


def _public_key(read: Callable[[str], IO[bytes]]) -> Ed25519PublicKey:
    try:
        return canonical.load_public_key_pem(_read(read, PUBLIC_KEY_FILE))
    except ValueError as exc:
        raise BundleError("public_key.pem is not an Ed25519 public key") from exc


def _check_files(read: Callable[[str], IO[bytes]], manifest: dict[str, Any]) -> None:
    files = manifest.get("files", {})
    for name in _BUNDLE_FILES + ((WITNESS_FILE,) if WITNESS_FILE in files else ()):
        digest = hashlib.sha256()
        try:
            with read(name) as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except (OSError, KeyError) as exc:
            raise BundleError(f"bundle has no readable {name}") from exc
        if files.get(name) != digest.hexdigest():
            raise _Problem("file_altered", None, f"{name} does not match the manifest")


def _check_key(walk: _Walk, expected_key_id: str | None) -> None:
    if walk.manifest.get("key_id") != walk.key_id:
        raise _Problem("untrusted_key", None, "public key does not match the manifest key id")
    if expected_key_id is not None and expected_key_id.lower() != walk.key_id:
        raise _Problem("untrusted_key", None, f"bundle key {walk.key_id} is not the pinned key")


def _check_manifest_signature(walk: _Walk) -> None:
    manifest = walk.manifest
    signature = manifest.get("signature")
    message = canonical.manifest_message(manifest)
    if not isinstance(signature, str) or not canonical.signature_ok(
        walk.public_key, signature, message
    ):
        raise _Problem("bad_manifest_signature", None, "the manifest signature is invalid")


def _check_checkpoints(read: Callable[[str], IO[bytes]], walk: _Walk) -> None:
    for line in _read(read, CHECKPOINTS_FILE).splitlines():
        seq, checkpoint = _signed_checkpoint(line, walk, "checkpoint", "bad_checkpoint_signature")
        walk.signed[seq] = checkpoint["entry_hash"]
    walk.stored = dict(walk.signed)


def _signed_checkpoint(
    line: bytes, walk: _Walk, what: str, bad_signature: str
) -> tuple[int, dict[str, Any]]:
    """One signed checkpoint line (of the database's list or of the witness), checked."""
    checkpoint = _json_line(line)
    seq = checkpoint.get("seq")
    if not isinstance(seq, int):
        raise _Problem("malformed", None, f"a {what} without a sequence number")
    if checkpoint.get("key_id") != walk.key_id or not canonical.checkpoint_signature_ok(
        walk.public_key,
        seq,
        checkpoint.get("entry_hash", ""),
        checkpoint.get("signed_at", ""),
        checkpoint.get("signature", ""),
    ):
        raise _Problem(bad_signature, seq, f"{what} {seq} signature invalid")
    return seq, checkpoint


def _check_witness(read: Callable[[str], IO[bytes]], walk: _Walk) -> None:
    if WITNESS_FILE not in walk.manifest.get("files", {}):
        return  # a bundle from before the witness
    for line in _read(read, WITNESS_FILE).splitlines():
        seq, checkpoint = _signed_checkpoint(line, walk, "witness line", "bad_witness_signature")
        walk.witness_lines += 1
        walk.witnessed[seq] = checkpoint["entry_hash"]
    # Entries are held to the witnessed hashes first: a rewrite shows where it starts.
    walk.signed = {**walk.signed, **walk.witnessed}


def _check_witness_held(walk: _Walk) -> None:
    """Every witnessed checkpoint of the run is among the bundle's checkpoints, unchanged."""
    for seq in sorted(walk.witnessed):
        if walk.stored.get(seq) != walk.witnessed[seq]:
            state = "changed in" if seq in walk.stored else "missing from"
            message = f"witnessed checkpoint {seq} is {state} the server's checkpoints"
            raise _Problem("checkpoint_removed", seq, message)


def _json_line(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise _Problem("malformed", None, "a line is not JSON") from exc
    if not isinstance(value, dict):
        raise _Problem("malformed", None, "a line is not a JSON object")
    return value


def _check_entries(
    read: Callable[[str], IO[bytes]], walk: _Walk, progress: Callable[[int], None] | None
) -> None:
    manifest = walk.manifest
    entry_filter = EntryFilter.from_dict(manifest.get("filter") or {})
    expected: int | None = manifest.get("first_seq")
    prev: str | None = manifest.get("start_prev_hash")
    with read(ENTRIES_FILE) as handle:
        for line in handle:
            entry = _json_line(line)
            seq = _check_entry(entry, expected, prev, walk.signed)
            if entry.get("matched") != entry_filter.matches(entry):
                raise _Problem("filter_mismatch", seq, f"entry {seq} mis-marked")
            prev, expected = entry["entry_hash"], seq + 1
            walk.entries += 1
            walk.matched += bool(entry["matched"])
            if progress is not None and walk.entries % PROGRESS_EVERY == 0:
                progress(walk.entries)
    _check_end(walk, expected, prev)


def _check_entry(
    entry: dict[str, Any], expected: int | None, prev: str | None, signed: dict[int, str]
) -> int:
    """Check one entry in place ``expected``; returns its seq."""
    seq = entry.get("seq")
    if not isinstance(expected, int):
        raise _Problem("malformed", None, "entries in a bundle whose manifest names none")
    if seq != expected:
        kind = "deleted" if isinstance(seq, int) and seq > expected else "reordered"
        raise _Problem(kind, expected, f"expected entry {expected}, found {seq}")
    if entry.get("prev_hash") != prev:
        raise _Problem("edited", seq, f"entry {seq} does not link to its predecessor")
    try:
        recomputed = canonical.entry_hash(entry["prev_hash"], entry_values(entry))
    except (KeyError, TypeError, ValueError) as exc:
        raise _Problem("malformed", seq, f"entry {seq} is incomplete") from exc
    if recomputed != entry.get("entry_hash"):
        raise _Problem("edited", seq, f"entry {seq} was altered")
    if seq in signed and signed[seq] != recomputed:
        raise _Problem("rewritten", seq, f"entry {seq} disagrees with its signed checkpoint")
    return expected


def _check_end(walk: _Walk, next_seq: int | None, last_hash: str | None) -> None:
    manifest = walk.manifest
    last_seq = manifest.get("last_seq")
    if walk.entries == 0:
        if last_seq is not None:
            raise _Problem("truncated", manifest.get("first_seq"), "the bundle has no entries")
        return
    assert next_seq is not None
    if next_seq - 1 != last_seq or last_hash != manifest.get("end_entry_hash"):
        raise _Problem("truncated", next_seq, f"entries end at {next_seq - 1}, not {last_seq}")
    if walk.signed.get(next_seq - 1) != last_hash:
        raise _Problem("unanchored", next_seq - 1, "no signed checkpoint covers the last entry")


def _report(walk: _Walk, problem: _Problem | None) -> BundleReport:
    manifest = walk.manifest
    report = BundleReport(
        ok=problem is None,
        entries_checked=walk.entries,
        matched=walk.matched,
        checkpoints_checked=len(walk.stored),
        first_seq=manifest.get("first_seq"),
        last_seq=manifest.get("last_seq"),
        key_id=walk.key_id,
        witness_checked=walk.witness_lines,
    )
    if problem is None:
        return report
    return replace(report, first_bad_seq=problem.seq, kind=problem.kind, message=problem.message)
