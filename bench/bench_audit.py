"""Benchmark of the audit log: appends per second and verification rate.

Not a test. Each figure comes with a baseline measured in the same run on the same database:

* appends: ``AuditLog.record`` with one commit per entry (how the server writes them),
  against a plain INSERT of a row of the same size into a scratch table with the same
  indexes, also one commit per row (no hashing, no chain head, no checkpoints);
* concurrent appends (PostgreSQL): the same with 4 writer threads;
* verification: ``AuditLog.verify`` over ``--entries`` entries (bulk-loaded as a valid
  chain with a signed checkpoint every 1,000), against merely streaming the same rows.

Usage::

    .venv/bin/python bench/bench_audit.py --backend sqlite --entries 1000000
    .venv/bin/python bench/bench_audit.py --backend postgres --entries 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from locker_server.audit import Actor, AuditEvent, AuditLog, canonical, store
from locker_server.audit.models import HEAD_ID, checkpoints_table, entries_table, head_table
from locker_server.db import make_engine, migrate, session_scope

PG_ADMIN_URL = os.environ.get(
    "LOCKER_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LOAD_BATCH = 5_000
ROUNDS = 3


def sample_event(number: int) -> AuditEvent:
    return AuditEvent(
        action="pickup.attempt",
        actor=Actor(type="recipient", id=str(10_000 + number)),
        outcome="granted" if number % 7 else "wrong_code",
        channel="kiosk",
        site_id=1 + number % 5,
        cabinet_id=100 + number % 40,
        door_id=number % 48,
        parcel_id=1_000_000 + number,
        source="cabinet-0042",
        details={"attempt": number % 5 + 1, "method": "code"},
    )


@contextmanager
def fresh_database(backend: str) -> Iterator[sa.Engine]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            engine = make_engine(f"sqlite:///{Path(directory) / 'bench.sqlite3'}")
            migrate(engine)
            yield engine
            engine.dispose()
        return
    name = f"locker_bench_audit_{os.getpid()}"
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.engine.dispose()


def scratch_table(engine: sa.Engine) -> sa.Table:
    """A table shaped and indexed like audit_entries, without triggers, chain or hashing."""
    metadata = sa.MetaData()
    columns = [
        sa.Column(column.name, column.type, primary_key=column.primary_key)
        for column in entries_table.columns
    ]
    table = sa.Table("bench_raw_entries", metadata, *columns)
    for index in entries_table.indexes:
        names = [column.name for column in index.columns]
        sa.Index(f"bench_{index.name}", *(table.c[name] for name in names), unique=index.unique)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return table


def raw_row(number: int, seq: int) -> dict[str, Any]:
    event = sample_event(number)
    return {
        "seq": seq,
        "recorded_at": datetime.now(UTC),
        "actor_type": event.actor.type,
        "actor_id": event.actor.id,
        "action": event.action,
        "outcome": event.outcome,
        "site_id": event.site_id,
        "cabinet_id": event.cabinet_id,
        "door_id": event.door_id,
        "parcel_id": event.parcel_id,
        "channel": event.channel,
        "source": event.source,
        "details": canonical.canonical_details(event.details),
        "prev_hash": "0" * 64,
        "entry_hash": f"{seq:064x}",
    }


def timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run_threads(writers: int, work: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=work, args=(index,)) for index in range(writers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def bench_appends(engine: sa.Engine, log: AuditLog, count: int, writers: int) -> dict[str, float]:
    table = scratch_table(engine)
    per_writer = count // writers
    seqs = iter(range(1, count * 2))
    lock = threading.Lock()

    def audited(index: int) -> None:
        for number in range(per_writer):
            with session_scope(engine) as session:
                log.record(session, sample_event(index * per_writer + number))

    def raw(index: int) -> None:
        for number in range(per_writer):
            with lock:
                seq = next(seqs)
            with engine.begin() as conn:
                conn.execute(sa.insert(table), raw_row(number, seq))

    raw_seconds = run_threads(writers, raw)
    audited_seconds = run_threads(writers, audited)
    total = per_writer * writers
    with engine.begin() as conn:
        table.drop(conn)
    return {"audited": total / audited_seconds, "raw": total / raw_seconds}


def bulk_load(engine: sa.Engine, signing_key: Ed25519PrivateKey, count: int) -> None:
    """Write ``count`` entries as a valid chain without ``record``: checkpoints where the
    writer puts them (entry 1, then every 1,000 entries) and at the tip."""
    prev = canonical.GENESIS_HASH
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for first in range(1, count + 1, LOAD_BATCH):
            rows, checkpoints = [], []
            for seq in range(first, min(first + LOAD_BATCH, count + 1)):
                row = raw_row(seq, seq)
                row["recorded_at"] = start + timedelta(milliseconds=seq)
                row["device_time"] = row["recipient_id"] = row["reason"] = None
                values = canonical.values_from_mapping(row)
                row["prev_hash"], row["entry_hash"] = prev, canonical.entry_hash(prev, values)
                prev = row["entry_hash"]
                rows.append(row)
                if seq % 1000 == 1 or seq == count:
                    # signed when its entry was written, as the log's own cadence expects
                    signed_at = row["recorded_at"]
                    checkpoints.append(signed_checkpoint(signing_key, seq, prev, signed_at))
            conn.execute(sa.insert(entries_table), rows)
            if checkpoints:
                conn.execute(sa.insert(checkpoints_table), checkpoints)
        conn.execute(
            sa.update(head_table)
            .where(head_table.c.id == HEAD_ID)
            .values(
                seq=count,
                entry_hash=prev,
                last_checkpoint_seq=count,
                last_checkpoint_at=start + timedelta(milliseconds=count),
            )
        )


def signed_checkpoint(
    key: Ed25519PrivateKey, seq: int, entry_hash: str, at: datetime
) -> dict[str, Any]:
    key_id, signature = canonical.sign_checkpoint(key, seq, entry_hash, canonical.format_time(at))
    return {
        "seq": seq,
        "entry_hash": entry_hash,
        "signed_at": at,
        "key_id": key_id,
        "signature": signature,
    }


def bench_verify(engine: sa.Engine, log: AuditLog, count: int) -> dict[str, float]:
    def stream_only() -> None:
        with Session(engine) as session:
            rows = sum(len(batch) for batch in store.stream_all_entries(session))
        assert rows == count

    def verify() -> None:
        with Session(engine) as session:
            report = log.verify(session)
        assert report.ok, report
        assert report.entries_checked == count, report

    stream_only()  # warm-up: every timed pass reads from the same (warm) cache
    # Interleaved, best of ROUNDS: the machine is shared, so take each one's least-disturbed run.
    stream_seconds, verify_seconds = [], []
    for _ in range(ROUNDS):
        stream_seconds.append(timed(stream_only))
        verify_seconds.append(timed(verify))
    return {"verify": count / min(verify_seconds), "stream": count / min(stream_seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--entries", type=int, default=200_000, help="entries to verify")
    parser.add_argument("--appends", type=int, default=4_000, help="entries to append")
    args = parser.parse_args(argv)
    key = Ed25519PrivateKey.generate()
    log = AuditLog(signing_key=key)
    with fresh_database(args.backend) as engine:
        single = bench_appends(engine, log, args.appends, writers=1)
        report(
            f"appends, 1 writer ({args.appends})", single["audited"], single["raw"], "raw INSERT"
        )
        if args.backend == "postgres":
            many = bench_appends(engine, log, args.appends, writers=4)
            report("appends, 4 writers", many["audited"], many["raw"], "raw INSERT, 4 writers")
    with fresh_database(args.backend) as engine:
        load_seconds = timed(lambda: bulk_load(engine, key, args.entries))
        print(f"bulk-loaded {args.entries} entries in {load_seconds:.1f} s", file=sys.stderr)
        rates = bench_verify(engine, log, args.entries)
        report(f"verification ({args.entries})", rates["verify"], rates["stream"], "raw stream")
    return 0


def report(label: str, rate: float, baseline: float, baseline_label: str) -> None:
    print(
        f"{label}: {rate:,.0f}/s; {baseline_label}: {baseline:,.0f}/s; ratio {rate / baseline:.2f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
