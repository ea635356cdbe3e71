"""The witness: every signed checkpoint, also kept outside the database.

An intruder who holds the database can drop the append-only triggers, delete checkpoints
and recompute the chain; the signatures they cannot forge, but a checkpoint they delete
no longer speaks. The witness keeps speaking: each checkpoint the log signs is appended,
*after its transaction commits*, as one JSON line to a file outside the database
(``LOCKER_AUDIT_WITNESS_PATH``, default ``<data_dir>/audit-witness.jsonl``)::

    {"seq": 11, "entry_hash": "…", "signed_at": "2026-11-26T09:00:00.123456Z",
     "key_id": "…", "signature": "…"}

Verification (``audit verify --witness PATH``) holds the database to every line: a
witnessed checkpoint that is gone from the database, or whose entry no longer has the
witnessed hash, is reported. Lines are only ever appended (``O_APPEND``, one ``write``
per line, so several server processes can share the file).

Checkpoints are collected per session and confirmed just before the outermost commit
(a savepoint that rolled back took its checkpoint with it), then written after the
commit: the witness never names a checkpoint the database never held.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session

from locker_server.audit.errors import WitnessError
from locker_server.audit.models import checkpoints_table
from locker_server.audit.store import Row

logger = logging.getLogger(__name__)

FIELDS: Final = ("seq", "entry_hash", "signed_at", "key_id", "signature")
_PENDING: Final = "audit_witness_pending"
_CONFIRMED: Final = "audit_witness_confirmed"


class Witness(Protocol):
    """Where committed checkpoints go (a file here; a remote service could be another)."""

    def append(self, checkpoints: Sequence[Row], /) -> None: ...


class FileWitness:
    """An append-only JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoints: Sequence[Row]) -> None:
        data = "".join(_line(checkpoint) for checkpoint in checkpoints).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            while data:  # a regular file takes it in one write; a full disk may not
                data = data[os.write(descriptor, data) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _line(checkpoint: Row) -> str:
    return json.dumps(dict(zip(FIELDS, checkpoint, strict=True)), separators=(",", ":")) + "\n"


def read_witness(path: Path) -> list[Row]:
    """The witnessed checkpoints as ``(seq, entry_hash, signed_at, key_id, signature)``.

    A file that ends in half a line (a crash while writing) keeps its complete lines.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WitnessError(f"cannot read the audit witness {path}: {exc}") from exc
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]
    if tail.strip():
        logger.warning("audit witness %s ends in an incomplete line; ignored", path)
    return [_row(path, number, line) for number, line in enumerate(complete, 1) if line.strip()]


def _row(path: Path, number: int, line: str) -> Row:
    try:
        value: Any = json.loads(line)
        row = tuple(value[name] for name in FIELDS)
    except (ValueError, TypeError, KeyError) as exc:
        raise WitnessError(f"{path} line {number} is not a witnessed checkpoint") from exc
    if not isinstance(row[0], int) or not all(isinstance(item, str) for item in row[1:]):
        raise WitnessError(f"{path} line {number} is not a witnessed checkpoint")
    return row


def witness_after_commit(session: Session, witness: Witness, checkpoint: Row) -> None:
    """Hand ``checkpoint`` to ``witness`` once the session's outermost commit succeeds."""
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        event.listen(session, "before_commit", _confirm)
        event.listen(session, "after_commit", lambda s: _hand_over(s, witness))
        event.listen(session, "after_rollback", _forget)
    session.info[_PENDING].append(checkpoint)


def _outermost(session: Session) -> bool:
    return not session.in_nested_transaction()


def _confirm(session: Session) -> None:
    """Keep the checkpoints this transaction still holds (savepoints may have dropped some)."""
    pending: list[Row] = session.info.get(_PENDING, [])
    if not pending or not _outermost(session):
        return
    table = checkpoints_table.c
    statement = sa.select(table.seq, table.entry_hash).where(
        table.seq.in_([checkpoint[0] for checkpoint in pending])
    )
    held = {(int(seq), entry_hash) for seq, entry_hash in session.execute(statement)}
    session.info[_CONFIRMED] = [row for row in pending if (row[0], row[1]) in held]
    pending.clear()


def _hand_over(session: Session, witness: Witness) -> None:
    if not _outermost(session):
        return
    confirmed: list[Row] = session.info.pop(_CONFIRMED, [])
    if not confirmed:
        return
    try:
        witness.append(confirmed)
    except OSError:
        # The commit stands; a checkpoint missing from the witness only weakens it.
        logger.exception("could not append %d checkpoint(s) to the audit witness", len(confirmed))


def _forget(session: Session) -> None:
    if _outermost(session):
        session.info.get(_PENDING, []).clear()
        session.info.pop(_CONFIRMED, None)
