"""A cabinet's ``deposit`` event drives the parcel's deposit (credentials, notification)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.db import session_scope
from locker_server.models import CarrierCreate, Door, Parcel, ParcelState, RecipientCreate
from locker_server.services import DomainDeps, directory
from locker_server.services.parcels import Announcement, announce, reserve
from tests.link_bridge.conftest import (
    OPERATOR,
    Bridges,
    CabinetClient,
    CabinetWorld,
    audit_entries,
    event,
    wait_for,
)


def reserved_parcel(engine: Engine, deps: DomainDeps, cabinet: CabinetWorld) -> tuple[int, int]:
    """A parcel reserved at the cabinet: (parcel id, door number)."""
    with session_scope(engine) as session:
        carrier = directory.create_carrier(
            session, deps, CarrierCreate(name="SwiftPost"), caller=OPERATOR
        )
        recipient = directory.create_recipient(
            session,
            deps,
            RecipientCreate(name="Alice", email="alice@example.org", consent_locker_delivery=True),
            caller=OPERATOR,
        )
        assert carrier.id is not None
        assert recipient.id is not None
        spec = Announcement(
            carrier_id=carrier.id, tracking_number="TRK1", recipient_id=recipient.id
        )
        parcel = announce(session, deps, spec, caller=OPERATOR)
        assert parcel.id is not None
        parcel = reserve(
            session, deps, parcel_id=parcel.id, cabinet_id=cabinet.cabinet_id, caller=OPERATOR
        )
        door = session.get(Door, parcel.door_id)
        assert door is not None
        assert parcel.id is not None
        return parcel.id, door.number


def test_a_deposit_reported_by_the_cabinet_notifies_the_recipient_once(
    engine: Engine,
    deps: DomainDeps,
    bridges: Bridges,
    cabinet: CabinetWorld,
    cabinet_client: CabinetClient,
) -> None:
    parcel_id, door_number = reserved_parcel(engine, deps, cabinet)
    bridges.start()
    deposit = event("deposit", door=door_number, parcel_id=parcel_id, courier="7")

    cabinet_client.send_events([deposit])
    cabinet_client.send_events([deposit])  # re-published before the ack arrived

    assert wait_for(lambda: len(cabinet_client.acks) == 2)
    with Session(engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        assert parcel.state == ParcelState.notified
    [deposited] = audit_entries(engine, "parcel.deposited", cabinet.cabinet_id)
    assert deposited.actor_type == "cabinet"


def test_a_deposit_without_a_parcel_id_is_audited_as_unmatched(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()

    cabinet_client.send_events([event("deposit", door=2)])

    assert wait_for(lambda: len(cabinet_client.acks) == 1)
    [entry] = audit_entries(engine, "parcel.deposit_unmatched", cabinet.cabinet_id)
    assert entry.outcome == "unmatched"
