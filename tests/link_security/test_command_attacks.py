"""An attacker who can publish on the broker never opens a door.

The whole path is real: cabinets provisioned with ``locker-server cabinet provision``, the
private Mosquitto started from ``locker-server broker-config`` (TLS + ACLs), the agent
runtime on simulated boards behind a pty. The attacker publishes straight onto the broker
with the SERVER's broker account (stolen) or with cabinet A's credential (a compromised
cabinet). Every forged, replayed, expired or re-targeted command must leave every latch
untouched (``unlock_pulses``) and come back as a ``rejected`` cmd/res with its reason;
what the broker itself refuses is in the broker's log.
"""

from __future__ import annotations

import queue
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_agent.config import parse_settings
from locker_agent.doors import ControllerSettings
from locker_agent.runtime import AgentRuntime
from locker_agent.serial_link import LinkSettings
from locker_contract import (
    CommandResult,
    CommandResultMessage,
    UnsignedCommand,
    decode,
    encode,
    key_id_of,
    new_envelope,
    new_message_id,
    sign_command,
    topics,
)
from locker_server.keys import load_keys
from simulators.bus import BoardConfig, SimulatedBus, Timing
from simulators.mosquitto import PrivateMosquitto
from tests.link_security.conftest import LockerCli
from tests.link_support.clients import TestClient, connect
from tests.waiting import wait_until

FAST_LINK = LinkSettings(
    baudrate=9600,
    unlock_timeout=0.3,
    query_timeout=0.15,
    settle_after_error=0.04,
    late_reply_horizon=0.6,
)
FAST_CONTROL = ControllerSettings(
    poll_interval=0.05, confirm_window=0.6, left_open_after=30.0, unanswered_poll_interval=0.2
)
#: the installation fixture's cabinets: CAB-A doors 1-4 on board 1, CAB-B doors 1-2 on board 2
BOARDS = {"CAB-A": BoardConfig(1, 4), "CAB-B": BoardConfig(2, 2)}


@dataclass
class Cabinet:
    bus: SimulatedBus
    runtime: AgentRuntime
    password: str
    board: int

    def unlock_pulses(self) -> int:
        return sum(door.unlock_pulses for door in self.bus.board(self.board).doors)


@dataclass
class Signer:
    """Builds cmd payloads as the server does, signed with ``key``."""

    key: Ed25519PrivateKey
    counter: int = 1000

    def command(
        self,
        target: str,
        *,
        door: int = 1,
        issued_ago: float = 0.0,
        claimed_key: Ed25519PrivateKey | None = None,
    ) -> tuple[str, bytes]:
        self.counter += 1
        issued = datetime.now(UTC) - timedelta(seconds=issued_ago)
        body = UnsignedCommand(
            command_id=new_message_id(),
            counter=self.counter,
            issued_at=issued,
            expires_at=issued + timedelta(seconds=60),
            action="open_door",
            door=door,
            reason="attack test",
            maintenance_token=None,
            key_id=key_id_of(self.key.public_key()),
        )
        envelope = sign_command(new_envelope(target, body, sent_at=issued), self.key)
        if claimed_key is not None:  # a forger names the trusted key but cannot sign with it
            claimed = key_id_of(claimed_key.public_key())
            forged = envelope.body.model_copy(update={"key_id": claimed})
            envelope = envelope.model_copy(update={"body": forged})
        return body.command_id, encode(envelope)


