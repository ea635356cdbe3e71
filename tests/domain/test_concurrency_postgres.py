"""Concurrency on PostgreSQL: many couriers reserving at once never get the same door, and
a code presented at the same moment by several kiosks opens the door once.

Each thread has its own session (its own connection); a barrier releases them together
so their transactions overlap. This runs on PostgreSQL only, where row locks and
concurrent transactions are real; SQLite serialises every writer by design.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from locker_server.audit import AuditLog
from locker_server.config import Settings
from locker_server.db import make_engine, session_scope
from locker_server.errors import NoDoorAvailable
from locker_server.keys import ServerKeys
from locker_server.models import CabinetCreate, Door, DoorCreate, ParcelTransition
from locker_server.notifications import Notifier
from locker_server.services import DomainDeps, credentials
from locker_server.services import layout as config_service
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve
from locker_server.services.pickup import attempt_pickup
from tests.conftest import PG_ADMIN_URL, pg_url
from tests.domain.conftest import (
    COURIER,
    KIOSK,
    OPERATOR,
    CapturingNotifier,
    World,
    build_world,
    new_recipient,
)

pytestmark = pytest.mark.postgres

DOORS = 12
COURIERS = 30


def _admin(statement: str) -> None:
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.engine.dispose()


@pytest.fixture
def pg_engine(pg_template: str) -> Iterator[Engine]:
    name = f"locker_c_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    engine = make_engine(pg_url(name))
    yield engine
    engine.dispose()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_deps(tmp_path: Path, pg_engine: Engine, server_keys: ServerKeys) -> DomainDeps:
    settings = Settings(data_dir=tmp_path, database_url=str(pg_engine.url))
    return DomainDeps(
        settings=settings,
        keys=server_keys,
        audit=AuditLog(signing_key=server_keys.audit_signing_key),
        notifier=CapturingNotifier(Notifier(settings=settings, keys=server_keys)),
    )


def _second_cabinet(engine: Engine, deps: DomainDeps, world: World) -> int:
    with session_scope(engine) as session:
        body = CabinetCreate(site_id=world.site_id, code="CAB-2", name="Loading bay")
        cabinet = config_service.create_cabinet(session, deps, body, caller=OPERATOR)
        assert cabinet.id is not None
        doors = [DoorCreate(number=n, size="M", board=1, lock=n) for n in range(1, DOORS + 1)]
        config_service.add_doors(session, deps, cabinet.id, doors, caller=OPERATOR)
        return cabinet.id


def _announced_parcels(engine: Engine, deps: DomainDeps, world: World) -> list[int]:
    ids = []
    for index in range(COURIERS):
        recipient = new_recipient(engine, deps, f"R{index}")
        spec = Announcement(world.carrier_id, f"C{index:04d}", recipient, size="M")
        with session_scope(engine) as session:
            ids.append(announce(session, deps, spec, caller=COURIER).id or 0)
    return ids


def test_parallel_couriers_never_get_the_same_door_and_losers_get_a_clean_refusal(
    pg_engine: Engine, pg_deps: DomainDeps
) -> None:
    world = build_world(pg_engine, pg_deps)
    cabinet_id = _second_cabinet(pg_engine, pg_deps, world)
    parcel_ids = _announced_parcels(pg_engine, pg_deps, world)
    barrier = threading.Barrier(COURIERS)
    won: dict[int, int] = {}
    refused: list[int] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def courier(parcel_id: int) -> None:
        barrier.wait()
        try:
            with session_scope(pg_engine) as session:
                parcel = reserve(
                    session, pg_deps, parcel_id=parcel_id, cabinet_id=cabinet_id, caller=COURIER
                )
                door_id = parcel.door_id or 0
            with lock:
                won[parcel_id] = door_id
        except NoDoorAvailable:
            with lock:
                refused.append(parcel_id)
        except BaseException as exc:  # reported below: any other error fails the test
            with lock:
                unexpected.append(exc)

    threads = [threading.Thread(target=courier, args=(pid,)) for pid in parcel_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert unexpected == []
    assert len(won) == DOORS
    assert len(set(won.values())) == DOORS, "a door was handed out twice"
    assert len(refused) == COURIERS - DOORS
    with Session(pg_engine) as session:
        for door_id in won.values():
            door = session.get(Door, door_id)
            assert door is not None
            assert (door.cabinet_id, door.held_parcels, door.occupancy) == (
                cabinet_id,
                1,
                "reserved",
            )
        report = AuditLog(signing_key=pg_deps.keys.audit_signing_key).verify(session)
    assert report.ok


def _in_parallel(
    count: int, work: Callable[[], object]
) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(count)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result = work()
        except BaseException as exc:  # collected and reported by the caller
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_one_code_presented_at_once_by_several_kiosks_opens_the_door_only_once(
    pg_engine: Engine, pg_deps: DomainDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    kiosks = 8
    real_match = credentials.match_credential
    all_matched = threading.Barrier(kiosks, timeout=30)

    def matched_together(*args: Any, **kwargs: Any) -> Any:
        found = real_match(*args, **kwargs)
        all_matched.wait()  # every kiosk has matched the code before any of them goes on
        return found

    monkeypatch.setattr(credentials, "match_credential", matched_together)
    world = build_world(pg_engine, pg_deps)
    spec = Announcement(world.carrier_id, "SAME1", world.alice, size="S")
    with session_scope(pg_engine) as session:
        parcel_id = announce(session, pg_deps, spec, caller=COURIER).id or 0
    with session_scope(pg_engine) as session:
        reserve(session, pg_deps, parcel_id=parcel_id, cabinet_id=world.cabinet_id, caller=COURIER)
    with session_scope(pg_engine) as session:
        record_deposit(
            session,
            pg_deps,
            cabinet_id=world.cabinet_id,
            door_number=None,
            parcel_id=parcel_id,
            caller=COURIER,
        )
    assert isinstance(pg_deps.notifier, CapturingNotifier)
    code, _ = pg_deps.notifier.last_credentials(parcel_id)

    def present() -> str:
        with session_scope(pg_engine) as session:
            return attempt_pickup(
                session, pg_deps, cabinet_id=world.cabinet_id, code=code, caller=KIOSK
            ).outcome

    outcomes, errors = _in_parallel(kiosks, present)
    assert errors == []
    assert sorted(map(str, outcomes)) == ["granted"] + ["wrong_code"] * (kiosks - 1)
    with Session(pg_engine) as session:
        steps = session.exec(
            select(ParcelTransition).where(
                ParcelTransition.parcel_id == parcel_id, ParcelTransition.to_state == "picked_up"
            )
        ).all()
    assert len(steps) == 1
