"""Appending to the audit log: a gapless chain, in the caller's transaction, safe under load."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from locker_server.audit import Actor, AuditEvent, AuditLog, InvalidAuditEvent, canonical
from locker_server.audit.models import AuditCheckpoint, AuditEntry
from locker_server.db import is_sqlite, session_scope
from tests.audit.conftest import FakeClock, sample_event


def _entries(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def _checkpoint_seqs(engine: Engine) -> list[int]:
    with session_scope(engine) as session:
        rows = session.exec(select(AuditCheckpoint.seq).order_by(col(AuditCheckpoint.seq)))
        return [int(seq) for seq in rows]


def test_entries_form_a_gapless_chain_from_genesis_that_verifies(
    engine: Engine, audit_log: AuditLog, filled: Callable[[int], None]
) -> None:
    filled(25)

    entries = _entries(engine)
    assert [entry.seq for entry in entries] == list(range(1, 26))
    assert entries[0].prev_hash == canonical.GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    with session_scope(engine) as session:
        report = audit_log.verify(session)
    assert report.ok, report
    assert (report.entries_checked, report.last_seq) == (25, 25)
    assert report.last_entry_hash == entries[-1].entry_hash


def test_entry_keeps_who_what_where_and_device_time_in_utc(
    engine: Engine, audit_log: AuditLog
) -> None:
    cabinet_clock = datetime(2026, 11, 26, 17, 30, 0, 250000, tzinfo=timezone(timedelta(hours=8)))
    event = AuditEvent(
        action="door.forced_open",
        actor=Actor(type="cabinet", id="cab-7"),
        outcome="failure",
        channel="cabinet",
        site_id=3,
        cabinet_id=7,
        door_id=12,
        source="cab-7",
        reason="door opened without a command",
        device_time=cabinet_clock,
        details={"sensor": "reed", "duration_ms": 1200},
    )
    with session_scope(engine) as session:
        audit_log.record(session, event)

    (entry,) = _entries(engine)
    assert (entry.actor_type, entry.actor_id, entry.action) == (
        "cabinet",
        "cab-7",
        "door.forced_open",
    )
    assert (entry.site_id, entry.cabinet_id, entry.door_id, entry.channel) == (3, 7, 12, "cabinet")
    assert entry.device_time is not None
    assert entry.device_time.replace(tzinfo=UTC) == datetime(
        2026, 11, 26, 9, 30, 0, 250000, tzinfo=UTC
    )
    assert entry.details == '{"duration_ms":1200,"sensor":"reed"}'
    with session_scope(engine) as session:
        assert audit_log.verify(session).ok


def _deposit_that_fails(engine: Engine, audit_log: AuditLog) -> None:
    with session_scope(engine) as session:
        audit_log.record(session, sample_event(1, action="parcel.deposited"))
        raise RuntimeError("door did not close; deposit abandoned")


def test_rolled_back_business_change_takes_its_audit_entry_with_it(
    engine: Engine, audit_log: AuditLog
) -> None:
    with pytest.raises(RuntimeError, match="deposit abandoned"):
        _deposit_that_fails(engine, audit_log)
    with session_scope(engine) as session:
        audit_log.record(session, sample_event(2, action="parcel.cancelled"))

    entries = _entries(engine)
    assert [(entry.seq, entry.action) for entry in entries] == [(1, "parcel.cancelled")]
    with session_scope(engine) as session:
        assert audit_log.verify(session).ok


def test_concurrent_writers_never_share_or_skip_a_sequence_number(
    engine: Engine, audit_log: AuditLog
) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for number in range(15):
                with session_scope(engine) as session:
                    # Read first, as a service does: the append must still get its lock.
                    session.execute(text("SELECT count(*) FROM audit_entries")).scalar_one()
                    audit_log.record(session, sample_event(worker * 100 + number))
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [entry.seq for entry in _entries(engine)] == list(range(1, 61))
    with session_scope(engine) as session:
        assert audit_log.verify(session).ok


def test_checkpoint_is_signed_every_n_entries(
    engine: Engine, audit_log: AuditLog, filled: Callable[[int], None]
) -> None:
    filled(25)

    assert _checkpoint_seqs(engine) == [1, 11, 21]


def test_checkpoint_is_signed_when_the_interval_passed_even_before_n_entries(
    engine: Engine, audit_log: AuditLog, clock: FakeClock, filled: Callable[[int], None]
) -> None:
    filled(3)
    clock.advance(301)
    with session_scope(engine) as session:
        audit_log.record(session, sample_event(4))

    assert _checkpoint_seqs(engine) == [1, 4]


def test_checkpoint_now_signs_a_quiet_tail_once(
    engine: Engine, audit_log: AuditLog, filled: Callable[[int], None]
) -> None:
    filled(5)
    with session_scope(engine) as session:
        first = audit_log.checkpoint_now(session)
    with session_scope(engine) as session:
        second = audit_log.checkpoint_now(session)

    assert first is not None
    assert first.seq == 5
    assert first.key_id == canonical.key_id(audit_log.public_key)
    assert second is None
    assert _checkpoint_seqs(engine) == [1, 5]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"action": "Parcel Deposited"}, "action"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"outcome": "OK!"}, "outcome"),
        ({"site_id": "3"}, "site_id"),
        ({"details": {"photo": b"\x89PNG"}}, "details"),
        ({"reason": "x" * 501}, "reason"),
    ],
)
def test_malformed_event_is_refused_before_it_reaches_the_log(
    fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidAuditEvent, match=problem):
        sample_event(1, **fields)


def test_unknown_actor_type_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="actor type"):
        Actor(type="hacker", id="1")


def _refusal_statements(engine: Engine) -> list[str]:
    statements = [
        "UPDATE audit_entries SET outcome = 'granted' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 2",
        "UPDATE audit_checkpoints SET seq = 99",
        "DELETE FROM audit_checkpoints",
    ]
    if not is_sqlite(engine):
        statements += ["TRUNCATE audit_entries", "TRUNCATE audit_checkpoints"]
    return statements


def test_database_itself_refuses_to_change_or_remove_log_rows(
    engine: Engine, filled: Callable[[int], None]
) -> None:
    filled(3)

    for statement in _refusal_statements(engine):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))

    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_entries")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one() == 1
