"""SMS goes through the pluggable HTTP gateway, here a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.notifications import (
    Channel,
    NotificationMessage,
    NotificationWorker,
    RecipientContact,
    Status,
)
from locker_server.notifications.fakes import RecordingEmailTransport
from tests.notifications.notification_support import CODE, SMS_TOKEN, FakeClock, HttpReceiver

Queue = Callable[[RecipientContact], list[int]]


def _sms_only(recipient: RecipientContact) -> RecipientContact:
    return RecipientContact(
        recipient.recipient_id, recipient.name, None, recipient.phone, recipient.language
    )


def _row(engine: Engine, message_id: int) -> NotificationMessage:
    with Session(engine) as session:
        row = session.get(NotificationMessage, message_id)
        assert row is not None
        return row


def test_recipient_gets_the_pickup_code_by_sms_through_the_gateway(
    engine: Engine,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
) -> None:
    (message_id,) = queue_pickup(_sms_only(alice))

    assert make_worker().run_once() == 1

    (request,) = http_receiver.requests
    assert request.path == "/sms"
    assert request.headers["Authorization"] == f"Bearer {SMS_TOKEN}"
    payload = json.loads(request.body)
    assert payload["to"] == "+33612345678"
    assert f"Pickup code {CODE}" in payload["text"]
    assert "door B07" in payload["text"]
    row = _row(engine, message_id)
    assert (row.kind, row.status, row.sealed_secret) == (Channel.sms, Status.delivered, None)


def test_chinese_sms_names_the_door_and_the_code(
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    wang: RecipientContact,
) -> None:
    queue_pickup(_sms_only(wang))

    make_worker().run_once()

    text = json.loads(http_receiver.requests[0].body)["text"]
    assert text.startswith("【智能快递柜】")
    assert f"取件码 {CODE}" in text
    assert "B07号格口" in text


def test_gateway_error_500_is_retried_and_the_sms_goes_out_on_the_next_attempt(
    engine: Engine,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
    clock: FakeClock,
) -> None:
    (message_id,) = queue_pickup(_sms_only(alice))
    http_receiver.statuses.append(500)
    worker = make_worker()

    worker.run_once()
    waiting = _row(engine, message_id)
    assert (waiting.status, waiting.last_error) == (Status.pending, "HTTP 500 from 127.0.0.1")
    clock.advance(60)
    worker.run_once()

    assert len(http_receiver.requests) == 2
    assert http_receiver.requests[0].body == http_receiver.requests[1].body
    done = _row(engine, message_id)
    assert (done.status, done.attempts) == (Status.delivered, 2)


def test_gateway_refusing_the_request_with_400_fails_the_sms_without_retrying(
    engine: Engine,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
    clock: FakeClock,
) -> None:
    (message_id,) = queue_pickup(_sms_only(alice))
    http_receiver.statuses.append(400)
    worker = make_worker()

    worker.run_once()
    clock.advance(24 * 3600)
    assert worker.run_once() == 0

    failed = _row(engine, message_id)
    assert (failed.status, failed.attempts) == (Status.failed, 1)
    assert failed.last_error == "HTTP 400 from 127.0.0.1"
    assert len(http_receiver.requests) == 1


def test_email_and_sms_of_one_recipient_are_delivered_independently(
    engine: Engine,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
) -> None:
    email_id, sms_id = queue_pickup(alice)
    http_receiver.statuses.append(400)
    email = RecordingEmailTransport()

    make_worker(email=email).run_once()

    assert _row(engine, email_id).status == Status.delivered
    assert _row(engine, sms_id).status == Status.failed
    assert len(email.sent) == 1
