"""Fixtures for the server's MQTT bridge: a real Mosquitto, real databases, real services.

The machine's default broker (127.0.0.1:1883, anonymous) is shared with other tests, so
every test uses its own cabinet code and its own shared-subscription group: no other
bridge can take its messages. ``CabinetClient`` plays the cabinet's agent with a real
paho client and the contract's own message builders.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlmodel import Session, select

import locker_server.models.links  # noqa: F401  (registers the link tables)
from locker_contract import topics
from locker_contract.bodies import (
    Event,
    EventAckMessage,
    EventBatch,
    Presence,
    State,
)
from locker_contract.envelope import Body, decode, encode, new_envelope
from locker_contract.types import new_message_id
from locker_server.audit import Actor, AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.link.bridge import BridgeConfig, InboundMessage, LinkPublisher, MqttBridge
from locker_server.link.ingest import Ingest
from locker_server.models import CabinetCreate, DoorCreate, SiteCreate
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps
from locker_server.services import layout as config_service
from tests.contract.schema_validation import assert_matches_schema
from tests.waiting import wait_until

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 1883
WAIT_S = 10.0
OPERATOR = Caller(actor=Actor(type="user", id="7"), channel="api", source="192.0.2.20")


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """:func:`tests.waiting.wait_until` with the bridge tests' timeout."""
    return wait_until(condition, timeout)


@pytest.fixture
def deps(settings: Settings, server_keys: ServerKeys) -> DomainDeps:
    audit = AuditLog(signing_key=server_keys.audit_signing_key)
    notifier = Notifier(settings=settings, keys=server_keys)
    return DomainDeps(settings=settings, keys=server_keys, audit=audit, notifier=notifier)


@dataclass(frozen=True)
class CabinetWorld:
    site_id: int
    cabinet_id: int
    code: str


@pytest.fixture
def cabinet(engine: Engine, deps: DomainDeps) -> CabinetWorld:
    """A site with one cabinet (a code unique to this test) and doors 1-3."""
    code = f"T-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        site = config_service.create_site(session, deps, SiteCreate(name="HQ"), caller=OPERATOR)
        assert site.id is not None
        body = CabinetCreate(site_id=site.id, code=code, name="Lobby")
        created = config_service.create_cabinet(session, deps, body, caller=OPERATOR)
        assert created.id is not None
        doors = [DoorCreate(number=n, size="M", board=1, lock=n) for n in (1, 2, 3)]
        config_service.add_doors(session, deps, created.id, doors, caller=OPERATOR)
        return CabinetWorld(site_id=site.id, cabinet_id=created.id, code=code)


class Counts(Protocol):
    handled: int


