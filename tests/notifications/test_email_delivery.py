"""Recipients get a real email, through a real SMTP server, whose QR code really scans."""

from __future__ import annotations

import io
from collections.abc import Callable
from email.message import EmailMessage

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session

from locker_contract.pickup_qr import parse_pickup_qr
from locker_server.notifications import (
    NotificationMessage,
    NotificationWorker,
    RecipientContact,
    Status,
)
from locker_server.notifications.mail import QR_FILENAME
from tests.notifications.notification_support import CODE, QR_TOKEN, FakeClock, MailSink

EmailOnly = Callable[[RecipientContact], list[int]]


def _email_only(recipient: RecipientContact) -> RecipientContact:
    return RecipientContact(
        recipient.recipient_id, recipient.name, recipient.email, None, recipient.language
    )


def _row(engine: Engine, message_id: int) -> NotificationMessage:
    with Session(engine) as session:
        row = session.get(NotificationMessage, message_id)
        assert row is not None
        return row


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def _qr_payloads(message: EmailMessage) -> list[str]:
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert [p.get_filename() for p in images] == [QR_FILENAME]
    png = images[0].get_payload(decode=True)
    assert isinstance(png, bytes)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    # the symbol carries the contract's checked payload; the cabinet reads the token from it
    return [parse_pickup_qr(barcode.text) or f"not ours: {barcode.text}" for barcode in found]


def test_recipient_gets_an_email_with_the_code_and_a_qr_png_that_scans_to_the_token(
    engine: Engine,
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: EmailOnly,
    alice: RecipientContact,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))

    assert make_worker().run_once() == 1

    (received,) = mail_sink.messages
    assert received["To"] == "alice@example.org"
    assert received["Subject"] == "Your parcel is ready for pickup at Library lobby"
    assert CODE in _body(received, "plain")
    assert CODE in _body(received, "html")
    assert "Sunday 29 November 2026, 11:00 (Europe/Paris)" in _body(received, "plain")
    assert _qr_payloads(received) == [QR_TOKEN]
    row = _row(engine, message_id)
    assert received["Message-ID"] == f"<{row.event_id}@campus.example>"
    assert (row.status, row.attempts, row.sealed_secret) == (Status.delivered, 1, None)
    assert row.delivered_at is not None


def test_chinese_speaking_recipient_gets_the_email_in_chinese(
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: EmailOnly,
    wang: RecipientContact,
) -> None:
    queue_pickup(_email_only(wang))

    make_worker().run_once()

    (received,) = mail_sink.messages
    assert received["Subject"] == "您的包裹已存入Library lobby快递柜，请及时取件"
    text = _body(received, "plain")
    assert f"取件码：  {CODE}" in text
    assert "2026年11月29日（星期日）11:00（Europe/Paris 时间）前" in text
    assert _qr_payloads(received) == [QR_TOKEN]


def test_greylisting_mail_server_gets_the_same_message_again_after_a_backoff(
    engine: Engine,
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: EmailOnly,
    alice: RecipientContact,
    clock: FakeClock,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    mail_sink.rcpt_replies.append("451 4.7.1 Greylisted, please try again later")
    worker = make_worker()

    worker.run_once()
    waiting = _row(engine, message_id)
    assert (waiting.status, waiting.attempts) == (Status.pending, 1)
    assert waiting.last_error == "SMTP recipient refused: 451 4.7.1"
    delay = (waiting.next_attempt_at - clock()).total_seconds()
    assert 15 <= delay <= 30  # backoff base 30 s, jittered into its upper half
    assert worker.run_once() == 0  # not due yet

    clock.advance(delay)
    assert worker.run_once() == 1
    (received,) = mail_sink.messages
    assert received["Message-ID"] == f"<{waiting.event_id}@campus.example>"
    assert _row(engine, message_id).status == Status.delivered


def test_mailbox_that_does_not_exist_fails_at_once_and_keeps_the_code_for_a_resend(
    engine: Engine,
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: EmailOnly,
    alice: RecipientContact,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    mail_sink.rcpt_replies.append("550 5.1.1 <alice@example.org>: Recipient address rejected")

    make_worker().run_once()

    failed = _row(engine, message_id)
    assert (failed.status, failed.attempts) == (Status.failed, 1)
    assert failed.last_error == "SMTP recipient refused: 550 5.1.1"
    assert failed.sealed_secret is not None
    assert mail_sink.messages == []


@pytest.mark.parametrize("address", ["a@b@c", "no-at-sign", "张@例子.中国"])
def test_malformed_email_address_fails_at_once_without_troubling_the_server(
    engine: Engine,
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: EmailOnly,
    address: str,
) -> None:
    (message_id,) = queue_pickup(RecipientContact(9, "Typo", address, None))

    make_worker().run_once()

    failed = _row(engine, message_id)
    assert (failed.status, failed.attempts) == (Status.failed, 1)
    assert failed.last_error == "malformed email address"
    assert mail_sink.messages == []
