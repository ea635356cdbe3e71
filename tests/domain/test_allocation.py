"""Door allocation: smallest fitting free door, accessible doors kept, one recipient per door."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.db import session_scope
from locker_server.errors import NoDoorAvailable, ValidationFailed
from locker_server.models import Cabinet, CabinetUpdate, Door, DoorUpdate, ServiceState
from locker_server.services import DomainDeps
from locker_server.services import layout as config_service
from locker_server.services.parcels import reserve
from tests.domain.conftest import COURIER, OPERATOR, Announce, World, new_recipient


def _reserve(engine: Engine, deps: DomainDeps, world: World, parcel_id: int) -> int:
    """Reserve and answer the door number the parcel got."""
    with session_scope(engine) as session:
        parcel = reserve(
            session, deps, parcel_id=parcel_id, cabinet_id=world.cabinet_id, caller=COURIER
        )
        door = session.get(Door, parcel.door_id)
        assert door is not None
        return door.number


@pytest.mark.parametrize(
    ("dimensions", "size", "expected_doors"),
    [
        ({"length_mm": 300, "width_mm": 200, "height_mm": 50}, None, {1, 2}),
        ({"length_mm": 300, "width_mm": 150, "height_mm": 300}, None, {3, 4}),
        ({"length_mm": 600, "width_mm": 380, "height_mm": 300}, None, {5}),
        ({}, "M", {3, 4}),
        ({"length_mm": 300, "width_mm": 200, "height_mm": 50}, "L", {5}),  # larger of the two
    ],
)
def test_parcel_gets_the_smallest_free_door_that_fits(
    engine: Engine,
    deps: DomainDeps,
    world: World,
    announce_parcel: Announce,
    dimensions: dict[str, int],
    size: str | None,
    expected_doors: set[int],
) -> None:
    parcel_id = announce_parcel(world.alice, size=size, **dimensions)
    assert _reserve(engine, deps, world, parcel_id) in expected_doors


def test_a_parcel_that_fits_no_door_size_is_refused_at_announcement(
    announce_parcel: Announce,
) -> None:
    with pytest.raises(ValidationFailed, match="fits no door"):
        announce_parcel(length_mm=2000, width_mm=900, height_mm=900)


def test_when_the_small_doors_are_taken_a_small_parcel_gets_the_next_size(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    carol = new_recipient(engine, deps, "Carol")
    doors = [
        _reserve(engine, deps, world, announce_parcel(recipient, size="S"))
        for recipient in (world.alice, world.bob, carol)
    ]
    assert doors == [1, 2, 3]


def test_accessible_doors_are_kept_for_recipients_who_need_them(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    carol, dave = new_recipient(engine, deps, "Carol"), new_recipient(engine, deps, "Dave")
    taken = [
        _reserve(engine, deps, world, announce_parcel(recipient, size=size))
        for recipient, size in ((world.alice, "M"), (world.bob, "M"), (carol, "L"))
    ]
    assert taken == [3, 4, 5]  # only the accessible M door 6 (and two S doors) are left
    with pytest.raises(NoDoorAvailable):
        _reserve(engine, deps, world, announce_parcel(dave, size="M"))
    assert _reserve(engine, deps, world, announce_parcel(world.wheelchair, size="M")) == 6


def test_a_recipient_who_needs_an_accessible_door_never_gets_another(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    with session_scope(engine) as session:
        config_service.update_door(
            session,
            deps,
            world.cabinet_id,
            world.door_ids[6],
            DoorUpdate(service_state=ServiceState.out_of_service, service_reason="hinge broken"),
            caller=OPERATOR,
        )
    with pytest.raises(NoDoorAvailable):
        _reserve(engine, deps, world, announce_parcel(world.wheelchair, size="S"))


def test_one_recipients_parcels_share_a_door_but_two_recipients_never_do(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    first = _reserve(engine, deps, world, announce_parcel(world.alice, size="S"))
    second = _reserve(engine, deps, world, announce_parcel(world.alice, size="S"))
    bobs = _reserve(engine, deps, world, announce_parcel(world.bob, size="S"))
    assert first == second
    assert bobs != first
    with Session(engine) as session:
        door = session.get(Door, world.door_ids[first])
        assert door is not None
        assert (door.held_parcels, door.occupant_recipient_id) == (2, world.alice)


def test_out_of_service_doors_and_cabinets_in_maintenance_get_no_parcels(
    engine: Engine, deps: DomainDeps, world: World, announce_parcel: Announce
) -> None:
    with session_scope(engine) as session:
        for number in (1, 2):
            config_service.update_door(
                session,
                deps,
                world.cabinet_id,
                world.door_ids[number],
                DoorUpdate(
                    service_state=ServiceState.out_of_service, service_reason="sensor fault"
                ),
                caller=OPERATOR,
            )
    assert _reserve(engine, deps, world, announce_parcel(world.alice, size="S")) == 3
    with session_scope(engine) as session:
        config_service.update_cabinet(
            session,
            deps,
            world.cabinet_id,
            CabinetUpdate(maintenance=True, maintenance_reason="weekly check"),
            caller=OPERATOR,
        )
    with pytest.raises(NoDoorAvailable, match="not in service"):
        _reserve(engine, deps, world, announce_parcel(world.bob, size="S"))
    with Session(engine) as session:
        cabinet = session.get(Cabinet, world.cabinet_id)
        assert cabinet is not None
        assert cabinet.maintenance
