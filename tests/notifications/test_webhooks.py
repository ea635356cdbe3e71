"""Carriers receive signed webhooks with a stable id, retried until they accept them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.keys import ServerKeys, load_keys
from locker_server.notifications import (
    NotificationMessage,
    NotificationWorker,
    Notifier,
    Status,
    carrier_webhook_secret,
    verify_webhook_signature,
)
from locker_server.notifications.errors import WebhookSignatureInvalid
from locker_server.notifications.webhooks import signed_headers
from tests.notifications.notification_support import FakeClock, HttpReceiver, ReceivedRequest

CARRIER_ID = 3


def _queue_webhook(engine: Engine, notifier: Notifier, url: str) -> NotificationMessage:
    with Session(engine, expire_on_commit=False) as session:
        message = notifier.carrier_event(
            session,
            carrier_id=CARRIER_ID,
            webhook_url=url,
            event_type="parcel.deposited",
            data={"parcel_id": 11, "tracking_number": "TRK-0042", "door": "B07"},
        )
        assert message is not None
        session.commit()
        return message


def _verify(keys: ServerKeys, request: ReceivedRequest, now: datetime) -> None:
    secret = carrier_webhook_secret(keys, CARRIER_ID)
    verify_webhook_signature(secret, request.headers, request.body, now=now.timestamp())


def test_carrier_receives_a_signed_webhook_it_can_verify(
    engine: Engine,
    notifier: Notifier,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    server_keys: ServerKeys,
    clock: FakeClock,
) -> None:
    message = _queue_webhook(engine, notifier, f"{http_receiver.url}/hooks/locker")

    make_worker().run_once()

    (request,) = http_receiver.requests
    assert request.path == "/hooks/locker"
    assert request.headers["Webhook-Id"] == message.event_id
    assert request.headers["Webhook-Timestamp"] == str(int(clock().timestamp()))
    _verify(server_keys, request, clock())
    body = json.loads(request.body)
    assert body == {
        "id": message.event_id,
        "type": "parcel.deposited",
        "created_at": clock().isoformat(),
        "data": {"parcel_id": 11, "tracking_number": "TRK-0042", "door": "B07"},
    }


def test_retried_webhook_keeps_its_event_id_and_body_and_is_signed_afresh(
    engine: Engine,
    notifier: Notifier,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    server_keys: ServerKeys,
    clock: FakeClock,
) -> None:
    message = _queue_webhook(engine, notifier, f"{http_receiver.url}/hooks")
    http_receiver.statuses.extend([503, 429])
    worker = make_worker()

    for _ in range(3):
        worker.run_once()
        clock.advance(300)

    first, second, third = http_receiver.requests
    assert {r.headers["Webhook-Id"] for r in (first, second, third)} == {message.event_id}
    assert first.body == second.body == third.body
    assert first.headers["Webhook-Timestamp"] != third.headers["Webhook-Timestamp"]
    _verify(server_keys, third, clock())
    with Session(engine) as session:
        row = session.get(NotificationMessage, message.id)
        assert row is not None
        assert (row.status, row.attempts) == (Status.delivered, 3)


def test_webhook_to_an_unreachable_receiver_fails_after_the_last_attempt(
    engine: Engine,
    notifier: Notifier,
    make_worker: Callable[..., NotificationWorker],
    clock: FakeClock,
) -> None:
    message = _queue_webhook(engine, notifier, "http://127.0.0.1:9/closed-port")
    worker = make_worker()  # notification_max_attempts = 3

    attempts = 0
    for _ in range(5):
        attempts += worker.run_once()
        clock.advance(3600)

    assert attempts == 3
    with Session(engine) as session:
        row = session.get(NotificationMessage, message.id)
        assert row is not None
        assert (row.status, row.attempts) == (Status.failed, 3)
        assert row.last_error == "ConnectError from 127.0.0.1"


BODY = b'{"id":"e1","type":"parcel.deposited"}'
SECRET = b"s" * 32
NOW = 1_800_000_000


def _headers(**changes: str) -> dict[str, str]:
    return signed_headers(SECRET, "e1", BODY, NOW) | changes


def test_receiver_accepts_a_genuine_webhook_whatever_the_header_case() -> None:
    lower_case = {name.lower(): value for name, value in _headers().items()}
    verify_webhook_signature(SECRET, lower_case, BODY, now=NOW + 10)


UNSIGNED = {"Webhook-Id": "e1", "Webhook-Timestamp": str(NOW)}


@pytest.mark.parametrize(
    ("secret", "headers", "body", "now"),
    [
        pytest.param(SECRET, _headers(), BODY + b" ", NOW, id="body edited in transit"),
        pytest.param(b"t" * 32, _headers(), BODY, NOW, id="another carrier's secret"),
        pytest.param(SECRET, _headers(), BODY, NOW + 600, id="replayed ten minutes later"),
        pytest.param(
            SECRET, _headers(**{"Webhook-Id": "e2"}), BODY, NOW, id="id swapped to dodge dedup"
        ),
        pytest.param(
            SECRET, _headers(**{"Webhook-Timestamp": str(NOW + 1)}), BODY, NOW, id="time moved"
        ),
        pytest.param(SECRET, UNSIGNED, BODY, NOW, id="no signature at all"),
        pytest.param(
            SECRET, _headers(**{"Webhook-Signature": "v0=00"}), BODY, NOW, id="unknown version"
        ),
        pytest.param(
            SECRET, _headers(**{"Webhook-Timestamp": "soon"}), BODY, NOW, id="time not a number"
        ),
    ],
)
def test_receiver_rejects_a_webhook_that_is_not_genuine(
    secret: bytes, headers: dict[str, str], body: bytes, now: int
) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook_signature(secret, headers, body, now=now)


def test_each_carrier_has_its_own_secret_derived_from_the_key_files(
    server_keys: ServerKeys, tmp_path: Path
) -> None:
    again = load_keys(tmp_path / "secrets")  # the directory server_keys came from
    assert carrier_webhook_secret(server_keys, 1) == carrier_webhook_secret(again, 1)
    assert carrier_webhook_secret(server_keys, 1) != carrier_webhook_secret(server_keys, 2)
    assert len(carrier_webhook_secret(server_keys, 1)) == 32
