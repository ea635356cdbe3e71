"""Door reports from cabinets, operators' remote opens, configuration changes and couriers."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.db import session_scope
from locker_server.errors import Conflict, NotFound, ValidationFailed
from locker_server.models import (
    CourierCreate,
    DoorCommand,
    DoorCreate,
    DoorEvent,
    DoorState,
    DoorUpdate,
    ServiceState,
    SiteCreate,
)
from locker_server.services import DomainDeps, directory
from locker_server.services import layout as config_service
from locker_server.services.doors import record_door_event, request_remote_open
from tests.domain.conftest import KIOSK, OPERATOR, FakeClock, World, audit_rows


def _report(engine: Engine, deps: DomainDeps, world: World, event: DoorEvent, **kw: object) -> str:
    with session_scope(engine) as session:
        door = record_door_event(
            session,
            deps,
            cabinet_id=world.cabinet_id,
            door_number=3,
            event=event,
            caller=KIOSK,
            **kw,
        )  # type: ignore[arg-type]
        return door.door_state


def test_door_state_is_only_what_the_cabinet_reported_and_each_report_is_audited(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    t1 = clock.advance(minutes=1)
    assert _report(engine, deps, world, DoorEvent.opened, device_time=t1) == DoorState.open
    assert (
        _report(engine, deps, world, DoorEvent.closed, device_time=t1 + timedelta(seconds=5))
        == DoorState.closed
    )
    # A late "opened" from before the close must not reopen the door in our records.
    assert _report(engine, deps, world, DoorEvent.opened, device_time=t1) == DoorState.closed
    # "Jammed": the lock was driven but nobody saw the door move; keep the last observed state.
    assert _report(engine, deps, world, DoorEvent.jammed) == DoorState.closed
    clock.advance(minutes=1)
    assert _report(engine, deps, world, DoorEvent.forced_open) == DoorState.open
    rows = [(r.action, r.outcome) for r in audit_rows(engine, "door.forced_open")]
    assert rows == [("door.forced_open", "alarm")]
    jammed = audit_rows(engine, "door.jammed")
    assert [(r.outcome, r.door_id) for r in jammed] == [("failure", world.door_ids[3])]
    recorded = audit_rows(engine, "door.opened")[0].device_time
    assert recorded is not None
    assert recorded.replace(tzinfo=UTC) == t1  # SQLite hands back naive UTC


def test_operator_remote_open_is_queued_for_the_cabinet_and_audited_with_the_reason(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with session_scope(engine) as session:
        command = request_remote_open(
            session,
            deps,
            cabinet_id=world.cabinet_id,
            door_id=world.door_ids[4],
            reason="recipient's key inside",
            caller=OPERATOR,
        )
    with Session(engine) as session:
        stored = session.exec(select(DoorCommand)).one()
    assert (stored.id, stored.status, stored.kind) == (command.id, "pending", "open")
    [row] = audit_rows(engine, "door.remote_open")
    assert (row.actor_type, row.actor_id, row.reason) == ("user", "7", "recipient's key inside")


def test_out_of_service_needs_a_reason_and_every_config_change_is_audited(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with pytest.raises(ValidationFailed, match="service_reason"), session_scope(engine) as session:
        config_service.update_door(
            session,
            deps,
            world.cabinet_id,
            world.door_ids[1],
            DoorUpdate(service_state=ServiceState.out_of_service),
            caller=OPERATOR,
        )
    with session_scope(engine) as session:
        config_service.update_door(
            session,
            deps,
            world.cabinet_id,
            world.door_ids[1],
            DoorUpdate(service_state=ServiceState.out_of_service, service_reason="lock coil burnt"),
            caller=OPERATOR,
        )
    [row] = audit_rows(engine, "config.door_updated")
    assert (row.door_id, row.reason) == (world.door_ids[1], "lock coil burnt")
    assert len(audit_rows(engine, "config.door_created")) == 6
    assert len(audit_rows(engine, "config.site_created")) == 1
    assert len(audit_rows(engine, "config.cabinet_created")) == 1


def test_duplicate_door_numbers_and_cabinet_codes_are_conflicts(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with pytest.raises(Conflict), session_scope(engine) as session:
        config_service.add_doors(
            session,
            deps,
            world.cabinet_id,
            [DoorCreate(number=3, size="S", board=1, lock=30)],
            caller=OPERATOR,
        )
    from locker_server.models import CabinetCreate

    with pytest.raises(Conflict, match="CAB-1"), session_scope(engine) as session:
        config_service.create_cabinet(
            session,
            deps,
            CabinetCreate(site_id=world.site_id, code="CAB-1", name="x"),
            caller=OPERATOR,
        )


def test_site_limited_staff_find_nothing_outside_their_sites(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with session_scope(engine) as session:
        other = config_service.create_site(session, deps, SiteCreate(name="Annex"), caller=OPERATOR)
        assert other.id is not None
        scope = frozenset({other.id})
        assert [s.id for s in config_service.list_sites(session, site_ids=scope)] == [other.id]
        assert config_service.list_cabinets(session, site_ids=scope) == []
        with pytest.raises(NotFound):
            config_service.get_cabinet(session, world.cabinet_id, site_ids=scope)
        with pytest.raises(NotFound):
            config_service.list_doors(session, world.cabinet_id, site_ids=scope)


def test_a_courier_code_is_stored_only_as_a_keyed_hash_and_authenticates_its_courier(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    body = CourierCreate(carrier_id=world.carrier_id, name="Li Wei", code="73915546")
    with session_scope(engine) as session:
        courier = directory.create_courier(session, deps, body, caller=OPERATOR)
    assert "73915546" not in courier.code_hash
    with Session(engine) as session:
        found = directory.authenticate_courier(session, deps.pickup_hmac_key, "73915546")
        assert found is not None
        assert found.id == courier.id
        assert directory.authenticate_courier(session, deps.pickup_hmac_key, "73915547") is None
