"""Fixtures of the notification tests: real SMTP and HTTP servers, a clock we move by hand.

The SMTP server is aiosmtpd on a free local port; the SMS gateway and the carriers'
webhook receivers are a stdlib HTTP server in a thread. Both can be told how to answer
the next requests, so retries and refusals are real protocol exchanges.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.notifications import NotificationWorker, Notifier, RecipientContact
from tests.notifications.notification_support import (
    CODE,
    QR_TOKEN,
    SMS_TOKEN,
    FakeClock,
    HttpReceiver,
    MailSink,
    free_port,
    handler_for,
)


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sms_settings(settings: Settings) -> Settings:
    """Settings with an SMS gateway configured (tests that send point it at a receiver)."""
    return settings.model_copy(
        update={
            "sms_gateway_url": "http://127.0.0.1:9/sms",
            "sms_gateway_token": SecretStr(SMS_TOKEN),
        }
    )


@pytest.fixture
def live_settings(settings: Settings, mail_sink: MailSink, http_receiver: HttpReceiver) -> Settings:
    """Settings pointing at the local SMTP server and the local SMS gateway."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mail_sink.port,
            "smtp_sender": "Parcel lockers <lockers@campus.example>",
            "sms_gateway_url": f"{http_receiver.url}/sms",
            "sms_gateway_token": SecretStr(SMS_TOKEN),
            "notification_max_attempts": 3,
            "notification_backoff_seconds": 30.0,
            "notification_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def notifier(sms_settings: Settings, server_keys: ServerKeys, clock: FakeClock) -> Notifier:
    return Notifier(settings=sms_settings, keys=server_keys, clock=clock)


@pytest.fixture
def make_worker(
    engine: Engine, live_settings: Settings, server_keys: ServerKeys, clock: FakeClock
) -> Callable[..., NotificationWorker]:
    def make(**overrides: Any) -> NotificationWorker:
        return NotificationWorker(engine, live_settings, server_keys, clock=clock, **overrides)

    return make


@pytest.fixture
def alice() -> RecipientContact:
    return RecipientContact(
        recipient_id=7,
        name="Alice Martin",
        email="alice@example.org",
        phone="+33612345678",
        language="en",
    )


@pytest.fixture
def wang() -> RecipientContact:
    return RecipientContact(
        recipient_id=8,
        name="王小明",
        email="xiaoming.wang@example.cn",
        phone="+8613800138000",
        language="zh-CN",
    )


@pytest.fixture
def expires_at() -> datetime:
    return datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def queue_pickup(
    engine: Engine, notifier: Notifier, expires_at: datetime
) -> Callable[[RecipientContact], list[int]]:
    """Commit a pickup-ready notification for a recipient; return the message ids."""

    def queue(recipient: RecipientContact) -> list[int]:
        with Session(engine) as session:
            messages = notifier.pickup_ready(
                session,
                parcel_id=None,  # type: ignore[arg-type]  # the outbox needs no parcel row
                recipient=recipient,
                site_name="North campus",
                cabinet_name="Library lobby",
                door_label="B07",
                code=CODE,
                qr_token=QR_TOKEN,
                expires_at=expires_at,
                site_timezone="Europe/Paris",
            )
            session.commit()
            return [m.id for m in messages if m.id is not None]

    return queue
