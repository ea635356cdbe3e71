"""Fixtures of the link security tests: the ``locker-server`` CLI on a fresh database."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from locker_server.broker.cli import BROKER_DIR_ENV
from locker_server.cli import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


class LockerCli:
    """Runs ``locker-server`` in-process against the test's database and directories."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> CliResult:
        self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self._capsys.readouterr()
        code = main(list(args))
        captured = self._capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def ok(self, *args: str, stdin: str = "") -> CliResult:
        result = self(*args, stdin=stdin)
        assert result.code == 0, result.err
        return result


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def locker_cli(
    tmp_path: Path,
    database_url: str,
    broker_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> LockerCli:
    monkeypatch.setenv("LOCKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOCKER_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("LOCKER_DATABASE_URL", database_url)
    monkeypatch.setenv(BROKER_DIR_ENV, str(broker_dir))
    return LockerCli(capsys, monkeypatch)


@pytest.fixture
def installation(locker_cli: LockerCli) -> LockerCli:
    """One site with cabinets CAB-A (doors 1-4 on board 1) and CAB-B (doors 1-2, board 2)."""
    locker_cli.ok("site", "add", "Head office")
    locker_cli.ok("cabinet", "add", "1", "CAB-A", "--name", "Lobby")
    locker_cli.ok("cabinet", "add", "1", "CAB-B", "--name", "Garage")
    door_range = ("--size", "M", "--first-lock", "1")
    locker_cli.ok("door", "add-range", "1", "--from", "1", "--to", "4", "--board", "1", *door_range)
    locker_cli.ok("door", "add-range", "2", "--from", "1", "--to", "2", "--board", "2", *door_range)
    return locker_cli
