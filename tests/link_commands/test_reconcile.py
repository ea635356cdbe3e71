"""Pickups a cabinet validated offline are applied exactly once, whatever the server did to
the parcel during the outage (re-issue, cancel, expiry), by the rules in docs/link.md."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_contract import Event, new_message_id
from locker_server.db import session_scope
from locker_server.models import CabinetCreate, Door, Occupancy, ParcelTransition
from locker_server.models.links import CabinetLink
from locker_server.services import DomainDeps
from locker_server.services import cabinet_sync as sync
from locker_server.services import layout as config_service
from locker_server.services import offline_pickups as reconcile
from locker_server.services.parcels import cancel, expire_overdue, reissue_credentials
from tests.domain.conftest import (
    OPERATOR,
    Deliver,
    Delivered,
    FakeClock,
    World,
    audit_rows,
    load_parcel,
)
from tests.link_commands.conftest import RecordingPublisher, details_of


def _allow_list_version(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> int:
    """The cabinet comes online and receives its full list; answer the list's version."""
    with session_scope(engine) as session:
        session.merge(CabinetLink(cabinet_id=world.cabinet_id, online=True, connection=1))
    with session_scope(engine) as session:
        sync.on_cabinet_online(session, publisher, keys=deps.keys, cabinet_id=world.cabinet_id)
    return publisher.allow_lists()[-1].version


def _pickup_event(delivered: Delivered, clock: FakeClock, version: int) -> Event:
    return Event(
        event_id=new_message_id(),
        seq=7,
        type="pickup",
        device_time=clock() - timedelta(minutes=10),
        door=delivered.door_number,
        data={
            "mode": "offline",
            "parcel_ids": [delivered.parcel_id],
            "credential": "code",
            "allow_list_version": version,
        },
    )


def _apply(engine: Engine, deps: DomainDeps, world: World, event: Event) -> None:
    with session_scope(engine) as session:
        reconcile.apply_offline_pickup(
            session, deps, cabinet_id=world.cabinet_id, event=event, audit=deps.audit
        )


def _offline_outcomes(engine: Engine) -> list[tuple[str, list[str]]]:
    return [
        (row.outcome, details_of(row).get("findings", []))
        for row in audit_rows(engine, "pickup.offline")
    ]


def test_an_offline_pickup_is_applied_once_even_when_reported_twice(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    event = _pickup_event(delivered, clock, _allow_list_version(engine, deps, world, publisher))
    clock.advance(minutes=30)
    _apply(engine, deps, world, event)
    _apply(engine, deps, world, event)
    parcel = load_parcel(engine, delivered.parcel_id)
    assert parcel.state == "picked_up"
    assert parcel.picked_up_at is not None
    assert parcel.picked_up_at.replace(tzinfo=event.device_time.tzinfo) == event.device_time
    with Session(engine) as session:
        steps = session.exec(
            select(ParcelTransition).where(
                ParcelTransition.parcel_id == delivered.parcel_id,
                ParcelTransition.to_state == "picked_up",
            )
        ).all()
        door = session.get(Door, world.door_ids[delivered.door_number])
        assert door is not None
        assert (door.occupancy, door.held_parcels) == (Occupancy.empty, 0)
    assert len(steps) == 1
    assert _offline_outcomes(engine) == [("accepted", []), ("already_picked_up", [])]


def test_a_code_reissued_during_the_outage_is_accepted_and_flagged_stale(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    version = _allow_list_version(engine, deps, world, publisher)
    with session_scope(engine) as session:  # the link is down: the cabinet keeps the old code
        reissue_credentials(session, deps, parcel_id=delivered.parcel_id, caller=OPERATOR)
    _apply(engine, deps, world, _pickup_event(delivered, clock, version))
    assert load_parcel(engine, delivered.parcel_id).state == "picked_up"
    assert _offline_outcomes(engine) == [("accepted_with_notes", ["stale_credential_used_offline"])]


def test_a_reissue_already_synced_before_reconnect_is_still_recognised_as_stale(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    version = _allow_list_version(engine, deps, world, publisher)
    with session_scope(engine) as session:
        reissue_credentials(session, deps, parcel_id=delivered.parcel_id, caller=OPERATOR)
    _allow_list_version(engine, deps, world, publisher)  # reconnect: full list before the replay
    _apply(engine, deps, world, _pickup_event(delivered, clock, version))
    assert _offline_outcomes(engine) == [("accepted_with_notes", ["stale_credential_used_offline"])]


def test_a_parcel_cancelled_during_the_outage_stays_cancelled_and_operators_are_alarmed(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    version = _allow_list_version(engine, deps, world, publisher)
    with session_scope(engine) as session:
        cancel(session, deps, parcel_id=delivered.parcel_id, caller=OPERATOR,
               reason="sender recalled it", as_operator=True)  # fmt: skip
    event = _pickup_event(delivered, clock, version)
    _apply(engine, deps, world, event)
    assert load_parcel(engine, delivered.parcel_id).state == "cancelled"
    [alarm] = audit_rows(engine, "pickup.offline_conflict")
    assert (alarm.outcome, details_of(alarm)["conflict"]) == ("alarm", "parcel_cancelled")
    with Session(engine) as session:
        note = session.exec(
            select(ParcelTransition)
            .where(ParcelTransition.parcel_id == delivered.parcel_id)
            .order_by(col(ParcelTransition.id).desc())
        ).first()
    assert note is not None
    assert (note.from_state, note.to_state) == ("cancelled", "cancelled")
    assert "offline pickup" in (note.reason or "")
    assert audit_rows(engine, "pickup.offline") == []


def test_a_parcel_expired_on_the_server_during_the_outage_is_accepted_and_noted(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    version = _allow_list_version(engine, deps, world, publisher)
    clock.advance(hours=72, minutes=5)
    event = _pickup_event(delivered, clock, version)  # 10 minutes ago: 5 before the deadline
    with session_scope(engine) as session:
        expire_overdue(session, deps, now=clock())
    assert load_parcel(engine, delivered.parcel_id).state == "expired"
    _apply(engine, deps, world, event)
    assert load_parcel(engine, delivered.parcel_id).state == "picked_up"
    assert _offline_outcomes(engine) == [("accepted_with_notes", ["expired_before_reconciliation"])]
    [step] = audit_rows(engine, "parcel.picked_up")
    assert details_of(step)["from_state"] == "expired"


def test_a_cabinet_cannot_pick_up_a_parcel_of_another_cabinet(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    with session_scope(engine) as session:
        other = config_service.create_cabinet(
            session, deps, CabinetCreate(site_id=world.site_id, code="CAB-2", name="Annex"),
            caller=OPERATOR,
        )  # fmt: skip
        other_id = other.id or 0
    with session_scope(engine) as session:
        reconcile.apply_offline_pickup(
            session, deps, cabinet_id=other_id, event=_pickup_event(delivered, clock, 1),
            audit=deps.audit,
        )  # fmt: skip
    assert load_parcel(engine, delivered.parcel_id).state == "notified"
    [alarm] = audit_rows(engine, "pickup.offline_conflict")
    assert details_of(alarm)["conflict"] == "wrong_cabinet"
