"""``locker-agent run``: a bad configuration stops the start with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from locker_agent.cli import EXIT_USAGE, main
from tests.agent_link.rig import Signer, agent_document, write_agent_toml


def test_run_refuses_a_config_with_an_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = agent_document("CLI-01", tmp_path / "j.sqlite3", Signer("CLI-01").public_key)
    document["brokr"] = {"host": "typo"}
    config = write_agent_toml(tmp_path / "agent.toml", document)

    assert main(["run", "--config", str(config)]) == EXIT_USAGE
    assert "brokr: unknown key" in capsys.readouterr().err


def test_run_without_a_serial_port_names_the_setting_and_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = agent_document("CLI-02", tmp_path / "j.sqlite3", Signer("CLI-02").public_key)
    config = write_agent_toml(tmp_path / "agent.toml", document)  # port left "CHANGE-ME"

    assert main(["run", "--config", str(config)]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "[serial] port" in error
    assert "--serial-port" in error
    assert not (tmp_path / "j.sqlite3").exists()  # refused before anything was created
