"""Stored pickup hashes follow the contract's per-cabinet scheme: what the server stores is
exactly what a cabinet computes from its own key, and no other cabinet's key matches."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract import cabinet_pickup_key, credential_hash
from locker_server.models import PickupCredential
from locker_server.services import DomainDeps
from tests.domain.conftest import Deliver, World


def test_the_stored_hash_is_what_the_cabinet_computes_from_its_own_key_only(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver
) -> None:
    delivered = deliver()
    with Session(engine) as session:
        stored = {
            c.kind: c.credential_hash
            for c in session.exec(
                select(PickupCredential).where(PickupCredential.parcel_id == delivered.parcel_id)
            ).all()
        }
    own_key = cabinet_pickup_key(deps.keys.pickup_hmac_key, world.cabinet_id)
    assert stored == {
        "code": credential_hash(own_key, "code", delivered.code),
        "qr": credential_hash(own_key, "qr", delivered.qr_token),
    }
    neighbour_key = cabinet_pickup_key(deps.keys.pickup_hmac_key, world.cabinet_id + 1)
    assert credential_hash(neighbour_key, "code", delivered.code) != stored["code"]
