"""The whole story with the domain services: deposit, message, and the door opens.

A courier deposits a parcel through the real domain services (which queue notifications in
the same transaction), the worker delivers them through the real SMTP server, SMS gateway
and carrier endpoint, and the recipient opens the door with what arrived.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract.pickup_qr import parse_pickup_qr
from locker_server.audit import Actor, AuditLog
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    DoorCreate,
    Parcel,
    RecipientCreate,
    SiteCreate,
)
from locker_server.models.enums import Language
from locker_server.notifications import (
    NotificationMessage,
    NotificationWorker,
    Notifier,
    Status,
    cancel_pending,
    carrier_webhook_secret,
    verify_webhook_signature,
)
from locker_server.notifications.recipient_link import LinkKeys, link_expiry, open_link
from locker_server.services import Caller, DomainDeps, directory
from locker_server.services import layout as config_service
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve
from locker_server.services.pickup import attempt_pickup
from tests.notifications.notification_support import FakeClock, HttpReceiver, MailSink

OPERATOR = Caller(actor=Actor(type="user", id="1"), channel="api")
COURIER = Caller(actor=Actor(type="courier", id="2"), channel="api")
KIOSK = Caller(actor=Actor(type="cabinet", id="CAB-7"), channel="kiosk", source="CAB-7")


@dataclass(frozen=True)
class Deposited:
    parcel_id: int
    cabinet_id: int
    carrier_id: int


@pytest.fixture
def deps(live_settings: Settings, server_keys: ServerKeys, clock: FakeClock) -> DomainDeps:
    return DomainDeps(
        settings=live_settings,
        keys=server_keys,
        audit=AuditLog(signing_key=server_keys.audit_signing_key, clock=clock),
        notifier=Notifier(settings=live_settings, keys=server_keys, clock=clock),
        clock=clock,
    )


def _world(session: Session, deps: DomainDeps, hook_url: str) -> tuple[int, int, int]:
    site = config_service.create_site(
        session, deps, SiteCreate(name="North campus", timezone="Asia/Shanghai"), caller=OPERATOR
    )
    assert site.id is not None
    cabinet = config_service.create_cabinet(
        session, deps, CabinetCreate(site_id=site.id, code="CAB-7", name="Library"), caller=OPERATOR
    )
    assert cabinet.id is not None
    door = DoorCreate(number=1, size="M", board=1, lock=1, accessible_height=False)
    config_service.add_doors(session, deps, cabinet.id, [door], caller=OPERATOR)
    carrier = directory.create_carrier(
        session, deps, CarrierCreate(name="SwiftPost", webhook_url=hook_url), caller=OPERATOR
    )
    recipient = directory.create_recipient(
        session,
        deps,
        RecipientCreate(
            name="王小明",
            email="xiaoming@example.org",
            phone="+8613800138000",
            language=Language.zh_cn,
            consent_locker_delivery=True,
        ),
        caller=OPERATOR,
    )
    assert carrier.id is not None
    assert recipient.id is not None
    return cabinet.id, carrier.id, recipient.id


@pytest.fixture
def deposit(
    engine: Engine, deps: DomainDeps, http_receiver: HttpReceiver
) -> Callable[[], Deposited]:
    def _deposit() -> Deposited:
        with session_scope(engine) as session:
            cabinet_id, carrier_id, recipient_id = _world(
                session, deps, f"{http_receiver.url}/carrier"
            )
            spec = Announcement(carrier_id, "TRK-1", recipient_id)
            parcel = announce(session, deps, spec, caller=COURIER)
            assert parcel.id is not None
            reserve(session, deps, parcel_id=parcel.id, cabinet_id=cabinet_id, caller=COURIER)
        with session_scope(engine) as session:
            record_deposit(
                session,
                deps,
                cabinet_id=cabinet_id,
                door_number=1,
                parcel_id=parcel.id,
                caller=COURIER,
            )
        return Deposited(parcel.id, cabinet_id, carrier_id)

    return _deposit


def _qr_token(message: EmailMessage) -> str:
    (png,) = [p for p in message.walk() if p.get_content_type() == "image/png"]
    data = png.get_payload(decode=True)
    assert isinstance(data, bytes)
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    token = parse_pickup_qr(barcode.text)
    assert token is not None, f"the e-mail's QR is not a pickup QR: {barcode.text!r}"
    return token


def test_recipient_opens_the_door_with_the_qr_code_from_the_email(
    engine: Engine,
    deps: DomainDeps,
    deposit: Callable[[], Deposited],
    make_worker: Callable[..., NotificationWorker],
    mail_sink: MailSink,
    http_receiver: HttpReceiver,
) -> None:
    parcel = deposit()

    make_worker().run_once()

    (email,) = mail_sink.messages
    assert email["Subject"] == "您的包裹已存入Library快递柜，请及时取件"
    with session_scope(engine) as session:
        decision = attempt_pickup(
            session, deps, cabinet_id=parcel.cabinet_id, qr_token=_qr_token(email), caller=KIOSK
        )
    assert decision.granted
    assert decision.parcel_ids == (parcel.parcel_id,)


def test_code_in_the_sms_and_the_carrier_webhook_arrive_with_the_same_deposit(
    engine: Engine,
    deps: DomainDeps,
    deposit: Callable[[], Deposited],
    make_worker: Callable[..., NotificationWorker],
    http_receiver: HttpReceiver,
    server_keys: ServerKeys,
    clock: FakeClock,
) -> None:
    parcel = deposit()

    make_worker().run_once()

    by_path = {request.path: request for request in http_receiver.requests}
    sms_text = json.loads(by_path["/sms"].body)["text"]
    code = sms_text.split("取件码 ", 1)[1][:8]
    hook = by_path["/carrier"]
    secret = carrier_webhook_secret(server_keys, parcel.carrier_id)
    verify_webhook_signature(secret, hook.headers, hook.body, now=clock().timestamp())
    assert json.loads(hook.body)["type"] == "parcel.deposited"
    with session_scope(engine) as session:
        decision = attempt_pickup(
            session, deps, cabinet_id=parcel.cabinet_id, code=code, caller=KIOSK
        )
    assert decision.granted


def test_cancelled_pickup_message_is_never_sent_and_forgets_the_code(
    engine: Engine,
    deps: DomainDeps,
    deposit: Callable[[], Deposited],
    make_worker: Callable[..., NotificationWorker],
    mail_sink: MailSink,
    http_receiver: HttpReceiver,
) -> None:
    parcel = deposit()
    with session_scope(engine) as session:
        cancelled = cancel_pending(session, parcel_id=parcel.parcel_id, events=("pickup_ready",))
    assert cancelled == 2  # email and SMS; the carrier webhook still goes out

    make_worker().run_once()

    assert mail_sink.messages == []
    assert [request.path for request in http_receiver.requests] == ["/carrier"]
    with Session(engine) as session:
        rows = session.exec(
            select(NotificationMessage).where(NotificationMessage.event == "pickup_ready")
        ).all()
    assert {(row.status, row.sealed_secret) for row in rows} == {(Status.cancelled, None)}


def recipient_link_of(text: str, base_url: str) -> str:
    """The recipient page's link in a message text."""
    match = re.search(re.escape(base_url.rstrip("/")) + r"/p/[A-Za-z0-9_-]+", text)
    assert match, "the message carries no link to the recipient's page"
    return match.group(0)


