"""The ``locker-server`` command line as operators and other tools use it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from locker_server.api.app import create_app
from locker_server.audit.models import AuditEntry
from locker_server.auth.models import ApiKey, User
from locker_server.cli import main
from locker_server.config import Settings
from locker_server.db import make_engine
from locker_server.models import Carrier
from tests.waiting import wait_until

CLI = [sys.executable, "-m", "locker_server.cli"]
PASSWORD = "a password for the night shift"


def run_cli(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def cli_env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKER_")}
    env |= {
        "LOCKER_DATA_DIR": str(tmp_path / "data"),
        "LOCKER_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    if database_url is not None:
        env["LOCKER_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def cli_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    for name, value in cli_env(tmp_path, database_url).items():
        if name.startswith("LOCKER_"):
            monkeypatch.setenv(name, value)


def test_user_create_reads_the_password_from_stdin_and_the_user_can_log_in(
    tmp_path: Path, database_url: str, settings: Settings
) -> None:
    result = run_cli(
        ["user", "create", "nina", "--role", "operator", "--password-stdin"],
        cli_env(tmp_path, database_url),
        stdin=PASSWORD + "\n",
    )

    assert result.returncode == 0, result.stderr
    assert "created user" in result.stdout
    with TestClient(create_app(settings)) as client:
        token = client.post("/api/v1/auth/token", data={"username": "nina", "password": PASSWORD})
        assert token.status_code == 200
        engine = client.app.state.engine  # type: ignore[attr-defined]
        with Session(engine) as session:
            created = session.exec(select(AuditEntry).where(AuditEntry.action == "user.created"))
            (entry,) = created.all()
    assert (entry.channel, entry.actor_type, entry.actor_id) == ("cli", "system", "cli")
    assert json.loads(entry.details)["role"] == "operator"
    assert PASSWORD not in entry.details


def test_user_create_refuses_a_short_password_and_creates_nobody(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    result = run_cli(
        ["user", "create", "ned", "--role", "admin", "--password-stdin"],
        cli_env(tmp_path, database_url),
        stdin="short\n",
    )

    assert result.returncode == 1
    assert "at least 12 characters" in result.stderr
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_password_is_never_accepted_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["user", "create", "ned", "--role", "admin", "--password", "hunter2hunter2"])

    assert code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_help_and_usage_errors_touch_neither_database_nor_keys(tmp_path: Path) -> None:
    env = cli_env(tmp_path)

    helped = run_cli(["--help"], env)
    wrong = run_cli(["user", "create", "x", "--role", "cabinet", "--password-stdin"], env)

    assert helped.returncode == 0
    for word in ("serve", "migrate", "user", "apikey"):
        assert word in helped.stdout
    assert wrong.returncode == 2
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "secrets").exists()


def test_migrate_builds_the_schema_of_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"

    result = run_cli(["migrate"], cli_env(tmp_path, url))

    assert result.returncode == 0, result.stderr
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"users", "user_sites", "api_keys", "audit_entries", "parcels"} <= tables


def test_apikey_create_prints_the_key_once_and_revoke_disables_it(
    cli_environ: None, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with Session(engine) as session:
        carrier = Carrier(name="Swift Parcels")
        session.add(carrier)
        session.commit()
        carrier_id = carrier.id

    created = main(["apikey", "create", "--carrier", str(carrier_id), "--name", "feed"])
    key = capsys.readouterr().out.strip()
    with Session(engine) as session:
        (row,) = session.exec(select(ApiKey)).all()
    revoked = main(["apikey", "revoke", str(row.id)])
    again = main(["apikey", "revoke", str(row.id)])

    assert (created, revoked, again) == (0, 0, 1)
    assert key.startswith(f"lk_{row.prefix}_")
    assert key not in row.secret_hash
    assert "already revoked" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``locker-server serve`` on a free port with the default SQLite database (and its
    embedded broker on another free port: the machine's Mosquitto holds 1883)."""
    port = _free_port()
    env = cli_env(tmp_path) | {"LOCKER_EMBEDDED_BROKER_PORT": str(_free_port())}
    with subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            yield f"http://127.0.0.1:{port}", env
        finally:
            process.send_signal(signal.SIGINT)
            _out, errors = process.communicate(timeout=20)
        assert process.returncode == 0, errors


def _wait_healthy(base_url: str, deadline_s: float = 30.0) -> httpx.Response:
    def answer() -> httpx.Response | None:
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2)
        except httpx.TransportError:
            return None  # not listening yet

    response = wait_until(answer, deadline_s, every=0.1)
    assert response is not None, f"{base_url} never answered within {deadline_s} s"
    return response


def test_serve_migrates_the_default_database_answers_and_stops_cleanly(
    served: tuple[str, dict[str, str]],
) -> None:
    base_url, env = served

    health = _wait_healthy(base_url)
    made = run_cli(
        ["user", "create", "root", "--role", "admin", "--password-stdin"], env, PASSWORD + "\n"
    )
    token = httpx.post(
        f"{base_url}/api/v1/auth/token", data={"username": "root", "password": PASSWORD}
    )

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert made.returncode == 0, made.stderr
    assert token.status_code == 200
    assert token.json()["token_type"] == "bearer"


def test_serve_ignores_x_forwarded_for_from_a_local_client(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Without LOCKER_TRUSTED_PROXIES no one may choose the address the audit log records
    (or dodge the login limit by claiming a new address for every guess)."""
    base_url, _env = served
    _wait_healthy(base_url)

    forged = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": "root", "password": "a guess at the password"},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )

    assert forged.status_code == 401
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'locker.sqlite3'}")
    with Session(engine) as session:
        query = select(AuditEntry.source).where(AuditEntry.action == "auth.login_failed")
        sources = session.exec(query).all()
    engine.dispose()
    assert sources == ["127.0.0.1"]
