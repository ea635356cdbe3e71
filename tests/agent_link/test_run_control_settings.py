"""``locker-agent run`` takes its door tuning and open limits from agent.toml ``[control]``.

The production entry point runs as its own process on a simulated board's pty and talks
to the machine's Mosquitto; the test plays the server with signed commands.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker_contract import topics
from simulators.bus import SimulatedBus
from tests.agent_link.conftest import ObserverFactory
from tests.agent_link.rig import ServerStandIn, Signer, agent_document, start_bus, write_agent_toml

CONTROL = {
    "poll_interval": 0.05,
    "confirm_window": 0.6,
    "unanswered_poll_interval": 0.2,
    "max_opens_per_door": 1,
    "max_remote_opens_per_minute": 3,
}
SERIAL_TIMEOUTS = {"unlock_timeout": 0.3, "query_timeout": 0.15}


@pytest.fixture
def bus_and_port() -> Iterator[tuple[SimulatedBus, str]]:
    bus, port = start_bus()
    yield bus, port
    bus.stop()


def run_agent(config: Path, serial_port: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "locker_agent.cli", "run", "--config", str(config)]
    return subprocess.Popen([*command, "--serial-port", serial_port], stderr=subprocess.DEVNULL)


def test_locker_agent_run_limits_opens_per_door_and_per_cabinet_as_agent_toml_says(
    cabinet_id: str,
    tmp_path: Path,
    observe: ObserverFactory,
    bus_and_port: tuple[SimulatedBus, str],
) -> None:
    bus, port = bus_and_port
    signer = Signer(cabinet_id)
    document = agent_document(cabinet_id, tmp_path / "journal.sqlite3", signer.public_key)
    document["control"] = CONTROL
    document["serial"].update(SERIAL_TIMEOUTS)
    config = write_agent_toml(tmp_path / "agent.toml", document)
    server = ServerStandIn(observe(), cabinet_id)

    def open_door(door: int) -> str:
        command_id, payload = signer.command("open_door", door=door)
        server.client.publish(topics.cmd(cabinet_id), payload)
        server.result(command_id)
        return command_id

    agent = run_agent(config, port)
    try:
        assert server.wait(lambda s: s.presences and s.presences[-1].status == "online", 10)
        first = open_door(1)
        bus.board(1).door(1).close()
        again = open_door(1)  # the guard lets it through; the door's budget of 1 refuses it
        other = open_door(2)  # the cabinet's 3rd remote open this minute
        fourth = open_door(3)  # over the cabinet's budget of 3: the guard refuses it
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=10) == 0

    assert server.statuses(first) == ["received", "succeeded"]
    assert server.statuses(again) == ["received", "rejected"]
    assert server.statuses(other) == ["received", "succeeded"]
    assert server.statuses(fourth) == ["rejected"]  # refused before any door action
    assert server.result(fourth).reason == server.result(again).reason == "rate_limited"
    assert [bus.board(1).door(n).unlock_pulses for n in (1, 2, 3)] == [1, 1, 0]
