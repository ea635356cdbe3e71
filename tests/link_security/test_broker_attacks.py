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

from locker_contract import topics
from locker_contract.envelope import MAX_PAYLOAD_BYTES
from locker_server.config import Settings
from locker_server.link.bridge import BridgeConfig, InboundMessage, LinkPublisher, MqttBridge
from tests.link_support.clients import TestClient, connect
from tests.link_support.mosquitto import PrivateMosquitto

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

    def __call__(self, message: InboundMessage, _publisher: LinkPublisher) -> None:
        with self._lock:
            self.topics.append(message.topic)

    def count(self, topic: str) -> int:
        with self._lock:
            return self.topics.count(topic)


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(cabinets=PASSWORDS) as running:
        yield running


def deployed_bridge(broker: PrivateMosquitto, inbox: Inbox) -> MqttBridge:
    """The server's bridge as ``server.credentials`` configures it (test ports patched in)."""
    settings = Settings(_env_file=broker.directory / "server.credentials")  # type: ignore[call-arg]
    config = replace(BridgeConfig.from_settings(settings), host=broker.host, port=broker.tls_port)
    bridge = MqttBridge(replace(config, reconnect_min_s=1, reconnect_max_s=1), inbox)
    bridge.start()
    assert bridge.wait_until_subscribed(WAIT_S), "control: the server's bridge subscribes"
    return bridge


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
    rogues = [as_cabinet(broker, "CAB-B", client_id=f"rogue-{n}") for n in range(3)]
    try:
        for rogue in rogues:
            join_public_group(rogue)
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
