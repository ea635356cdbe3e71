"""A hostile cabinet against the generated broker deployment (real Mosquitto).

The attacker holds one cabinet's credential (CAB-B, e.g. read out of a stolen cabinet) and
knows everything public: the documentation, the topic tree, the server's default share
group name. It tries to starve the server of the other cabinets' messages, to knock other
clients off the broker, and to flood it with oversized messages. The server side is the
real ``MqttBridge``, configured from the ``server.credentials`` file ``broker-config``
writes, so it subscribes exactly the way a deployed server does.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from locker_agent.config import load_settings
from locker_contract import topics
from locker_contract.envelope import MAX_PAYLOAD_BYTES
from locker_server.config import Settings
from locker_server.link.bridge import BridgeConfig, InboundMessage, LinkPublisher, MqttBridge
from simulators.mosquitto import PrivateMosquitto
from tests.link_security.conftest import LockerCli
from tests.link_support.clients import ConnectionRefused, TestClient, connect

PASSWORDS = {"CAB-A": "a-password-for-cabinet-a", "CAB-B": "a-password-for-cabinet-b"}
#: the group name the documentation and the settings' default give away
PUBLIC_GROUP = "locker-server"
EVENTS = 30
WAIT_S = 5.0


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Inbox:
    """What the bridge handed to the server's ingest (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.topics: list[str] = []
        self.sizes: list[int] = []

    def __call__(self, message: InboundMessage, _publisher: LinkPublisher) -> None:
        with self._lock:
            self.topics.append(message.topic)
            self.sizes.append(len(message.payload))

    def count(self, topic: str) -> int:
        with self._lock:
            return self.topics.count(topic)


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(cabinets=PASSWORDS) as running:
        yield running


def deployed_bridge(
    broker: PrivateMosquitto, inbox: Inbox, client_id: str = "locker-server-1"
) -> MqttBridge:
    """The server's bridge as ``server.credentials`` configures it (test ports patched in),
    with the fixed client id the documentation recommends."""
    settings = Settings(_env_file=broker.directory / "server.credentials")  # type: ignore[call-arg]
    config = replace(
        BridgeConfig.from_settings(settings),
        host=broker.host,
        port=server_port(broker),
        client_id=client_id,
        reconnect_min_s=1,
        reconnect_max_s=1,
    )
    bridge = MqttBridge(config, inbox)
    bridge.start()
    assert bridge.wait_until_subscribed(WAIT_S), "control: the server's bridge subscribes"
    return bridge


def server_port(broker: PrivateMosquitto) -> int:
    """Where the server connects: its own listener (the one shared TLS port before it)."""
    return broker.server_port or broker.tls_port


@pytest.fixture
def server(broker: PrivateMosquitto) -> Iterator[Inbox]:
    inbox = Inbox()
    bridge = deployed_bridge(broker, inbox)
    yield inbox
    bridge.stop()


def as_cabinet(
    broker: PrivateMosquitto,
    cabinet: str,
    *,
    client_id: str | None = None,
    session_expiry: int | None = None,
) -> TestClient:
    return connect(
        broker,
        cabinet,
        PASSWORDS[cabinet],
        client_id=cabinet if client_id is None else client_id,
        session_expiry=session_expiry,
    )


def publish_events(broker: PrivateMosquitto, count: int = EVENTS) -> str:
    """CAB-A, an honest cabinet, reports ``count`` events; returns their topic."""
    with as_cabinet(broker, "CAB-A") as cabinet_a:
        for number in range(count):
            cabinet_a.publish(topics.evt("CAB-A"), f"event {number}".encode())
    return topics.evt("CAB-A")


def join_public_group(client: TestClient) -> None:
    """Subscribe to exactly the filter a server with the default group uses."""
    client.subscribe(topics.shared(PUBLIC_GROUP, topics.Kind.EVT))


def test_rogue_connections_in_the_servers_share_group_take_no_events(
    broker: PrivateMosquitto, server: Inbox
) -> None:
    rogues: list[TestClient] = []
    try:
        for n in range(3):  # (where one credential holds one connection, the last stays)
            rogues.append(as_cabinet(broker, "CAB-B", client_id=f"rogue-{n}"))
            join_public_group(rogues[-1])
        topic = publish_events(broker)
        wait_for(lambda: server.count(topic) >= EVENTS)
        assert server.count(topic) == EVENTS
    finally:
        for rogue in rogues:
            rogue.close()


def test_sessions_a_cabinet_left_in_the_servers_share_group_take_no_events(
    broker: PrivateMosquitto, server: Inbox
) -> None:
    for n in range(3):
        ghost_id = f"ghost-{uuid.uuid4().hex[:8]}-{n}"
        with as_cabinet(broker, "CAB-B", client_id=ghost_id, session_expiry=3600) as ghost:
            join_public_group(ghost)
    topic = publish_events(broker)
    wait_for(lambda: server.count(topic) >= EVENTS)
    assert server.count(topic) == EVENTS


def test_server_group_is_a_secret_the_cabinet_never_receives(
    broker: PrivateMosquitto, tmp_path: Path
) -> None:
    settings = Settings(_env_file=broker.directory / "server.credentials")  # type: ignore[call-arg]
    assert settings.mqtt_share_group != PUBLIC_GROUP
    assert len(settings.mqtt_share_group) >= 32  # at least 128 random bits in hex


# --- client ids ------------------------------------------------------------------------------