def settle(bridge: MqttBridge, handler: Counts, quiet_s: float = 0.2) -> None:
    """Wait until the bridge has handled what the broker sent on subscribing (the shared
    broker's retained presences of other tests' cabinets) and nothing more arrives:
    a message published during that flood could find the broker's queue for us full."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        seen = handler.handled
        time.sleep(quiet_s)
        if handler.handled == seen and bridge.backlog == 0:
            return
    raise AssertionError("the bridge never went quiet")


class CountingIngest:
    """The real ingest, counting the messages this bridge handled (load split checks)."""

    def __init__(self, inner: Ingest) -> None:
        self.inner = inner
        self.handled = 0

    def __call__(self, message: InboundMessage, publisher: LinkPublisher) -> None:
        self.inner(message, publisher)
        self.handled += 1


@dataclass
class Bridges:
    engine: Engine
    deps: DomainDeps
    group: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    started: list[MqttBridge] = field(default_factory=list)

    def config(self, client_id: str | None = None, **overrides: Any) -> BridgeConfig:
        values: dict[str, Any] = {
            "host": BROKER_HOST,
            "port": BROKER_PORT,
            "client_id": client_id or f"srv-{uuid.uuid4().hex[:10]}",
            "share_group": self.group,
            "retry_delay_s": 0.05,
            "session_expiry_s": 300,
        }
        return BridgeConfig(**(values | overrides))

    def start(
        self, client_id: str | None = None, **overrides: Any
    ) -> tuple[MqttBridge, CountingIngest]:
        handler = CountingIngest(Ingest(self.engine, self.deps))
        bridge = MqttBridge(self.config(client_id, **overrides), handler)
        bridge.start()
        self.started.append(bridge)
        assert bridge.wait_until_subscribed(WAIT_S), "bridge never subscribed"
        settle(bridge, handler)
        return bridge, handler

    def stop_all(self) -> None:
        for bridge in self.started:
            bridge.stop()


@pytest.fixture
def bridges(engine: Engine, deps: DomainDeps) -> Iterator[Bridges]:
    running = Bridges(engine, deps)
    yield running
    running.stop_all()


class CabinetClient:
    """A cabinet's agent, reduced to what the tests need: publish, and collect evt/acks."""

    def __init__(
        self,
        code: str,
        host: str = BROKER_HOST,
        port: int = BROKER_PORT,
        *,
        ca_file: str | None = None,
        password: str | None = None,
    ) -> None:
        self.code = code
        self.acks: list[list[str]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"cab-{uuid.uuid4().hex[:10]}"
        )
        self.synced: list[bytes] = []
        self.received: list[bytes] = []
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(topics.evt_ack(code), 1), (topics.sync(code), 1)]
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        if ca_file is not None:
            self.client.tls_set(ca_certs=ca_file)
        if password is not None:  # a provisioned cabinet: username = cabinet id
            self.client.username_pw_set(code, password)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT_S), "cabinet client never subscribed"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.received.append(bytes(msg.payload))  # checked against docs/contract at the end
        if msg.topic == topics.sync(self.code):
            self.synced.append(bytes(msg.payload))
            return
        ack = decode(bytes(msg.payload), EventAckMessage)
        with self._lock:
            self.acks.append(list(ack.body.event_ids))

    def send(self, kind: topics.Kind, body: Body, *, retain: bool = False) -> None:
        payload = encode(new_envelope(self.code, body))
        self.publish_raw(topics.topic(self.code, kind), payload, retain=retain)

    def publish_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def send_events(self, events: list[Event]) -> None:
        self.send(topics.Kind.EVT, EventBatch(events=events))

    def send_presence(self, status: str, connection: int) -> None:
        body = Presence(status=status, connection=connection, agent_version="1.2.3")
        self.send(topics.Kind.PRESENCE, body, retain=True)

    def send_state(self, version: int, doors: dict[int, str]) -> None:
        snapshot = {str(n): {"state": s, "occupied": None} for n, s in doors.items()}
        self.send(topics.Kind.STATE, State.model_validate({"version": version, "doors": snapshot}))

    def acked_ids(self) -> list[str]:
        with self._lock:
            return [event_id for ack in self.acks for event_id in ack]

    def close(self) -> None:
        for kind in (topics.Kind.PRESENCE, topics.Kind.STATE):  # leave no retained messages
            self.publish_raw(topics.topic(self.code, kind), b"", retain=True)
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def cabinet_client(cabinet: CabinetWorld) -> Iterator[CabinetClient]:
    client = CabinetClient(cabinet.code)
    yield client
    client.close()
    for payload in client.received:  # what the server sent this cabinet fits the contract
        assert_matches_schema(payload)


_seq = iter(range(1, 1_000_000))


def event(event_type: str, /, door: int | None = 1, **data: Any) -> Event:
    return Event(
        event_id=new_message_id(),
        seq=next(_seq),
        type=event_type,
        device_time=datetime.now(UTC),
        door=door,
        data=data,
    )


def as_utc(moment: datetime | None) -> datetime | None:
    """Audit timestamps read back from SQLite are naive UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def audit_entries(engine: Engine, action: str, cabinet_id: int | None = None) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        if cabinet_id is not None:
            query = query.where(AuditEntry.cabinet_id == cabinet_id)
        return list(session.exec(query.order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]
