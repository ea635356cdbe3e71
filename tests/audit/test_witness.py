"""The witness: signed checkpoints kept outside the database hold the database to its history.

An intruder who holds the database can delete checkpoints and recompute the chain; the
witness file still names every checkpoint the server signed, so verification finds both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from locker_server.audit import AuditLog, VerificationReport
from locker_server.audit.store import checkpoint_rows
from locker_server.audit.witness import FileWitness, read_witness
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from tests.audit.conftest import FakeClock, entry_hash_at, forged_entry, insert_entry, sample_event

Tamper = Callable[..., None]
FORGED_TIME = datetime(2026, 11, 26, 9, 0, 0, 500000, tzinfo=UTC)


@pytest.fixture
def witness_path(tmp_path: Path) -> Path:
    return tmp_path / "elsewhere" / "audit-witness.jsonl"


@pytest.fixture
def witnessed_log(server_keys: ServerKeys, clock: FakeClock, witness_path: Path) -> AuditLog:
    """Checkpoints every 10 entries, each also appended to ``witness_path`` after commit."""
    return AuditLog(
        signing_key=server_keys.audit_signing_key,
        checkpoint_entries=10,
        clock=clock,
        witness=FileWitness(witness_path),
    )


def _fill(engine: Engine, log: AuditLog, count: int) -> None:
    for number in range(1, count + 1):
        with session_scope(engine) as session:
            log.record(session, sample_event(number))


def _verify(engine: Engine, log: AuditLog, witness_path: Path) -> VerificationReport:
    with session_scope(engine) as session:
        return log.verify(session, witness=read_witness(witness_path))


def _rewrite_from(engine: Engine, seq: int, tamper: Tamper) -> None:
    """What an intruder with the database does: drop every checkpoint after the first,
    then edit entry ``seq`` and recompute every hash after it, and the head."""
    statements: list[object] = [
        "DELETE FROM audit_checkpoints WHERE seq > 1",
        f"DELETE FROM audit_entries WHERE seq >= {seq}",
    ]
    prev = entry_hash_at(engine, seq - 1)
    with engine.connect() as conn:
        last = int(conn.execute(text("SELECT max(seq) FROM audit_entries")).scalar_one())
    for number in range(seq, last + 1):
        forged = forged_entry(number, prev, FORGED_TIME)
        statements.append(insert_entry(forged))
        prev = forged["entry_hash"]
    tamper(
        *statements, "UPDATE audit_head SET entry_hash = :tip, last_checkpoint_seq = 1", tip=prev
    )


def test_every_signed_checkpoint_is_also_written_to_the_witness_file(
    engine: Engine, witnessed_log: AuditLog, witness_path: Path
) -> None:
    _fill(engine, witnessed_log, 25)

    with Session(engine) as session:
        stored = checkpoint_rows(session)
    assert [row[0] for row in stored] == [1, 11, 21]
    assert read_witness(witness_path) == stored
    assert _verify(engine, witnessed_log, witness_path).witness_checked == 3


def test_a_checkpoint_rolled_back_with_its_transaction_is_never_witnessed(
    engine: Engine, witnessed_log: AuditLog, witness_path: Path, clock: FakeClock
) -> None:
    with session_scope(engine) as session:
        witnessed_log.record(session, sample_event(1))
        session.rollback()
    # A savepoint rolled back inside a committed transaction (a refused cabinet event).
    with session_scope(engine) as session, session.begin_nested() as savepoint:
        witnessed_log.record(session, sample_event(2))
        savepoint.rollback()
    # A savepoint that committed inside a transaction that then rolled back.
    with Session(engine) as session:
        witnessed_log.record(session, sample_event(3))  # signs entry 1
        with session.begin_nested():
            clock.advance(301)
            witnessed_log.record(session, sample_event(4))  # signs entry 2
        session.rollback()

    assert not witness_path.exists() or read_witness(witness_path) == []
    _fill(engine, witnessed_log, 1)
    assert [row[0] for row in read_witness(witness_path)] == [1]
    assert _verify(engine, witnessed_log, witness_path).ok


def test_history_rewritten_after_deleting_checkpoints_is_caught_by_the_witness(
    engine: Engine, witnessed_log: AuditLog, witness_path: Path, tamper: Tamper
) -> None:
    _fill(engine, witnessed_log, 25)
    _rewrite_from(engine, 5, tamper)

    report = _verify(engine, witnessed_log, witness_path)

    assert (report.kind, report.first_bad_seq) == ("rewritten", 2), report
    removed = [(f.kind, f.seq) for f in report.findings if f.kind == "checkpoint_removed"]
    assert removed == [("checkpoint_removed", 11), ("checkpoint_removed", 21)]


def test_rewrite_that_keeps_the_cadence_is_still_caught_by_the_witness(
    engine: Engine,
    server_keys: ServerKeys,
    witnessed_log: AuditLog,
    witness_path: Path,
    tamper: Tamper,
) -> None:
    """A verifier that only knows the loosest cadence (1,000 entries / 300 s) cannot see
    that checkpoints 11 and 21 are gone; the witness can."""
    _fill(engine, witnessed_log, 25)
    _rewrite_from(engine, 5, tamper)
    loose = AuditLog(signing_key=server_keys.audit_signing_key)
    with session_scope(engine) as session:
        assert loose.verify(session).ok  # the database alone looks fine

    report = _verify(engine, loose, witness_path)

    assert (report.kind, report.first_bad_seq) == ("rewritten", 2), report


def test_a_forged_witness_line_is_reported(
    engine: Engine, witnessed_log: AuditLog, witness_path: Path
) -> None:
    _fill(engine, witnessed_log, 12)
    line = json.loads(witness_path.read_text().splitlines()[-1])
    line["entry_hash"] = entry_hash_at(engine, 12)
    line["seq"] = 12
    with witness_path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")

    report = _verify(engine, witnessed_log, witness_path)

    assert (report.kind, report.first_bad_seq) == ("bad_witness_signature", 12), report


def test_a_witness_cut_off_mid_line_keeps_its_complete_lines(
    engine: Engine, witnessed_log: AuditLog, witness_path: Path
) -> None:
    _fill(engine, witnessed_log, 12)
    with witness_path.open("a") as handle:
        handle.write('{"seq": 21, "entry_ha')  # the server died while writing

    assert [row[0] for row in read_witness(witness_path)] == [1, 11]
    assert _verify(engine, witnessed_log, witness_path).ok