def test_a_cabinet_cannot_knock_another_cabinet_off_with_its_client_id(
    broker: PrivateMosquitto,
) -> None:
    with as_cabinet(broker, "CAB-A") as cabinet_a:
        with as_cabinet(broker, "CAB-B", client_id="CAB-A"):
            assert not cabinet_a.disconnected.wait(1.0)
        assert cabinet_a.paho.is_connected()


def test_commands_queued_for_an_offline_cabinet_survive_an_impostor_with_its_client_id(
    broker: PrivateMosquitto,
) -> None:
    with as_cabinet(broker, "CAB-A", session_expiry=3600) as cabinet_a:
        cabinet_a.subscribe(topics.cmd("CAB-A"))
    commands = [uuid.uuid4().hex.encode() for _ in range(3)]
    account = broker.server_credentials
    with connect(broker, account.username, account.password) as server_account:
        for command in commands:
            server_account.publish(topics.cmd("CAB-A"), command)
    with as_cabinet(broker, "CAB-B", client_id="CAB-A", session_expiry=0) as impostor:
        impostor.expect_nothing(within=0.5)
    with as_cabinet(broker, "CAB-A", session_expiry=0) as cabinet_a:
        received = [cabinet_a.next_message(timeout=2).payload for _ in commands]
    assert received == commands


def test_a_cabinet_cannot_knock_the_server_off_with_its_fixed_client_id(
    broker: PrivateMosquitto,
) -> None:
    bridge = deployed_bridge(broker, Inbox(), client_id="locker-server-1")
    try:
        with as_cabinet(broker, "CAB-B", client_id="locker-server-1"):
            assert not wait_for(lambda: bridge.connections > 1, timeout=2.5)
    finally:
        bridge.stop()


def test_one_cabinet_credential_holds_one_connection(broker: PrivateMosquitto) -> None:
    clients = [as_cabinet(broker, "CAB-B", client_id=f"extra-{n}") for n in range(3)]
    try:
        assert wait_for(lambda: all(c.disconnected.is_set() for c in clients[:-1]))
        assert clients[-1].paho.is_connected()
    finally:
        for client in clients:
            client.close()


def test_a_cabinet_credential_is_refused_on_the_server_listener(
    broker: PrivateMosquitto,
) -> None:
    with pytest.raises(ConnectionRefused, match="Not authorized"):
        connect(broker, "CAB-B", PASSWORDS["CAB-B"], port=server_port(broker))


# --- oversized messages ----------------------------------------------------------------------


def test_a_payload_above_the_contracts_cap_never_reaches_the_server(
    broker: PrivateMosquitto, server: Inbox
) -> None:
    with as_cabinet(broker, "CAB-B") as cabinet_b:
        cabinet_b.paho.publish(topics.evt("CAB-B"), b"x" * (MAX_PAYLOAD_BYTES + 1), qos=1)
        # Mosquitto answers "packet too large" and paho then closes; the old config delivered.
        wait_for(lambda: cabinet_b.disconnected.is_set() or bool(server.sizes))
    with as_cabinet(broker, "CAB-A") as cabinet_a:  # control: a message at the cap arrives
        cabinet_a.publish(topics.evt("CAB-A"), b"y" * MAX_PAYLOAD_BYTES)
        assert wait_for(lambda: MAX_PAYLOAD_BYTES in server.sizes)
    assert server.sizes == [MAX_PAYLOAD_BYTES]


def test_a_packet_far_above_the_cap_ends_the_senders_connection(
    broker: PrivateMosquitto, server: Inbox
) -> None:
    with as_cabinet(broker, "CAB-B") as cabinet_b:
        cabinet_b.paho.publish(topics.evt("CAB-B"), b"z" * (4 * MAX_PAYLOAD_BYTES), qos=1)
        assert cabinet_b.disconnected.wait(WAIT_S), "the broker must drop the flooding client"
    assert server.sizes == []


# --- cabinet codes that collide with broker names -------------------------------------------


@pytest.mark.parametrize("code", ["locker-server", "locker-server-1", "LOCKER-SERVER", ".", ".."])
def test_cabinet_code_taken_from_the_servers_names_or_a_path_word_is_refused(
    locker_cli: LockerCli, code: str
) -> None:
    locker_cli.ok("site", "add", "Head office")

    result = locker_cli("cabinet", "add", "1", code, "--name", "Rogue")

    assert result.code == 1
    assert "error: code:" in result.err
    assert locker_cli.ok("cabinet", "list").out.count("Rogue") == 0


# --- decommissioning ------------------------------------------------------------------------


def test_decommissioning_ends_the_session_the_cabinet_left_behind(
    installation: LockerCli, tmp_path: Path, broker_dir: Path
) -> None:
    installation.ok("cabinet", "provision", "CAB-A", "--out", str(tmp_path / "a"))
    installation.ok("broker-config", "--out", str(broker_dir))
    password = load_settings(tmp_path / "a" / "agent.toml").broker.password.get_secret_value()
    with PrivateMosquitto(broker_dir) as broker:
        with connect(broker, "CAB-A", password, client_id="CAB-A", session_expiry=3600) as left:
            left.subscribe(topics.cmd("CAB-A"))  # a session with a subscription stays behind

        result = installation.ok("cabinet", "decommission", "CAB-A")

        account = broker.server_credentials
        probe = connect(
            broker, account.username, account.password, client_id="CAB-A", session_expiry=0
        )
        with probe:
            assert not probe.session_present, result.out + result.err
