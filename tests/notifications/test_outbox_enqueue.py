"""Services queue notifications in their own transaction; secrets are only ever sealed."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.notifications import (
    Channel,
    NotificationMessage,
    Notifier,
    RecipientContact,
    Status,
)
from locker_server.notifications.errors import SealingError
from locker_server.notifications.sealing import unseal

CODE = "48213377"
QR_TOKEN = "qr-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e"


def _pickup_ready(
    notifier: Notifier, session: Session, recipient: RecipientContact, expires_at: datetime
) -> list[NotificationMessage]:
    return notifier.pickup_ready(
        session,
        parcel_id=None,  # type: ignore[arg-type]  # no parcels table needed for the outbox
        recipient=recipient,
        site_name="Main campus",
        cabinet_name="Library lobby",
        door_label="B07",
        code=CODE,
        qr_token=QR_TOKEN,
        expires_at=expires_at,
    )


def _all_messages(engine: Engine) -> list[NotificationMessage]:
    with Session(engine) as session:
        return list(session.exec(select(NotificationMessage).order_by(NotificationMessage.kind)))


def test_pickup_ready_queues_one_message_per_channel_the_recipient_accepts(
    engine: Engine, notifier: Notifier, alice: RecipientContact, expires_at: datetime
) -> None:
    with Session(engine) as session:
        _pickup_ready(notifier, session, alice, expires_at)
        session.commit()

    messages = _all_messages(engine)
    assert [(m.kind, m.destination) for m in messages] == [
        (Channel.email, "alice@example.org"),
        (Channel.sms, "+33612345678"),
    ]
    assert {m.status for m in messages} == {Status.pending}
    assert all(m.event == "pickup_ready" and m.recipient_id == 7 for m in messages)
    assert messages[0].event_id != messages[1].event_id
    assert messages[0].params["door_label"] == "B07"
    assert messages[0].next_attempt_at.tzinfo is not None


def test_pickup_code_and_qr_token_are_never_stored_in_plaintext(
    engine: Engine,
    notifier: Notifier,
    alice: RecipientContact,
    server_keys: ServerKeys,
    expires_at: datetime,
) -> None:
    with Session(engine) as session:
        _pickup_ready(notifier, session, alice, expires_at)
        session.commit()

    for message in _all_messages(engine):
        stored = repr(message.params).encode() + (message.sealed_secret or b"")
        assert CODE.encode() not in stored
        assert QR_TOKEN.encode() not in stored
        assert message.sealed_secret is not None
        opened = unseal(
            server_keys.outbox_sealing_key,
            message.sealed_secret,
            event_id=message.event_id,
            kind=message.kind,
        )
        assert (opened.code, opened.qr_token) == (CODE, QR_TOKEN)


def test_sealed_secret_moved_to_another_message_does_not_open(
    engine: Engine,
    notifier: Notifier,
    alice: RecipientContact,
    server_keys: ServerKeys,
    expires_at: datetime,
) -> None:
    with Session(engine) as session:
        email, sms = _pickup_ready(notifier, session, alice, expires_at)
        assert email.sealed_secret is not None
        with pytest.raises(SealingError):
            unseal(
                server_keys.outbox_sealing_key,
                email.sealed_secret,
                event_id=sms.event_id,
                kind=sms.kind,
            )


def test_notifications_vanish_with_a_rolled_back_business_change(
    engine: Engine, notifier: Notifier, alice: RecipientContact, expires_at: datetime
) -> None:
    with Session(engine) as session:
        _pickup_ready(notifier, session, alice, expires_at)
        session.flush()
        session.rollback()

    assert _all_messages(engine) == []


def test_sms_is_queued_only_when_a_gateway_is_configured(
    engine: Engine,
    settings: Settings,
    server_keys: ServerKeys,
    alice: RecipientContact,
    expires_at: datetime,
) -> None:
    notifier_without_sms = Notifier(settings=settings, keys=server_keys)
    with Session(engine) as session:
        _pickup_ready(notifier_without_sms, session, alice, expires_at)
        session.commit()

    assert [m.kind for m in _all_messages(engine)] == [Channel.email]


def test_recipient_who_declined_email_and_has_no_phone_gets_nothing(
    engine: Engine, notifier: Notifier, expires_at: datetime
) -> None:
    quiet = RecipientContact(8, "Bob", "bob@example.org", None, channels=("sms",))
    with Session(engine) as session:
        assert _pickup_ready(notifier, session, quiet, expires_at) == []
        session.commit()

    assert _all_messages(engine) == []


def test_reminder_carries_no_code_and_no_sealed_secret(
    engine: Engine, notifier: Notifier, wang: RecipientContact, expires_at: datetime
) -> None:
    with Session(engine) as session:
        notifier.reminder(
            session,
            parcel_id=None,  # type: ignore[arg-type]
            recipient=wang,
            site_name="总部大楼",
            cabinet_name="一楼大厅",
            expires_at=expires_at,
        )
        session.commit()

    messages = _all_messages(engine)
    assert [m.language for m in messages] == ["zh-CN", "zh-CN"]
    assert all(m.sealed_secret is None and m.event == "reminder" for m in messages)


def test_carrier_event_is_queued_as_a_webhook_with_its_payload(
    engine: Engine, notifier: Notifier
) -> None:
    with Session(engine) as session:
        queued = notifier.carrier_event(
            session,
            carrier_id=3,
            webhook_url="https://carrier.example/hooks/locker",
            event_type="parcel.deposited",
            data={"parcel_id": 11, "tracking_number": "TRK123"},
        )
        skipped = notifier.carrier_event(
            session, carrier_id=4, webhook_url=None, event_type="parcel.deposited", data={}
        )
        session.commit()

    assert queued is not None
    assert skipped is None
    (message,) = _all_messages(engine)
    assert (message.kind, message.carrier_id, message.event) == ("webhook", 3, "parcel.deposited")
    assert message.params == {
        "type": "parcel.deposited",
        "data": {"parcel_id": 11, "tracking_number": "TRK123"},
    }
