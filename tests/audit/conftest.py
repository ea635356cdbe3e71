"""Fixtures for the audit log: a log with small checkpoint intervals, and a way to tamper.

Tampering goes around the application on purpose: on PostgreSQL as the superuser with
``session_replication_role = replica`` (which silences the append-only triggers), on SQLite
by dropping the triggers, exactly what an intruder with database access would do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Executable, insert, text

from locker_server.audit import Actor, AuditEvent, AuditLog, canonical
from locker_server.audit.models import entries_table
from locker_server.db import is_sqlite, session_scope
from locker_server.keys import ServerKeys

SQLITE_TRIGGERS = (
    "audit_entries_no_update",
    "audit_entries_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
)


class FakeClock:
    """A clock the test moves by hand (checkpoint timing without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit_log(server_keys: ServerKeys, clock: FakeClock) -> AuditLog:
    """Checkpoints every 10 entries or 300 s: seqs 1, 11, 21, ... are signed."""
    return AuditLog(
        signing_key=server_keys.audit_signing_key,
        checkpoint_entries=10,
        checkpoint_seconds=300,
        clock=clock,
    )


def sample_event(number: int, **overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "action": "pickup.attempt",
        "actor": Actor(type="recipient", id=str(1000 + number)),
        "outcome": "granted" if number % 3 else "wrong_code",
        "channel": "kiosk",
        "site_id": 1 + number % 2,
        "cabinet_id": 10 + number % 4,
        "door_id": number,
        "parcel_id": 500 + number,
        "source": "cabinet-7",
        "details": {"attempt": number, "note": "ünïcode ok"},
    }
    fields.update(overrides)
    return AuditEvent(**fields)


@pytest.fixture
def filled(engine: Engine, audit_log: AuditLog) -> Callable[[int], None]:
    """Append ``n`` sample entries, each in its own committed transaction."""

    def fill(n: int) -> None:
        for number in range(1, n + 1):
            with session_scope(engine) as session:
                audit_log.record(session, sample_event(number))

    return fill


@pytest.fixture
def tamper(engine: Engine) -> Callable[..., None]:
    """Run raw SQL statements past the log's protections, in one transaction."""

    def run(*statements: str | Executable, **params: Any) -> None:
        with engine.begin() as conn:
            if is_sqlite(engine):
                for trigger in SQLITE_TRIGGERS:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
            else:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                if isinstance(statement, str):
                    conn.execute(text(statement), params)
                else:
                    conn.execute(statement)

    return run


def entry_hash_at(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT entry_hash FROM audit_entries WHERE seq = :seq"), {"seq": seq}
        ).scalar_one()
    return str(value)


def forged_entry(seq: int, prev_hash: str, recorded_at: datetime) -> dict[str, Any]:
    """A self-consistent entry an intruder computes (the chain needs no key)."""
    values: list[Any] = [
        seq,
        canonical.format_time(recorded_at),
        None,
        "user",
        "666",
        "door.remote_open",
        "success",
        1,
        10,
        3,
        None,
        None,
        "api",
        "10.6.6.6",
        "maintenance",
        canonical.canonical_details({}),
    ]
    row = dict(zip(canonical.CANONICAL_FIELDS, values, strict=True))
    row.update(
        recorded_at=recorded_at,
        prev_hash=prev_hash,
        entry_hash=canonical.entry_hash(prev_hash, values),
    )
    return row


def insert_entry(row: dict[str, Any]) -> Executable:
    return insert(entries_table).values(**row)
