"""Builders of valid example messages of every type, shared by the contract and guard tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    AllowListEntry,
    AllowListSync,
    CommandMessage,
    CommandResult,
    ConfigSync,
    Envelope,
    Event,
    EventAck,
    EventBatch,
    Presence,
    State,
    TimeSync,
    UnsignedAllowListSync,
    UnsignedCommand,
    UnsignedConfigSync,
    UnsignedEventAck,
    UnsignedTimeSync,
    key_id_of,
    new_envelope,
    new_message_id,
    sign_command,
    sign_message,
)
from locker_contract.bodies import DoorSnapshot
from locker_contract.desk import (
    Answer,
    CourierSession,
    CourierSignIn,
    DepositLookup,
    DoorReserved,
    ExpiredList,
    ExpiredParcel,
    Operation,
    RecipientKey,
    RefusalReason,
    RegisterParcel,
    ReplyMessage,
    Request,
    RequestRefused,
    UnsignedReply,
)

CABINET = "LOBBY-01"
T0 = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
#: signs the example acks and syncs unless a test passes the key it trusts
SERVER_KEY = Ed25519PrivateKey.generate()


def presence(status: str = "online", connection: int = 7) -> Envelope[Presence]:
    body = Presence(status=status, connection=connection, agent_version="0.1.0")
    return new_envelope(CABINET, body, sent_at=T0)


def state() -> Envelope[State]:
    doors = {
        "1": DoorSnapshot(state="closed", occupied=True),
        "2": DoorSnapshot(state="open", occupied=None),
        "3": DoorSnapshot(state="unknown", occupied=False),
    }
    return new_envelope(CABINET, State(version=42, doors=doors), sent_at=T0)


def event(event_type: str = "door.opened", *, seq: int = 1, **data: Any) -> Event:
    return Event(
        event_id=new_message_id(),
        seq=seq,
        type=event_type,
        device_time=T0,
        door=None if event_type.startswith(("alarm", "telemetry")) else 2,
        data=data,
    )


def event_batch() -> Envelope[EventBatch]:
    events = [
        event("door.opened", seq=1),
        event("deposit", seq=2, parcel_id=17, courier="C-9"),
        event(
            "pickup",
            seq=3,
            mode="offline",
            parcel_ids=[17],
            credential="code",
            allow_list_version=5,
        ),
        event("pickup.refused", seq=4, reason="no_match", credential="code"),
        event("alarm", seq=5, kind="tamper"),
        event("telemetry.temperature", seq=6, celsius=21.5),
    ]
    return new_envelope(CABINET, EventBatch(events=events), sent_at=T0)


def event_ack(
    key: Ed25519PrivateKey = SERVER_KEY,
    *,
    event_ids: list[str] | None = None,
    cabinet_id: str = CABINET,
) -> Envelope[EventAck]:
    ids = event_ids if event_ids is not None else [new_message_id(), new_message_id()]
    body = UnsignedEventAck(event_ids=ids, key_id=key_id_of(key.public_key()))
    return sign_message(new_envelope(cabinet_id, body), key, Envelope[EventAck])


def unsigned_command(
    key: Ed25519PrivateKey,
    *,
    cabinet_id: str = CABINET,
    issued_at: datetime = T0,
    lifetime: timedelta = timedelta(seconds=60),
    **fields: Any,
) -> Envelope[UnsignedCommand]:
    values: dict[str, Any] = {
        "command_id": new_message_id(),
        "counter": 1,
        "action": "open_door",
        "door": 2,
        "reason": "operator remote open",
        "maintenance_token": None,
    }
    values.update(fields)
    body = UnsignedCommand(
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
        key_id=key_id_of(key.public_key()),
        **values,
    )
    return new_envelope(cabinet_id, body, sent_at=issued_at)


def command(key: Ed25519PrivateKey, **fields: Any) -> CommandMessage:
    return sign_command(unsigned_command(key, **fields), key)


def command_result(status: str = "succeeded", **fields: Any) -> Envelope[CommandResult]:
    values: dict[str, Any] = {
        "command_id": new_message_id(),
        "status": status,
        "reason": None,
        "outcome": "confirmed",
        "counter": 3,
    }
    values.update(fields)
    return new_envelope(CABINET, CommandResult(**values), sent_at=T0)


def allow_list_entry(parcel_id: int = 17, door: int = 2, **fields: Any) -> AllowListEntry:
    values: dict[str, Any] = {"code_hash": "ab" * 32, "qr_hash": None}
    values.update(fields)
    return AllowListEntry(
        parcel_id=parcel_id, door=door, expires_at=T0 + timedelta(days=3), **values
    )


def allow_list_sync(
    key: Ed25519PrivateKey = SERVER_KEY,
    *,
    version: int = 5,
    entries: list[AllowListEntry] | None = None,
    full: bool = True,
    removed: list[int] | None = None,
    cabinet_id: str = CABINET,
    sent_at: datetime = T0,
) -> Envelope[AllowListSync]:
    default = [allow_list_entry(), allow_list_entry(18, 3, code_hash=None, qr_hash="cd" * 32)]
    body = UnsignedAllowListSync(
        kind="allow_list",
        version=version,
        server_time=sent_at,
        full=full,
        entries=default if entries is None else entries,
        removed=removed or [],
        key_id=key_id_of(key.public_key()),
    )
    envelope = new_envelope(cabinet_id, body, sent_at=sent_at)
    return sign_message(envelope, key, Envelope[AllowListSync])


def config_sync(key: Ed25519PrivateKey = SERVER_KEY) -> Envelope[ConfigSync]:
    body = UnsignedConfigSync(
        kind="config",
        version=2,
        server_time=T0,
        settings={"left_open_after_s": 120},
        key_id=key_id_of(key.public_key()),
    )
    return sign_message(new_envelope(CABINET, body, sent_at=T0), key, Envelope[ConfigSync])


def time_sync(
    key: Ed25519PrivateKey = SERVER_KEY,
    *,
    version: int = 1,
    server_time: datetime = T0,
    cabinet_id: str = CABINET,
) -> Envelope[TimeSync]:
    body = UnsignedTimeSync(
        kind="time", version=version, server_time=server_time, key_id=key_id_of(key.public_key())
    )
    envelope = new_envelope(cabinet_id, body, sent_at=server_time)
    return sign_message(envelope, key, Envelope[TimeSync])


SESSION = CourierSession(courier_id=12, expires_at=T0 + timedelta(hours=1), token="5e" * 32)
REQUEST_ID = "6f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f"


def request(
    operation: Operation | None = None, *, request_id: str = REQUEST_ID
) -> Envelope[Request]:
    body = Request(
        request_id=request_id,
        expires_at=T0 + timedelta(seconds=10),
        operation=operation or DepositLookup(session=SESSION, tracking_number="SF123", size="M"),
    )
    return new_envelope(CABINET, body, sent_at=T0)


def reply(
    key: Ed25519PrivateKey = SERVER_KEY,
    answer: Answer | None = None,
    *,
    request_id: str = REQUEST_ID,
    cabinet_id: str = CABINET,
    expires_at: datetime = T0 + timedelta(seconds=10),
) -> ReplyMessage:
    default = DoorReserved(parcel_id=17, door=2, size="M", reserved_until=T0 + timedelta(hours=1))
    body = UnsignedReply(
        request_id=request_id,
        expires_at=expires_at,
        answer=answer or default,
        key_id=key_id_of(key.public_key()),
    )
    return sign_message(new_envelope(cabinet_id, body, sent_at=T0), key, ReplyMessage)


def every_message(key: Ed25519PrivateKey) -> list[Envelope[Any]]:
    """One or more valid messages of every type, as either side would send them."""
    return [
        presence(),
        presence("offline"),
        state(),
        event_batch(),
        event_ack(key),
        command(key),
        command(key, action="ping", door=None, reason=None),
        command(key, action="open_all", door=None, maintenance_token="service-1234"),
        command_result(),
        command_result("rejected", reason="expired", outcome=None, counter=None),
        command_result("received", outcome=None),
        allow_list_sync(key),
        config_sync(key),
        time_sync(key),
        request(),
        request(CourierSignIn(credential="badge", secret="C0URIER99")),
        request(
            RegisterParcel(
                session=SESSION,
                tracking_number="SF999",
                recipient=RecipientKey(kind="email", value="alice@example.org"),
                size="L",
            )
        ),
        reply(key),
        reply(key, ExpiredList(parcels=[ExpiredParcel(parcel_id=4, door=3, tracking_number="X1")])),
        reply(key, RequestRefused(reason=RefusalReason.NO_CONSENT, message="no consent")),
    ]
