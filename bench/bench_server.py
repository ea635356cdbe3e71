"""Benchmark of the domain services: parcel registrations per second and pickup-code checks
per second with p50/p99 latency. Not a test.

Everything goes through the service layer exactly as the API drives it, one committed
transaction per step, audit entries and outbox rows included:

* registration = announce + reserve (allocation) + deposit (credentials, notification,
  carrier webhook): three transactions. Baseline: a bare INSERT of a parcel-sized row
  plus commit, three times (the same number of round trips, none of the rules).
* pickup-code check = ``attempt_pickup`` with a wrong code (HMAC, constant-time compare
  against the cabinet's live codes, failure row, audit entry), the lockout threshold
  raised so the check itself is measured; and a granted pickup (also marks the parcel
  picked up, frees the door). Baseline: SELECT of one row by key plus commit.

Usage::

    .venv/bin/python bench/bench_server.py --backend sqlite
    .venv/bin/python bench/bench_server.py --backend postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from locker_server.audit import Actor, AuditLog
from locker_server.config import Settings
from locker_server.db import make_engine, migrate, session_scope
from locker_server.keys import load_keys
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    DoorCreate,
    RecipientCreate,
    SiteCreate,
)
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps, directory
from locker_server.services import layout as config
from locker_server.services.credentials import LockoutPolicy
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve
from locker_server.services.pickup import attempt_pickup

PG_ADMIN_URL = os.environ.get(
    "LOCKER_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
COURIER = Caller(actor=Actor(type="courier", id="1"), channel="api", source="bench")
KIOSK = Caller(actor=Actor(type="cabinet", id="bench"), channel="kiosk", source="bench")


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[sa.Engine]:
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{directory / 'bench.sqlite3'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    name = f"locker_bench_server_{os.getpid()}"
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


@dataclass
class Installation:
    carrier_id: int
    cabinet_ids: list[int]
    recipient_ids: list[int]


def build(engine: sa.Engine, deps: DomainDeps, *, parcels: int, doors: int) -> Installation:
    admin = Caller(actor=Actor(type="system", id="bench"), channel="cli")
    with session_scope(engine) as session:
        site = config.create_site(session, deps, SiteCreate(name="Bench"), caller=admin)
        cabinets = []
        for index in range(-(-parcels // doors)):
            body = CabinetCreate(site_id=site.id or 0, code=f"BENCH-{index}", name=f"C{index}")
            cabinet = config.create_cabinet(session, deps, body, caller=admin)
            bodies = [DoorCreate(number=n, size="M", board=1, lock=n) for n in range(1, doors + 1)]
            config.add_doors(session, deps, cabinet.id or 0, bodies, caller=admin)
            cabinets.append(cabinet.id or 0)
        carrier = directory.create_carrier(session, deps, CarrierCreate(name="B"), caller=admin)
        recipients = [
            directory.create_recipient(
                session,
                deps,
                RecipientCreate(
                    name=f"R{n}",
                    email=f"r{n}@example.org",
                    consent_locker_delivery=True,
                ),
                caller=admin,
            ).id
            or 0
            for n in range(parcels)
        ]
    return Installation(carrier.id or 0, cabinets, recipients)


class CodeBook:
    """Keeps the plaintext handed to the notifier (as the recipient would receive it)."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner
        self.codes: dict[int, str] = {}
        self.cabinet_of: dict[int, int] = {}

    def pickup_ready(self, session: object, **kw: object) -> object:
        self.codes[int(str(kw["parcel_id"]))] = str(kw["code"])
        return self.inner.pickup_ready(session, **kw)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def timed(work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def register_all(engine: sa.Engine, deps: DomainDeps, inst: Installation, book: CodeBook) -> float:
    def work() -> None:
        for n, recipient_id in enumerate(inst.recipient_ids):
            cabinet_id = inst.cabinet_ids[n % len(inst.cabinet_ids)]
            spec = Announcement(inst.carrier_id, f"B{n:07d}", recipient_id, size="M")
            with session_scope(engine) as session:
                parcel_id = announce(session, deps, spec, caller=COURIER).id or 0
            with session_scope(engine) as session:
                reserve(session, deps, parcel_id=parcel_id, cabinet_id=cabinet_id, caller=COURIER)
            with session_scope(engine) as session:
                record_deposit(
                    session,
                    deps,
                    cabinet_id=cabinet_id,
                    door_number=None,
                    parcel_id=parcel_id,
                    caller=COURIER,
                )
            book.cabinet_of[parcel_id] = cabinet_id

    return timed(work)


def latencies(engine: sa.Engine, deps: DomainDeps, attempts: list[tuple[int, str]]) -> list[float]:
    samples = []
    for cabinet_id, code in attempts:
        started = time.perf_counter()
        with session_scope(engine) as session:
            attempt_pickup(session, deps, cabinet_id=cabinet_id, code=code, caller=KIOSK)
        samples.append(time.perf_counter() - started)
    return samples


def baseline_insert(engine: sa.Engine, rows: int) -> float:
    metadata = sa.MetaData()
    table = sa.Table(
        "bench_raw_parcels",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tracking_number", sa.String(64)),
        sa.Column("state", sa.String(24)),
        sa.Column("recipient_id", sa.Integer),
    )
    metadata.create_all(engine)

    def work() -> None:
        for n in range(rows):
            with engine.begin() as conn:
                conn.execute(
                    table.insert().values(
                        tracking_number=f"R{n}", state="announced", recipient_id=n
                    )
                )

    return timed(work)


def baseline_select(engine: sa.Engine, rows: int) -> list[float]:
    samples = []
    for n in range(rows):
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT * FROM bench_raw_parcels WHERE id = :id"), {"id": n + 1})
        samples.append(time.perf_counter() - started)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(name: str, samples: list[float]) -> str:
    rate = len(samples) / sum(samples)
    return (
        f"{name}: {rate:,.0f}/s  p50 {pct(samples, 0.5):.2f} ms  "
        f"p99 {pct(samples, 0.99):.2f} ms  (mean {statistics.mean(samples) * 1000:.2f} ms)"
    )


def run(backend: str, parcels: int, checks: int, doors: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(backend, Path(tmp)) as engine:
        settings = Settings(data_dir=Path(tmp), database_url=str(engine.url))
        keys = load_keys(Path(tmp) / "secrets")
        book = CodeBook(Notifier(settings=settings, keys=keys))
        deps = DomainDeps(
            settings=settings,
            keys=keys,
            notifier=book,  # type: ignore[arg-type]
            audit=AuditLog(signing_key=keys.audit_signing_key),
            lockout_policy=LockoutPolicy(10**9, 10**9, timedelta(minutes=15)),
        )
        inst = build(engine, deps, parcels=parcels, doors=doors)
        elapsed = register_all(engine, deps, inst, book)
        raw = baseline_insert(engine, parcels * 3)
        print(
            f"backend {backend}: {parcels} parcels over {len(inst.cabinet_ids)} cabinets "
            f"of {doors} doors"
        )
        print(
            f"registrations (announce+reserve+deposit): {parcels / elapsed:,.1f}/s "
            f"({elapsed / parcels * 1000:.2f} ms each); baseline 3 bare INSERT+commit: "
            f"{parcels / raw:,.1f}/s; ratio {raw / elapsed:.3f}"
        )
        wrong = [
            (inst.cabinet_ids[n % len(inst.cabinet_ids)], f"{n:08d}"[::-1]) for n in range(checks)
        ]
        refused = latencies(engine, deps, wrong)
        granted = latencies(engine, deps, [(book.cabinet_of[p], c) for p, c in book.codes.items()])
        base = baseline_select(engine, checks)
        print(report("pickup-code checks, refused", refused))
        print(report("pickup-code checks, granted (pickup recorded)", granted))
        print(report("baseline SELECT by key + commit", base))
        ratio = statistics.mean(refused) / statistics.mean(base)
        print(f"ratio refused check / baseline: {ratio:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--parcels", type=int, default=300)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--doors-per-cabinet", type=int, default=50)
    args = parser.parse_args(argv)
    run(args.backend, args.parcels, args.checks, args.doors_per_cabinet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