@dataclass
class Rig:
    broker: PrivateMosquitto
    attacker: TestClient  # connected with the server's broker account
    cabinets: dict[str, Cabinet]
    server_signer: Signer
    results: list[CommandResult] = field(default_factory=list)

    def send(self, target_topic: str, payload: bytes) -> None:
        self.attacker.publish(target_topic, payload)

    def final_result(self, command_id: str, timeout: float = 5.0) -> CommandResult:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for result in self.results:
                if result.command_id == command_id and result.status != "received":
                    return result
            self._collect(deadline)
        raise AssertionError(f"no final cmd/res for {command_id}")

    def _collect(self, deadline: float) -> None:
        try:
            message = self.attacker.next_message(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return
        if message.topic.endswith("/cmd/res"):
            self.results.append(decode(message.payload, CommandResultMessage).body)


def _start_cabinet(
    cabinet_id: str, agent_dir: Path, broker: PrivateMosquitto, tmp_path: Path
) -> Cabinet:
    document = tomllib.loads((agent_dir / "agent.toml").read_text())
    bus = SimulatedBus("8a80", [BOARDS[cabinet_id]], Timing.fast())
    document["serial"]["port"] = bus.start_pty()
    document["broker"]["port"] = broker.tls_port
    document["journal"]["path"] = str(tmp_path / f"{cabinet_id}.journal.sqlite3")
    settings = parse_settings(document, base_dir=agent_dir)
    runtime = AgentRuntime(settings, link_settings=FAST_LINK, controller_settings=FAST_CONTROL)
    password = settings.broker.password.get_secret_value()
    return Cabinet(bus, runtime.start(), password, BOARDS[cabinet_id].address)


@pytest.fixture
def rig(installation: LockerCli, tmp_path: Path, broker_dir: Path) -> Iterator[Rig]:
    for cabinet_id in BOARDS:
        installation.ok("cabinet", "provision", cabinet_id, "--out", str(tmp_path / cabinet_id))
    installation.ok("broker-config", "--out", str(broker_dir))
    keys = load_keys(tmp_path / "secrets")
    with PrivateMosquitto(broker_dir) as broker:
        account = broker.server_credentials
        cabinets: dict[str, Cabinet] = {}
        try:
            for cabinet_id in BOARDS:
                cabinets[cabinet_id] = _start_cabinet(
                    cabinet_id, tmp_path / cabinet_id, broker, tmp_path
                )
            with connect(broker, account.username, account.password) as attacker:
                attacker.subscribe("lockers/v1/+/cmd/res")
                _wait_until_subscribed(cabinets)
                yield Rig(broker, attacker, cabinets, Signer(keys.command_signing_key))
        finally:
            for cabinet in cabinets.values():
                cabinet.runtime.stop()
                cabinet.bus.stop()


def _wait_until_subscribed(cabinets: dict[str, Cabinet], timeout: float = 10.0) -> None:
    for cabinet_id, cabinet in cabinets.items():
        # connected, and every SUBSCRIBE acknowledged
        assert cabinet.runtime.link.wait_connected(timeout), f"{cabinet_id} did not connect"


def test_command_signed_with_an_attackers_key_is_rejected_and_opens_nothing(rig: Rig) -> None:
    attacker_key = Ed25519PrivateKey.generate()
    impostor = Signer(attacker_key)
    cmd_a = topics.cmd("CAB-A")
    claims_server_key, payload = impostor.command("CAB-A", claimed_key=rig.server_signer.key)
    rig.send(cmd_a, payload)
    own_key, payload = impostor.command("CAB-A", door=2)
    rig.send(cmd_a, payload)

    assert rig.final_result(claims_server_key).reason == "bad_signature"
    assert rig.final_result(own_key).reason == "unknown_key"
    assert rig.final_result(own_key).status == "rejected"
    assert rig.cabinets["CAB-A"].unlock_pulses() == 0


def test_replayed_command_is_rejected_and_the_door_opened_only_once(rig: Rig) -> None:
    command_id, payload = rig.server_signer.command("CAB-A", door=3)
    rig.send(topics.cmd("CAB-A"), payload)
    assert rig.final_result(command_id).status == "succeeded"  # control: the real one works
    rig.results.clear()

    rig.send(topics.cmd("CAB-A"), payload)  # the attacker recorded it and plays it again

    replay = rig.final_result(command_id)
    assert replay.status == "rejected"
    assert replay.reason in {"replayed_counter", "duplicate_command"}
    assert rig.cabinets["CAB-A"].unlock_pulses() == 1


def test_expired_command_is_rejected_and_opens_nothing(rig: Rig) -> None:
    command_id, payload = rig.server_signer.command("CAB-A", issued_ago=120)

    rig.send(topics.cmd("CAB-A"), payload)

    result = rig.final_result(command_id)
    assert result.status in {"rejected", "expired"}  # the contract has a status of its own
    assert result.reason == "expired"
    assert rig.cabinets["CAB-A"].unlock_pulses() == 0


def test_command_for_cabinet_b_retargeted_onto_cabinet_a_is_rejected(rig: Rig) -> None:
    command_id, payload = rig.server_signer.command("CAB-B", door=1)

    rig.send(topics.cmd("CAB-A"), payload)

    result = rig.final_result(command_id)
    assert (result.status, result.reason) == ("rejected", "wrong_cabinet")
    assert rig.cabinets["CAB-A"].unlock_pulses() == 0
    assert rig.cabinets["CAB-B"].unlock_pulses() == 0


def test_compromised_cabinet_a_cannot_put_even_a_valid_command_on_bs_topic(rig: Rig) -> None:
    command_id, payload = rig.server_signer.command("CAB-B", door=2)
    cabinet_a = rig.cabinets["CAB-A"]
    with connect(rig.broker, "CAB-A", cabinet_a.password, client_id="CAB-A-shell") as stolen:
        stolen.publish(topics.cmd("CAB-B"), payload)

    # the broker replaced the shell's client id with the username it logged in with
    assert wait_until(lambda: "Denied PUBLISH from CAB-A (" in rig.broker.log_text(), 5)
    assert rig.cabinets["CAB-B"].unlock_pulses() == 0
    rig.send(topics.cmd("CAB-B"), payload)  # the same command from the server: new to B,
    assert rig.final_result(command_id).status == "succeeded"  # so B never even saw it
    assert rig.cabinets["CAB-B"].unlock_pulses() == 1
    assert "rejected" not in {r.status for r in rig.results if r.command_id == command_id}