def test_the_pickup_email_and_sms_link_to_the_recipients_page_with_the_same_qr_token(
    engine: Engine,
    live_settings: Settings,
    server_keys: ServerKeys,
    deposit: Callable[[], Deposited],
    make_worker: Callable[..., NotificationWorker],
    mail_sink: MailSink,
    http_receiver: HttpReceiver,
    clock: FakeClock,
) -> None:
    parcel = deposit()

    make_worker().run_once()

    (email,) = mail_sink.messages
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None
    assert html is not None
    link = recipient_link_of(text.get_content(), live_settings.public_base_url)
    assert f'href="{link}?lang=zh-CN"' in html.get_content()  # opens in the message's language
    sms_text = json.loads(next(r for r in http_receiver.requests if r.path == "/sms").body)["text"]
    sms_link = recipient_link_of(sms_text, live_settings.public_base_url)
    assert sms_link != link  # each message seals its own
    keys = LinkKeys.derive(server_keys.outbox_sealing_key)
    opened = open_link(keys, link.rsplit("/", 1)[1], now=clock())
    with Session(engine) as session:
        stored = session.get(Parcel, parcel.parcel_id)
        assert stored is not None
        assert stored.pickup_deadline is not None
        assert (opened.parcel_id, opened.recipient_id) == (stored.id, stored.recipient_id)
        assert opened.expires_at == link_expiry(stored.pickup_deadline)
    assert opened.qr_token == _qr_token(email)
    assert open_link(keys, sms_link.rsplit("/", 1)[1], now=clock()).qr_token == opened.qr_token
