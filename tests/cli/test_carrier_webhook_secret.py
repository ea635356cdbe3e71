"""An admin hands a carrier its webhook secret from the command line; the carrier checks
a real webhook with it, using the Python example of docs/notifications.md."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_server.audit import AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.cli import main
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import load_keys
from locker_server.notifications import Notifier
from locker_server.notifications.fakes import RecordingWebhookPoster
from locker_server.notifications.worker import NotificationWorker

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
HOOK_URL = "https://hooks.swiftpost.example/lockers"


@pytest.fixture
def cli_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("LOCKER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("LOCKER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LOCKER_SECRETS_DIR", str(settings.resolved_secrets_dir))
    return settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _documented_verify() -> Any:
    """The ``verify`` function of the docs' webhook section, exactly as a carrier copies it."""
    section = DOCS.read_text("utf-8").split("## Webhook signatures", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the webhook section lost its Python example"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # our own documentation, run as written
    return namespace["verify"]


def _deliver_one_webhook(
    settings: Settings, engine: Engine, carrier_id: int
) -> RecordingWebhookPoster:
    """Queue a carrier event and let the real notification worker sign and post it."""
    keys = load_keys(settings.resolved_secrets_dir)
    with session_scope(engine) as session:
        Notifier(settings=settings, keys=keys).carrier_event(
            session,
            carrier_id=carrier_id,
            webhook_url=HOOK_URL,
            event_type="parcel.deposited",
            data={"parcel_id": 7, "tracking": "SP123"},
        )
    poster = RecordingWebhookPoster()
    audit = AuditLog.for_server(settings, keys)
    NotificationWorker(engine, settings, keys, webhooks=poster, audit=audit).run_once()
    return poster


def _entries(engine: Engine, action: str) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def test_admin_shows_a_carrier_its_secret_and_a_real_webhook_verifies_with_the_docs_example(
    cli_settings: Settings,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert run(capsys, "carrier", "add", "SwiftPost", "--webhook-url", HOOK_URL)[0] == 0
    caplog.set_level(logging.DEBUG)

    code, out, err = run(capsys, "carrier", "webhook-secret", "1")

    secret_hex = out.strip()
    assert code == 0
    assert re.fullmatch(r"[0-9a-f]{64}", secret_hex)
    assert "carrier 1" in err
    assert secret_hex not in err
    assert secret_hex not in caplog.text
    poster = _deliver_one_webhook(cli_settings, engine, carrier_id=1)
    ((url, headers, body),) = poster.sent
    assert url == HOOK_URL
    _documented_verify()(secret_hex, headers, body)  # raises if the docs or the secret lie
    with pytest.raises(ValueError, match="bad signature"):
        _documented_verify()(secret_hex, headers, body.replace(b"SP123", b"SP124"))


def test_showing_the_secret_is_audited_without_the_secret(
    cli_settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "carrier", "add", "SwiftPost")[0] == 0
    assert run(capsys, "carrier", "add", "Northwind")[0] == 0

    first = run(capsys, "carrier", "webhook-secret", "1")[1].strip()
    second = run(capsys, "carrier", "webhook-secret", "2")[1].strip()

    assert first != second  # one secret per carrier
    viewed = _entries(engine, "carrier.webhook_secret_viewed")
    assert [json.loads(entry.details) for entry in viewed] == [
        {"carrier_id": 1},
        {"carrier_id": 2},
    ]
    assert {(e.actor_type, e.actor_id, e.channel, e.outcome) for e in viewed} == {
        ("system", "cli", "cli", "success")
    }
    with Session(engine) as session:
        for entry in session.exec(select(AuditEntry)).all():
            assert first not in entry.model_dump_json()
            assert second not in entry.model_dump_json()


def test_an_unknown_carrier_gets_a_clear_error_and_no_secret(
    cli_settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "carrier", "webhook-secret", "99")

    assert code == 1
    assert out == ""
    assert err.strip() == "error: carrier 99 not found"
    assert _entries(engine, "carrier.webhook_secret_viewed") == []
