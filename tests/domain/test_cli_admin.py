"""Operators set up an installation from the command line; every change is audited as "cli"."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.audit.models import AuditEntry
from locker_server.cli import main
from locker_server.models import Courier, Door


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKER_DATABASE_URL", database_url)
    monkeypatch.setenv("LOCKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOCKER_SECRETS_DIR", str(tmp_path / "secrets"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("cli_env")
def test_operator_builds_a_cabinet_from_the_command_line_and_each_change_is_audited(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "site", "add", "Head office", "--timezone", "Asia/Shanghai")[0] == 0
    assert run(capsys, "cabinet", "add", "1", "LOBBY-01", "--name", "Lobby")[0] == 0
    assert (
        run(
            capsys,
            "door",
            "add-range",
            "1",
            "--from",
            "1",
            "--to",
            "4",
            "--size",
            "M",
            "--board",
            "1",
            "--first-lock",
            "1",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "door",
            "add",
            "1",
            "--number",
            "5",
            "--size",
            "L",
            "--board",
            "1",
            "--lock",
            "5",
            "--accessible",
        )[0]
        == 0
    )
    assert run(capsys, "door", "out-of-service", "2", "--reason", "hinge broken")[0] == 0
    code, listing, _ = run(capsys, "door", "list", "1")
    assert code == 0
    lines = listing.splitlines()
    assert len(lines) == 5
    assert "out_of_service" in lines[1]
    assert lines[4].endswith("accessible")
    assert run(capsys, "carrier", "add", "SwiftPost")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("73915546\n"))
    assert run(capsys, "courier", "add", "1", "Li Wei", "--code-stdin")[0] == 0
    assert run(capsys, "recipient", "add", "Alice", "--email", "a@example.org", "--consent")[0] == 0
    with Session(engine) as session:
        doors = session.exec(select(Door).order_by(Door.number)).all()  # type: ignore[arg-type]
        assert [(d.number, d.lock, d.accessible_height) for d in doors][-2:] == [
            (4, 4, False),
            (5, 5, True),
        ]
        courier = session.exec(select(Courier)).one()
        assert "73915546" not in courier.code_hash
        entries = session.exec(select(AuditEntry)).all()
    assert {e.channel for e in entries} == {"cli"}
    assert [e.action for e in entries].count("config.door_created") == 5
    assert "config.door_updated" in [e.action for e in entries]


@pytest.mark.usefixtures("cli_env")
def test_a_cabinet_code_that_would_break_topics_is_refused_with_the_field_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "site", "add", "HQ")[0] == 0
    code, _, err = run(capsys, "cabinet", "add", "1", "bad/code", "--name", "x")
    assert code == 1
    assert "code:" in err


@pytest.mark.usefixtures("cli_env")
def test_the_sweep_reports_what_it_did(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parcel", "sweep")
    assert (code, out.strip()) == (0, "released 0, reminded 0, expired 0")
