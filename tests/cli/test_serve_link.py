"""`locker-server serve` with no broker configured: an embedded development broker, the
bridge on it, and an operator's remote open arriving at the cabinet as a signed command;
and a clear refusal to start when that broker's port is taken."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    CommandMessage,
    decode,
    encode,
    key_id_of,
    new_envelope,
    topics,
    verify_command,
)
from locker_contract.bodies import Presence
from tests.cli.test_cli_core import CLI, PASSWORD, _free_port, _wait_healthy, cli_env, run_cli

CABINET = "LOBBY-SERVE"


@dataclass
class Served:
    base_url: str
    broker_port: int
    env: dict[str, str]
    secrets: Path


@pytest.fixture
def served_with_embedded_broker(tmp_path: Path) -> Iterator[Served]:
    port, broker_port = _free_port(), _free_port()
    env = cli_env(tmp_path) | {"LOCKER_EMBEDDED_BROKER_PORT": str(broker_port)}
    with subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            yield Served(f"http://127.0.0.1:{port}", broker_port, env, tmp_path / "secrets")
        finally:
            process.send_signal(signal.SIGINT)
            _out, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors


def _cabinet_client(port: int, received: queue.Queue[mqtt.MQTTMessage]) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=CABINET, protocol=mqtt.MQTTv311
    )
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, message: received.put(message)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(topics.cmd(CABINET), qos=1)
    assert subscribed.wait(10), "the embedded broker never acknowledged the subscription"
    return client


def _setup_cabinet(env: dict[str, str]) -> None:
    doors = ["door", "add-range", "1", "--from", "1", "--to", "4", "--size", "M", "--board", "1"]
    for args in (
        ["site", "add", "HQ"],
        ["cabinet", "add", "1", CABINET, "--name", "Lobby"],
        [*doors, "--first-lock", "1"],
    ):
        done = run_cli(args, env)
        assert done.returncode == 0, done.stderr
    made = run_cli(["user", "create", "ops", "--role", "admin", "--password-stdin"], env, PASSWORD)
    assert made.returncode == 0, made.stderr


def _command_key(secrets: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(
        (secrets / "command-signing-ed25519.pem").read_bytes(), password=None
    )
    assert isinstance(key, Ed25519PrivateKey)
    return key


def test_serve_without_a_broker_url_runs_an_embedded_broker_and_remote_opens_reach_the_cabinet(
    served_with_embedded_broker: Served,
) -> None:
    served = served_with_embedded_broker
    assert _wait_healthy(served.base_url).status_code == 200
    _setup_cabinet(served.env)
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client = _cabinet_client(served.broker_port, received)
    try:
        online = new_envelope(
            CABINET, Presence(status="online", connection=1, agent_version="test")
        )
        client.publish(topics.presence(CABINET), encode(online), qos=1, retain=True)
        token = httpx.post(
            f"{served.base_url}/api/v1/auth/token",
            data={"username": "ops", "password": PASSWORD},
        ).json()["access_token"]
        opened = httpx.post(
            f"{served.base_url}/api/v1/cabinets/1/doors/2/open",
            headers={"Authorization": f"Bearer {token}"},
            json={"reason": "recipient locked keys inside"},
        )
        assert opened.status_code == 202, opened.text
        message = received.get(timeout=10)
        cabinet = httpx.get(
            f"{served.base_url}/api/v1/cabinets/1", headers={"Authorization": f"Bearer {token}"}
        ).json()
    finally:
        client.loop_stop()
        client.disconnect()
    command = decode(message.payload, CommandMessage)
    public = _command_key(served.secrets).public_key()
    verify_command(command, {key_id_of(public): public})
    assert (command.cabinet_id, command.body.action, command.body.door) == (
        CABINET,
        "open_door",
        2,
    )
    assert not message.retain
    assert (cabinet["online"], cabinet["connection"]) == (True, 1)


def test_serve_refuses_to_start_when_the_dev_broker_port_is_taken_and_names_the_setting(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = cli_env(tmp_path) | {"LOCKER_EMBEDDED_BROKER_PORT": str(taken)}
        done = subprocess.run(
            [*CLI, "serve", "--port", str(_free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert done.returncode == 1
    assert f"127.0.0.1:{taken}" in done.stderr
    assert "already in use" in done.stderr
    assert "LOCKER_EMBEDDED_BROKER_PORT" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "Uvicorn running" not in done.stderr  # it never served without its link
