"""The courier desk end to end: the real agent runtime asks, the real bridge answers.

A private Mosquitto from the generated configuration (TLS, ACLs), the server's bridge as
``serve`` starts it, the agent on simulated boards; SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from locker_agent.boards import DoorState
from locker_agent.config import parse_settings
from locker_agent.link.courier_desk import DepositRecord
from locker_agent.link.errors import ServerUnreachable
from locker_contract import (
    CourierSession,
    DoorReserved,
    RecipientKey,
    RefusalReason,
    RequestMessage,
    RequestRefused,
    SignedIn,
    UnsignedReply,
    cabinet_pickup_key,
    decode,
    encode,
    key_id_of,
    new_envelope,
    sign_message,
    topics,
)
from locker_contract.desk import ReplyMessage
from locker_server.audit.models import AuditEntry
from locker_server.db import session_scope
from locker_server.models import CarrierCreate, CourierCreate, Parcel, RecipientCreate
from locker_server.notifications.models import NotificationMessage
from locker_server.services import directory
from locker_server.services.parcels import Announcement, announce
from simulators.cabinet import SimulatedCabinet
from tests.link_e2e.conftest import ADMIN, CABINET, LinkWorld, wait_until
from tests.link_support.clients import connect

COURIER_CODE = "SWIFT2026"


@dataclass(frozen=True)
class People:
    carrier_id: int
    courier_id: int
    alice: int


@pytest.fixture
def people(world: LinkWorld) -> People:
    with session_scope(world.engine) as session:
        carrier = directory.create_carrier(
            session, world.deps, CarrierCreate(name="SwiftPost"), caller=ADMIN
        )
        assert carrier.id is not None
        body = CourierCreate(carrier_id=carrier.id, name="Chen Courier", code=COURIER_CODE)
        courier = directory.create_courier(session, world.deps, body, caller=ADMIN)
        alice = directory.create_recipient(
            session,
            world.deps,
            RecipientCreate(name="Alice", email="alice@example.org", consent_locker_delivery=True),
            caller=ADMIN,
        )
        directory.create_recipient(
            session,
            world.deps,
            RecipientCreate(name="Nora", email="nora@example.org", consent_locker_delivery=False),
            caller=ADMIN,
        )
        assert courier.id is not None
        assert alice.id is not None
        return People(carrier.id, courier.id, alice.id)


@pytest.fixture
def cabinet(world: LinkWorld) -> Iterator[SimulatedCabinet]:
    """The agent, provisioned with this server's pickup key (tracking numbers are hashed
    with it) and a short request timeout."""
    document = world.agent_document()
    key = cabinet_pickup_key(world.deps.keys.pickup_hmac_key, world.cabinet_db_id)
    document["security"]["pickup_key"] = key.hex()
    with world.cabinet(settings=parse_settings(document)) as running:
        assert running.runtime.link.wait_connected(15)
        running.runtime.courier_desk.requests.timeout = 3.0
        yield running


def _announce(world: LinkWorld, people: People, tracking_number: str) -> int:
    spec = Announcement(
        carrier_id=people.carrier_id, tracking_number=tracking_number, recipient_id=people.alice
    )
    with session_scope(world.engine) as session:
        parcel = announce(session, world.deps, spec, caller=ADMIN)
        assert parcel.id is not None
        return parcel.id


def _sign_in(cabinet: SimulatedCabinet) -> SignedIn:
    answer = cabinet.runtime.courier_desk.sign_in(code=COURIER_CODE)
    assert isinstance(answer, SignedIn), answer
    return answer


def _parcel(world: LinkWorld, parcel_id: int) -> Parcel:
    with Session(world.engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        return parcel


def _audit(world: LinkWorld, action: str) -> list[AuditEntry]:
    with Session(world.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query).all())


def _deposit_through_the_door(
    cabinet: SimulatedCabinet, reserved: DoorReserved, courier: SignedIn
) -> DepositRecord:
    door = cabinet.door(reserved.door)
    door.force_open()  # the kiosk opened it; the courier puts the parcel in
    assert wait_until(lambda: cabinet.runtime.door_state(reserved.door) is DoorState.OPEN, 10)
    door.close()
    assert wait_until(lambda: cabinet.runtime.door_state(reserved.door) is DoorState.CLOSED, 10)
    return cabinet.runtime.courier_desk.deposit_confirmed(
        parcel_id=reserved.parcel_id, door=reserved.door, courier_id=courier.courier_id
    )


def test_a_courier_signs_in_and_a_wrong_code_is_refused_and_audited_with_the_site(
    world: LinkWorld, people: People, cabinet: SimulatedCabinet
) -> None:
    courier = _sign_in(cabinet)
    assert (courier.courier_id, courier.carrier_name) == (people.courier_id, "SwiftPost")
    refused = cabinet.runtime.courier_desk.sign_in(code="WRONG0000")
    assert isinstance(refused, RequestRefused)
    assert refused.reason is RefusalReason.BAD_CREDENTIAL
    entries = _audit(world, "courier_desk.courier_sign_in")
    assert [entry.outcome for entry in entries] == ["success", "refused"]
    assert all(entry.cabinet_id == world.cabinet_db_id for entry in entries)
    assert all(entry.site_id is not None for entry in entries)
    assert not any(
        COURIER_CODE in entry.details or "WRONG0000" in entry.details for entry in entries
    )


def test_an_announced_parcel_gets_a_door_and_its_deposit_is_applied_once(
    world: LinkWorld, people: People, cabinet: SimulatedCabinet
) -> None:
    parcel_id = _announce(world, people, "SF1001")
    courier = _sign_in(cabinet)
    reserved = cabinet.runtime.courier_desk.parcel_for_deposit(courier, "SF1001", size="M")
    assert isinstance(reserved, DoorReserved)
    assert reserved.parcel_id == parcel_id
    assert _parcel(world, parcel_id).state == "reserved"

    assert _deposit_through_the_door(cabinet, reserved, courier) is DepositRecord.RECORDED
    again = cabinet.runtime.courier_desk.deposit_confirmed(
        parcel_id=parcel_id, door=reserved.door, courier_id=courier.courier_id
    )
    assert again is DepositRecord.ALREADY_RECORDED  # the kiosk called twice: journaled once

    assert wait_until(lambda: _parcel(world, parcel_id).state == "notified", 20)
    assert wait_until(lambda: not cabinet.runtime.journal.pending(limit=1), 20)
    assert len(_audit(world, "parcel.deposited")) == 1
    with Session(world.engine) as session:
        notices = session.exec(
            select(NotificationMessage).where(NotificationMessage.parcel_id == parcel_id)
        ).all()
    assert any(notice.event == "pickup_ready" for notice in notices)


def test_an_unannounced_parcel_is_registered_and_a_recipient_without_consent_is_refused(
    world: LinkWorld, people: People, cabinet: SimulatedCabinet
) -> None:
    desk = cabinet.runtime.courier_desk
    courier = _sign_in(cabinet)
    alice = RecipientKey(kind="email", value="Alice@Example.org")
    registered = desk.register_parcel(courier, "SF2001", recipient=alice, size="M")
    assert isinstance(registered, DoorReserved)
    assert _parcel(world, registered.parcel_id).state == "reserved"

    nora = RecipientKey(kind="email", value="nora@example.org")
    refused = desk.register_parcel(courier, "SF2002", recipient=nora, size="M")
    assert isinstance(refused, RequestRefused)
    assert refused.reason is RefusalReason.NO_CONSENT
    assert "consent" in refused.message or "agreed" in refused.message
    with Session(world.engine) as session:
        assert (
            session.exec(select(Parcel).where(Parcel.tracking_number == "SF2002")).first() is None
        )
    refusals = [e for e in _audit(world, "courier_desk.register_parcel") if e.outcome == "refused"]
    assert [entry.reason for entry in refusals] == ["no_consent"]


def test_with_the_server_out_of_reach_a_held_reservation_still_deposits_and_reconciles_once(
    world: LinkWorld, people: People, cabinet: SimulatedCabinet
) -> None:
    desk = cabinet.runtime.courier_desk
    parcel_id = _announce(world, people, "SF3001")
    courier = _sign_in(cabinet)
    online = desk.parcel_for_deposit(courier, "SF3001")
    assert isinstance(online, DoorReserved)
    # the reservations sync that followed the answer reached the cabinet
    assert wait_until(lambda: desk.held_reservation(people.carrier_id, "SF3001") is not None, 10)

    world.server.stop()
    with pytest.raises(ServerUnreachable):
        desk.register_parcel(
            courier,
            "SF3002",
            recipient=RecipientKey(kind="email", value="alice@example.org"),
            size="M",
        )
    offline = desk.parcel_for_deposit(courier, "SF3001")
    assert isinstance(offline, DoorReserved)
    assert (offline.parcel_id, offline.door) == (parcel_id, online.door)
    assert _deposit_through_the_door(cabinet, offline, courier) is DepositRecord.RECORDED
    assert desk.held_reservation(people.carrier_id, "SF3001") is None

    world.server.start()
    assert wait_until(lambda: _parcel(world, parcel_id).state == "notified", 30)
    assert wait_until(lambda: not cabinet.runtime.journal.pending(limit=1), 30)
    assert len(_audit(world, "parcel.deposited")) == 1


def test_a_link_that_is_down_is_a_clear_error(world: LinkWorld, cabinet: SimulatedCabinet) -> None:
    world.broker.kill()
    assert wait_until(lambda: not cabinet.runtime.link.connected, 15)
    with pytest.raises(ServerUnreachable, match="down"):
        cabinet.runtime.courier_desk.sign_in(code=COURIER_CODE)


@pytest.mark.parametrize("forgery", ["unsigned", "wrong_key"])
def test_a_forged_reply_is_ignored_and_journaled(
    world: LinkWorld, people: People, cabinet: SimulatedCabinet, forgery: str
) -> None:
    world.server.stop()  # only the attacker answers
    account = world.broker.server_credentials
    with connect(world.broker, account.username, account.password) as attacker:
        attacker.subscribe(topics.req(CABINET))
        outcome: list[object] = []
        asking = threading.Thread(
            target=lambda: outcome.append(_ask_catching(cabinet)), daemon=True
        )
        asking.start()
        request = decode(attacker.next_message().payload, RequestMessage)
        attacker.publish(topics.res(CABINET), _forged_reply(request, forgery))
        asking.join(10)
    assert outcome
    assert isinstance(outcome[0], ServerUnreachable)
    alarms = [
        dict(event.data)
        for event in cabinet.runtime.journal.pending(limit=100)
        if event.type == "alarm"
    ]
    assert any(alarm["kind"] == "res_rejected" for alarm in alarms)


def _ask_catching(cabinet: SimulatedCabinet) -> object:
    try:
        return cabinet.runtime.courier_desk.sign_in(code=COURIER_CODE)
    except ServerUnreachable as exc:
        return exc


def _forged_reply(request: RequestMessage, forgery: str) -> bytes:
    """A sign-in answer for a courier who does not exist: unsigned, or signed by a key
    the cabinet does not trust."""
    key = Ed25519PrivateKey.generate()
    session = CourierSession(
        courier_id=99, expires_at=request.body.expires_at + timedelta(hours=1), token="00" * 32
    )
    answer = SignedIn(
        courier_id=99, carrier_id=1, carrier_name="Impostor", display_name="Impostor",
        session=session,
    )  # fmt: skip
    body = UnsignedReply(
        request_id=request.body.request_id,
        expires_at=request.body.expires_at,
        answer=answer,
        key_id=key_id_of(key.public_key()),
    )
    envelope = new_envelope(CABINET, body)
    if forgery == "unsigned":
        return encode(envelope)
    return encode(sign_message(envelope, key, ReplyMessage))
