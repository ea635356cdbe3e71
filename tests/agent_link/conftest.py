"""Fixtures of the agent-link tests: the machine's Mosquitto, observers, journals.

The default broker (127.0.0.1:1883, anonymous) serves tests that need no broker
restart; every test uses its own cabinet id, so tests never see each other's topics.
Tests that stop the broker start a private one (``simulators.mosquitto``).
Sessions are given a short expiry so the shared broker does not keep them for days.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from locker_agent.config import parse_settings
from locker_agent.journal import Journal
from locker_agent.link.mqtt import LinkEvent, MqttAdapter, MqttSettings
from locker_agent.link.presence import PresenceCounter
from locker_agent.runtime import AgentRuntime
from locker_contract import topics
from simulators.bus import SimulatedBus
from simulators.mosquitto import PrivateMosquitto
from tests.agent_link.rig import (
    FAST_CONTROL,
    FAST_LINK,
    AgentRig,
    ServerStandIn,
    Signer,
    agent_document,
    start_bus,
)
from tests.link_support.clients import TestClient, connect

HOST = "127.0.0.1"
DEFAULT_PORT = 1883
#: the one cabinet of the private (TLS + ACL) broker
PRIVATE_CABINET, PRIVATE_PASSWORD = "PRIVATE-01", "private-password-1"


@dataclass(frozen=True)
class DefaultBroker:
    """The machine's broker, shaped like ``PrivateMosquitto`` for ``connect``."""

    host: str = HOST
    plain_port: int = DEFAULT_PORT


def fast_settings(cabinet_id: str, port: int = DEFAULT_PORT, **changes: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "client_id": cabinet_id,
        "backoff_initial": 0.05,
        "backoff_max": 0.3,
        "session_expiry": 120,
        "keepalive": 10,
    }
    values.update(changes)
    return MqttSettings(**values)


def private_broker_settings(
    cabinet_id: str, broker: PrivateMosquitto, password: str
) -> MqttSettings:
    """``fast_settings`` for a cabinet of a private broker: TLS, its own credential."""
    return fast_settings(
        cabinet_id,
        port=broker.tls_port,
        username=cabinet_id,
        password=password,
        tls=True,
        ca_file=broker.ca_file,
    )


@pytest.fixture
def cabinet_id() -> str:
    return f"T-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(tmp_path / "journal.sqlite3", max_telemetry_events=5)
    yield opened
    opened.close()


@pytest.fixture
def private_broker() -> Iterator[PrivateMosquitto]:
    """A private Mosquitto from the project's generated configuration (TLS, ACLs)."""
    with PrivateMosquitto(cabinets={PRIVATE_CABINET: PRIVATE_PASSWORD}) as broker:
        yield broker


ObserverFactory = Callable[..., TestClient]


@pytest.fixture
def observe() -> Iterator[ObserverFactory]:
    """``observe(*topics, port=1883)`` → a plain paho client subscribed to the topics."""
    clients: list[TestClient] = []

    def _observe(*topic_filters: str, port: int = DEFAULT_PORT) -> TestClient:
        broker = cast(Any, DefaultBroker(plain_port=port))
        client = connect(broker, None, None, tls=False)
        clients.append(client)
        for topic_filter in topic_filters:
            client.subscribe(topic_filter)
        return client

    yield _observe
    for client in clients:
        client.close()


AdapterFactory = Callable[..., tuple[MqttAdapter, "queue.SimpleQueue[LinkEvent]"]]


@pytest.fixture
def make_adapter() -> Iterator[AdapterFactory]:
    adapters: list[MqttAdapter] = []

    def _make(cabinet_id: str, journal: Journal, **changes: Any) -> tuple[MqttAdapter, Any]:
        inbox: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        adapter = MqttAdapter(
            fast_settings(cabinet_id, **changes),
            subscriptions=[topics.cmd(cabinet_id), topics.evt_ack(cabinet_id)],
            prepare_connect=PresenceCounter(cabinet_id, journal),
            post=inbox.put,
        )
        adapters.append(adapter)
        return adapter.start(), inbox

    yield _make
    for adapter in adapters:
        adapter.stop()


RigFactory = Callable[..., AgentRig]


@pytest.fixture
def make_rig(tmp_path: Path, observe: ObserverFactory) -> Iterator[RigFactory]:
    """``make_rig(cabinet_id)`` → a started cabinet connected to the default broker."""
    started: list[tuple[SimulatedBus, AgentRuntime]] = []
    private_clients: list[TestClient] = []

    def _make(
        cabinet_id: str,
        *,
        start: bool = True,
        broker: PrivateMosquitto | None = None,
        password: str = "anonymous-broker-ignores-it",
        journal: Path | None = None,
        stable_port: Path | None = None,
        **runtime_options: Any,
    ) -> AgentRig:
        """On ``broker`` (a private one) the cabinet uses TLS and ``password``; with
        ``stable_port`` the boards are served behind that symlink (see ``start_bus``)."""
        bus, port = start_bus(stable_port)
        signer = Signer(cabinet_id)
        journal = journal or tmp_path / f"{cabinet_id}.sqlite3"
        document = agent_document(cabinet_id, journal, signer.public_key, password=password)
        link = fast_settings(cabinet_id)
        observer = observe()
        if broker is not None:
            link = private_broker_settings(cabinet_id, broker, password)
            creds = broker.server_credentials
            observer = connect(broker, creds.username, creds.password)
            private_clients.append(observer)
        timings = {"link_settings": FAST_LINK, "controller_settings": FAST_CONTROL}
        runtime = AgentRuntime(
            parse_settings(document),
            serial_port=port,
            mqtt=link,
            **(timings | runtime_options),
        )
        server = ServerStandIn(observer, cabinet_id, signer.key)
        started.append((bus, runtime))
        if start:
            runtime.start()
            assert runtime.link.wait_connected(5)
        return AgentRig(bus, runtime, server, signer)

    yield _make
    for bus, runtime in started:
        if runtime.link.started:
            runtime.stop()
        else:
            runtime.journal.close()
        bus.stop()
    for client in private_clients:
        client.close()
