"""``locker-server notifications``: the worker, the failed list and resend from a shell."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.audit.models import AuditEntry
from locker_server.cli import main
from locker_server.config import Settings
from locker_server.notifications import NotificationMessage, RecipientContact, Status
from tests.notifications.notification_support import CODE, FakeClock, MailSink

Queue = Callable[[RecipientContact], list[int]]


@pytest.fixture
def clock() -> FakeClock:
    """Messages are queued at real time: the CLI's worker runs on the real clock."""
    real = FakeClock()
    real.now = datetime.now(UTC) - timedelta(seconds=1)
    return real


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, live_settings: Settings) -> Settings:
    """The CLI reads LOCKER_* variables: point them at this test's database and servers."""
    variables = {
        "LOCKER_DATA_DIR": str(live_settings.data_dir),
        "LOCKER_DATABASE_URL": live_settings.resolved_database_url,
        "LOCKER_SECRETS_DIR": str(live_settings.resolved_secrets_dir),
        "LOCKER_SMTP_HOST": live_settings.smtp_host,
        "LOCKER_SMTP_PORT": str(live_settings.smtp_port),
        "LOCKER_SMTP_SENDER": live_settings.smtp_sender,
        "LOCKER_SMS_GATEWAY_URL": str(live_settings.sms_gateway_url),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return live_settings


def _email_only(recipient: RecipientContact) -> RecipientContact:
    return RecipientContact(recipient.recipient_id, recipient.name, recipient.email, None)


def _status(engine: Engine, message_id: int) -> str:
    with Session(engine) as session:
        row = session.get(NotificationMessage, message_id)
        assert row is not None
        return row.status


def test_run_worker_once_delivers_what_is_queued(
    cli_env: Settings,
    engine: Engine,
    mail_sink: MailSink,
    queue_pickup: Queue,
    alice: RecipientContact,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))

    assert main(["notifications", "run-worker", "--once"]) == 0

    assert capsys.readouterr().out == "1 delivery attempts\n"
    assert len(mail_sink.messages) == 1
    assert _status(engine, message_id) == Status.delivered


def test_operator_finds_a_failed_email_in_the_list_and_resends_it(
    cli_env: Settings,
    engine: Engine,
    mail_sink: MailSink,
    queue_pickup: Queue,
    alice: RecipientContact,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    mail_sink.rcpt_replies.append("550 5.1.1 User unknown")
    main(["notifications", "run-worker", "--once"])
    capsys.readouterr()

    assert main(["notifications", "list", "--failed"]) == 0
    listed = capsys.readouterr().out
    assert main(["notifications", "resend", str(message_id)]) == 0
    assert main(["notifications", "run-worker", "--once"]) == 0

    assert f"{message_id:>6} failed" in listed
    assert "a***@example.org" in listed
    assert "SMTP recipient refused: 550 5.1.1" in listed
    assert "alice@example.org" not in listed
    assert CODE not in listed
    assert len(mail_sink.messages) == 1
    assert _status(engine, message_id) == Status.delivered
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert {"notification.failed", "notification.resent"} <= set(actions)


def test_resending_a_message_that_does_not_exist_fails_with_exit_code_1(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notifications", "resend", "999"]) == 1
    assert "notification 999 not found" in capsys.readouterr().err


def test_run_worker_delivers_until_it_is_told_to_stop(
    cli_env: Settings,
    engine: Engine,
    mail_sink: MailSink,
    queue_pickup: Queue,
    alice: RecipientContact,
) -> None:
    (message_id,) = queue_pickup(_email_only(alice))
    before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    stopper.start()

    assert main(["notifications", "run-worker", "--poll", "0.05"]) == 0

    stopper.join()
    assert _status(engine, message_id) == Status.delivered
    assert signal.getsignal(signal.SIGTERM) is before  # the shell's handler is back
