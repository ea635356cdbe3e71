"""The parcel lifecycle: the happy path, every refused step, the side paths and the sweeps."""

from __future__ import annotations

from itertools import product

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_server.db import session_scope
from locker_server.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from locker_server.models import Door, Occupancy, ParcelState, ParcelTransition
from locker_server.services import DomainDeps
from locker_server.services.lifecycle import ALLOWED_TRANSITIONS, move
from locker_server.services.parcels import (
    Announcement,
    announce,
    cancel,
    collect_for_return,
    expire_overdue,
    get_parcel,
    mark_returned,
    record_deposit,
    release_expired_reservations,
    reserve,
)
from locker_server.services.pickup import attempt_pickup
from tests.domain.conftest import (
    COURIER,
    KIOSK,
    OPERATOR,
    Announce,
    CapturingNotifier,
    Deliver,
    FakeClock,
    World,
    audit_actions,
    load_parcel,
)

S = ParcelState


def _history(engine: Engine, parcel_id: int) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(ParcelTransition)
            .where(ParcelTransition.parcel_id == parcel_id)
            .order_by(col(ParcelTransition.id))
        ).all()
        return [(row.from_state, row.to_state, row.actor_type) for row in rows]


def _door(engine: Engine, door_id: int) -> Door:
    with Session(engine) as session:
        door = session.get(Door, door_id)
        assert door is not None
        return door


def test_parcel_goes_from_announcement_to_pickup_with_every_step_recorded_and_audited(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver
) -> None:
    delivered = deliver()
    with session_scope(engine) as session:
        decision = attempt_pickup(
            session, deps, cabinet_id=world.cabinet_id, code=delivered.code, caller=KIOSK
        )
    assert decision.granted
    assert decision.door_numbers == (delivered.door_number,)
    parcel = load_parcel(engine, delivered.parcel_id)
    assert parcel.state == S.picked_up
    assert parcel.picked_up_at is not None
    assert _history(engine, delivered.parcel_id) == [
        (None, "announced", "courier"),
        ("announced", "reserved", "courier"),
        ("reserved", "deposited", "courier"),
        ("deposited", "notified", "system"),
        ("notified", "picked_up", "cabinet"),
    ]
    actions = audit_actions(engine, parcel_id=delivered.parcel_id)
    for action in ("parcel.announced", "parcel.reserved", "parcel.deposited", "parcel.notified"):
        assert action in actions
    assert actions[-2:] == ["parcel.picked_up", "pickup.attempt"]
    door = _door(engine, world.door_ids[delivered.door_number])
    assert (door.occupancy, door.held_parcels, door.occupant_recipient_id) == ("empty", 0, None)


def test_every_step_outside_the_transition_table_is_refused(
    engine: Engine, deps: DomainDeps, announce_parcel: Announce
) -> None:
    parcel_id = announce_parcel()
    refused = [(a, b) for a, b in product(S, S) if b not in ALLOWED_TRANSITIONS[a]]
    assert len(refused) > 50
    with Session(engine) as session:
        parcel = get_parcel(session, parcel_id)
        for current, target in refused:
            parcel.state = current
            with pytest.raises(InvalidTransition, match=f"{current.value} cannot become"):
                move(session, deps, parcel, target, caller=OPERATOR, now=deps.clock())
        session.rollback()
    assert _history(engine, parcel_id) == [(None, "announced", "courier")]


