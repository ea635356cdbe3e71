"""A pickup end to end: the parcel becomes ``picked_up`` on the server only once the
recipient has shut the door again, and exactly once.

The real agent on simulated boards, a private Mosquitto from the generated
configuration, the server's bridge as ``serve`` starts it; SQLite and PostgreSQL. The
cabinet learns the parcel's code hash from the full allow-list the server sends when it
comes online; the test knows the code itself from the notice the recipient was sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlmodel import Session, select

from locker_agent.boards import DoorState
from locker_agent.config import parse_settings
from locker_contract import cabinet_pickup_key
from locker_server.audit.models import AuditEntry
from locker_server.db import session_scope
from locker_server.models import CarrierCreate, Door, Parcel, RecipientCreate
from locker_server.services import directory
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve
from simulators.cabinet import SimulatedCabinet
from tests.domain.conftest import CapturingNotifier
from tests.link_e2e.conftest import ADMIN, LinkWorld, wait_until


@dataclass(frozen=True)
class Waiting:
    """A parcel in a door of the cabinet, and the code its recipient was sent."""

    parcel_id: int
    door: int
    code: str


@pytest.fixture
def waiting_parcel(world: LinkWorld) -> Waiting:
    notifier = CapturingNotifier(world.deps.notifier)
    deps = dataclasses.replace(world.deps, notifier=notifier)
    with session_scope(world.engine) as session:
        carrier = directory.create_carrier(session, deps, CarrierCreate(name="Swift"), caller=ADMIN)
        body = RecipientCreate(name="Ada", email="ada@example.org", consent_locker_delivery=True)
        recipient = directory.create_recipient(session, deps, body, caller=ADMIN)
        assert carrier.id is not None
        assert recipient.id is not None
        spec = Announcement(
            carrier_id=carrier.id, tracking_number="SF7001", recipient_id=recipient.id
        )
        parcel = announce(session, deps, spec, caller=ADMIN)
        assert parcel.id is not None
        parcel_id = parcel.id
    with session_scope(world.engine) as session:
        parcel = reserve(
            session, deps, parcel_id=parcel_id, cabinet_id=world.cabinet_db_id, caller=ADMIN
        )
        door = session.get(Door, parcel.door_id)
        assert door is not None
        door_number = door.number
    with session_scope(world.engine) as session:
        record_deposit(
            session,
            deps,
            cabinet_id=world.cabinet_db_id,
            door_number=door_number,
            parcel_id=parcel_id,
            caller=ADMIN,
        )
    code, _ = notifier.last_credentials(parcel_id)
    return Waiting(parcel_id, door_number, code)


@pytest.fixture
def cabinet(world: LinkWorld) -> Iterator[SimulatedCabinet]:
    """The agent, provisioned with this server's key for its pickup hashes."""
    document = world.agent_document()
    key = cabinet_pickup_key(world.deps.keys.pickup_hmac_key, world.cabinet_db_id)
    document["security"]["pickup_key"] = key.hex()
    with world.cabinet(settings=parse_settings(document)) as running:
        assert running.runtime.link.wait_connected(15)
        yield running


def _state(world: LinkWorld, parcel_id: int) -> str:
    with Session(world.engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        return str(parcel.state)


def _audited(world: LinkWorld, action: str) -> list[AuditEntry]:
    with Session(world.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query).all())


def test_the_parcel_is_picked_up_on_the_server_once_the_door_is_shut_again(
    world: LinkWorld, waiting_parcel: Waiting, cabinet: SimulatedCabinet
) -> None:
    runtime = cabinet.runtime
    assert wait_until(lambda: runtime.allow_list.version is not None)
    waiting_state = _state(world, waiting_parcel.parcel_id)

    outcome = runtime.local_pickup(code=waiting_parcel.code)

    assert (outcome.opened, outcome.door) == (True, waiting_parcel.door)
    # the server has heard of the open, and still counts the parcel as waiting
    assert wait_until(lambda: "door.open_confirmed" in {row.type for row in world.stored()})
    assert _state(world, waiting_parcel.parcel_id) == waiting_state != "picked_up"
    assert not _audited(world, "pickup.offline")

    cabinet.door(waiting_parcel.door).close()

    assert wait_until(lambda: _state(world, waiting_parcel.parcel_id) == "picked_up")
    assert wait_until(lambda: not runtime.journal.pending(limit=1))  # all acknowledged
    assert runtime.door_state(waiting_parcel.door) is DoorState.CLOSED
    assert [entry.outcome for entry in _audited(world, "pickup.offline")] == ["accepted"]
    stored = world.stored()
    assert [row.type for row in stored].count("pickup") == 1
    world.assert_each_event_once(stored)
