"""The worker delivers each message once, retries with backoff, and leaves failures visible."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from locker_server.audit import AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.keys import ServerKeys
from locker_server.notifications import (
    NotificationMessage,
    NotificationWorker,
    RecipientContact,
    Status,
    resend,
)
from locker_server.notifications.errors import MessageNotFound, NotResendable
from locker_server.notifications.fakes import RecordingEmailTransport
from locker_server.notifications.worker import MAX_BACKOFF, backoff_delay
from tests.notifications.notification_support import CODE, FakeClock, HttpReceiver, MailSink
from tests.waiting import wait_until

Queue = Callable[[RecipientContact], list[int]]


def _row(engine: Engine, message_id: int) -> NotificationMessage:
    with Session(engine) as session:
        row = session.get(NotificationMessage, message_id)
        assert row is not None
        return row


def _sms_only(recipient: RecipientContact) -> RecipientContact:
    return RecipientContact(recipient.recipient_id, recipient.name, None, recipient.phone)


def _email_only(recipient: RecipientContact) -> RecipientContact:
    return RecipientContact(recipient.recipient_id, recipient.name, recipient.email, None)


def test_final_failure_is_audited_with_ids_and_without_the_phone_number(
    engine: Engine,
    http_receiver: HttpReceiver,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
    server_keys: ServerKeys,
) -> None:
    (message_id,) = queue_pickup(_sms_only(alice))
    http_receiver.statuses.append(400)
    audit = AuditLog(signing_key=server_keys.audit_signing_key)

    make_worker(audit=audit).run_once()

    with Session(engine) as session:
        (entry,) = session.exec(
            select(AuditEntry).where(AuditEntry.action == "notification.failed")
        ).all()
    assert (entry.actor_type, entry.channel, entry.outcome) == ("system", "worker", "failure")
    assert entry.recipient_id == alice.recipient_id
    assert entry.reason == "HTTP 400 from 127.0.0.1"
    assert f'"message_id":{message_id}' in entry.details.replace(" ", "")
    stored = repr(entry.model_dump())
    for personal in ("+33612345678", "Alice", CODE):
        assert personal not in stored


def test_operator_resends_a_failed_email_and_it_arrives_with_the_original_code(
    engine: Engine,
    mail_sink: MailSink,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
    clock: FakeClock,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    mail_sink.rcpt_replies.append("550 5.2.1 Mailbox disabled")
    worker = make_worker()
    worker.run_once()
    assert _row(engine, message_id).status == Status.failed

    clock.advance(3600)  # the recipient's mailbox is enabled again
    with Session(engine) as session:
        requeued = resend(session, message_id, clock=clock)
        assert (requeued.status, requeued.attempts) == (Status.pending, 0)
        session.commit()
    worker.run_once()

    (received,) = mail_sink.messages
    text = received.get_body(preferencelist=("plain",))
    assert isinstance(text, EmailMessage)
    assert CODE in text.get_content()
    assert _row(engine, message_id).status == Status.delivered


def test_resend_is_refused_for_delivered_and_unknown_messages(
    engine: Engine,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    make_worker(email=RecordingEmailTransport()).run_once()

    with Session(engine) as session:
        with pytest.raises(NotResendable):
            resend(session, message_id)
        with pytest.raises(MessageNotFound):
            resend(session, message_id + 1000)


class SlowEmail(RecordingEmailTransport):
    """Takes a moment per message, so two workers overlap for real."""

    #: a mail server's answer time, shrunk: long enough that both workers hold a batch
    #: at once, short enough for 30 messages to pass quickly. Pacing, not a wait.
    SEND_TIME_S = 0.002

    def send(self, message: EmailMessage) -> None:
        time.sleep(self.SEND_TIME_S)
        super().send(message)


def test_two_workers_running_together_never_send_the_same_message(
    engine: Engine,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
) -> None:
    for n in range(30):
        queue_pickup(RecipientContact(n, f"R{n}", f"r{n}@example.org", None))
    email = SlowEmail()
    workers = [make_worker(email=email, batch_size=4) for _ in range(2)]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda w=w: counts.append(w.run_once())) for w in workers]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    message_ids = [message["Message-ID"] for message in email.sent]
    assert len(message_ids) == 30
    assert len(set(message_ids)) == 30
    assert sum(counts) == 30
    with Session(engine) as session:
        statuses = set(session.exec(select(NotificationMessage.status)).all())
    assert statuses == {Status.delivered}


def test_message_left_sending_by_a_crashed_worker_is_sent_once_its_lease_runs_out(
    engine: Engine,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
    clock: FakeClock,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    with Session(engine) as session:  # what a worker killed mid-send leaves behind
        session.execute(
            update(NotificationMessage)
            .where(NotificationMessage.id == message_id)  # type: ignore[arg-type]
            .values(status=Status.sending, attempts=1, next_attempt_at=clock.now.replace(hour=10))
        )
        session.commit()
    email = RecordingEmailTransport()
    worker = make_worker(email=email)

    assert worker.run_once() == 0
    clock.advance(3600)
    assert worker.run_once() == 1

    assert len(email.sent) == 1
    assert (_row(engine, message_id).status, _row(engine, message_id).attempts) == (
        Status.delivered,
        2,
    )


def test_run_forever_delivers_until_asked_to_stop(
    engine: Engine,
    make_worker: Callable[..., NotificationWorker],
    queue_pickup: Queue,
    alice: RecipientContact,
) -> None:
    email = RecordingEmailTransport()
    worker = make_worker(email=email, poll_seconds=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run_forever, args=(stop,))
    runner.start()

    (message_id,) = queue_pickup(_email_only(alice))
    wait_until(lambda: email.sent, 10)
    stop.set()
    runner.join(timeout=10)

    assert not runner.is_alive()
    assert len(email.sent) == 1
    assert _row(engine, message_id).status == Status.delivered


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_doubles_per_attempt_with_jitter_and_a_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(30.0 * 2 ** (attempt - 1), MAX_BACKOFF.total_seconds())

    delays = [backoff_delay(attempt, 30.0, rng).total_seconds() for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 100  # jittered: parallel retries do not stampede together