def test_deposit_without_reservation_and_pickup_of_a_cancelled_parcel_are_refused(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    parcel_id = announce_parcel()
    with pytest.raises(InvalidTransition), session_scope(engine) as session:
        record_deposit(
            session,
            deps,
            cabinet_id=world.cabinet_id,
            door_number=1,
            parcel_id=parcel_id,
            caller=COURIER,
        )
    with session_scope(engine) as session:
        cancel(
            session,
            deps,
            parcel_id=parcel_id,
            caller=COURIER,
            reason="sender recalled",
            as_operator=False,
        )
    with pytest.raises(InvalidTransition), session_scope(engine) as session:
        reserve(session, deps, parcel_id=parcel_id, cabinet_id=world.cabinet_id, caller=COURIER)


def test_announcement_for_a_recipient_without_consent_is_refused(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    spec = Announcement(
        carrier_id=world.carrier_id, tracking_number="X1", recipient_id=world.no_consent
    )
    with pytest.raises(ValidationFailed, match="recipient_id"), session_scope(engine) as session:
        announce(session, deps, spec, caller=COURIER)


def test_same_tracking_number_twice_for_one_carrier_is_a_conflict(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    spec = Announcement(carrier_id=world.carrier_id, tracking_number="DUP1", recipient_id=world.bob)
    with session_scope(engine) as session:
        announce(session, deps, spec, caller=COURIER)
    with pytest.raises(Conflict, match="DUP1"), session_scope(engine) as session:
        announce(session, deps, spec, caller=COURIER)


def test_a_reservation_not_used_in_time_is_released_and_frees_its_door(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce, clock: FakeClock
) -> None:
    parcel_id = announce_parcel(size="L")
    with session_scope(engine) as session:
        reserve(session, deps, parcel_id=parcel_id, cabinet_id=world.cabinet_id, caller=COURIER)
    assert _door(engine, world.door_ids[5]).occupancy == Occupancy.reserved
    clock.advance(minutes=deps.settings.reservation_minutes - 1)
    with session_scope(engine) as session:
        assert release_expired_reservations(session, deps, now=clock.now) == 0
    clock.advance(minutes=2)
    with session_scope(engine) as session:
        assert release_expired_reservations(session, deps, now=clock.now) == 1
    parcel = load_parcel(engine, parcel_id)
    assert (parcel.state, parcel.door_id) == (S.announced, None)
    assert _door(engine, world.door_ids[5]).occupancy == Occupancy.empty
    assert _history(engine, parcel_id)[-1] == ("reserved", "announced", "system")


def test_cancelling_a_deposited_parcel_needs_an_operator_and_voids_its_code(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver
) -> None:
    delivered = deliver()
    with pytest.raises(PermissionDenied), session_scope(engine) as session:
        cancel(
            session,
            deps,
            parcel_id=delivered.parcel_id,
            caller=COURIER,
            reason=None,
            as_operator=False,
        )
    with session_scope(engine) as session:
        cancel(
            session,
            deps,
            parcel_id=delivered.parcel_id,
            caller=OPERATOR,
            reason="damaged, taken out by staff",
            as_operator=True,
        )
    with session_scope(engine) as session:
        decision = attempt_pickup(
            session, deps, cabinet_id=world.cabinet_id, code=delivered.code, caller=KIOSK
        )
    assert decision.outcome == "wrong_code"
    assert _door(engine, world.door_ids[delivered.door_number]).occupancy == Occupancy.empty
    assert "parcel.cancelled" in audit_actions(engine, parcel_id=delivered.parcel_id)


def test_overdue_parcel_expires_then_goes_back_to_the_sender(
    engine: Engine,
    deps: DomainDeps,
    world: World,
    deliver: Deliver,
    clock: FakeClock,
    notifier: CapturingNotifier,
) -> None:
    delivered = deliver()
    clock.advance(hours=deps.settings.pickup_hours, seconds=1)
    with session_scope(engine) as session:
        assert expire_overdue(session, deps, now=clock.now) == 1
    assert load_parcel(engine, delivered.parcel_id).state == S.expired
    assert [k["parcel_id"] for k in notifier.of("expired")] == [delivered.parcel_id]
    door_id = world.door_ids[delivered.door_number]
    assert _door(engine, door_id).occupancy == Occupancy.occupied  # still inside
    with session_scope(engine) as session:
        collect_for_return(session, deps, parcel_id=delivered.parcel_id, caller=COURIER)
    assert _door(engine, door_id).occupancy == Occupancy.empty
    with session_scope(engine) as session:
        mark_returned(session, deps, parcel_id=delivered.parcel_id, caller=COURIER)
    assert [step[1] for step in _history(engine, delivered.parcel_id)][-3:] == [
        "expired",
        "collected_for_return",
        "returned",
    ]
    events = [k["event_type"] for k in notifier.of("carrier_event")]
    assert events == [
        "parcel.deposited",
        "parcel.expired",
        "parcel.collected_for_return",
        "parcel.returned",
    ]


def test_an_expiry_sweep_before_the_deadline_leaves_the_parcel_waiting(
    engine: Engine, deps: DomainDeps, deliver: Deliver, clock: FakeClock
) -> None:
    delivered = deliver()
    clock.advance(hours=deps.settings.pickup_hours - 1)
    with session_scope(engine) as session:
        assert expire_overdue(session, deps, now=clock.now) == 0
    assert load_parcel(engine, delivered.parcel_id).state == S.notified
