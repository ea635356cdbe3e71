"""The whole link end to end: real agent, real Mosquitto, real server bridge, real database.

* broker: a private Mosquitto from the project's generated configuration (TLS + ACLs,
  passwords), restartable on the same ports with its persistence;
* server: the bridge exactly as ``serve`` starts it (``MqttBridge`` + ``Ingest``) on the
  SQLite and PostgreSQL databases of ``tests/conftest.py``; "restarting the server"
  stops the bridge and starts a new one under the same client id;
* cabinet: the real ``AgentRuntime`` on simulated boards (``simulators.cabinet``), or
  ``locker-agent run`` in a subprocess when the test kills it with SIGKILL.

What every test checks in the end: each event the agent journaled is stored exactly once
(``link_events``), its seq numbers have no gap, and the door transitions were applied
once each (one ``door.opened`` / ``door.closed`` audit entry per stored event).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import tomli_w
from sqlalchemy import Engine

import locker_server.models.links  # noqa: F401  (registers the link tables)
from locker_agent.config import AgentSettings, parse_settings
from locker_agent.doors import ControllerSettings
from locker_agent.link.mqtt import MqttSettings
from locker_agent.serial_link import LinkSettings
from locker_contract import cabinet_pickup_key, encode_public_key
from locker_server.audit import Actor, AuditLog
from locker_server.audit.models import AuditEntry
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.link.bridge import BridgeConfig, MessageHandler, MqttBridge
from locker_server.link.ingest import Ingest
from locker_server.models import CabinetCreate, DoorCreate, SiteCreate
from locker_server.models.links import LinkEvent
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps
from locker_server.services import layout as config_service
from simulators.cabinet import CabinetTuning, SimulatedCabinet
from simulators.mosquitto import PrivateMosquitto
from simulators.timing import Timing

CABINET = "E2E-01"
PASSWORD = "e2e-cabinet-password-1"
DOORS = 4
DOOR_EVENTS = ("door.opened", "door.closed")
ADMIN = Caller(actor=Actor(type="system", id="e2e"), channel="cli")

FAST_LINK = LinkSettings(
    baudrate=9600,
    unlock_timeout=0.3,
    query_timeout=0.15,
    settle_after_error=0.04,
    late_reply_horizon=0.6,
)
FAST_CONTROL = ControllerSettings(
    poll_interval=0.05, confirm_window=0.6, left_open_after=300.0, unanswered_poll_interval=0.2
)


def wait_until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.05)


@dataclass(frozen=True)
class Stored:
    """One row of ``link_events``, in the order the server inserted it."""

    event_id: str
    seq: int
    type: str


@dataclass
class Server:
    """The server's link: the bridge + ingest, stoppable and restartable."""

    broker: PrivateMosquitto
    engine: Engine
    deps: DomainDeps
    client_id: str = field(default_factory=lambda: f"e2e-server-{uuid.uuid4().hex[:8]}")
    bridge: MqttBridge | None = None
    #: wraps the ingest handler, e.g. to make it fail on a chosen message
    wrap_handler: Callable[[MessageHandler], MessageHandler] = lambda handler: handler

    def start(self) -> None:
        account = self.broker.server_credentials
        config = BridgeConfig(
            host=self.broker.host,
            port=self.broker.server_port,
            client_id=self.client_id,
            tls=True,
            ca_file=str(self.broker.ca_file),
            username=account.username,
            password=account.password,
            share_group="e2e",
            reconnect_min_s=1,
            reconnect_max_s=1,
            retry_delay_s=0.05,
            session_expiry_s=600,
        )
        self.bridge = MqttBridge(config, self.wrap_handler(Ingest(self.engine, self.deps)))
        self.bridge.start()
        assert self.bridge.wait_until_subscribed(15), "the bridge never subscribed"

    def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class LinkWorld:
    """Broker, database, server and the cabinet's configuration of one test."""

    broker: PrivateMosquitto
    engine: Engine
    deps: DomainDeps
    server: Server
    cabinet_db_id: int
    directory: Path

    # -- the cabinet ------------------------------------------------------------------
    def agent_document(self) -> dict[str, Any]:
        public_key = self.deps.keys.command_signing_key.public_key()
        return {
            "cabinet_id": CABINET,
            "broker": {
                "host": self.broker.host,
                "port": self.broker.tls_port,
                "tls": True,
                "ca_file": str(self.broker.ca_file),
                "username": CABINET,
                "password": PASSWORD,
            },
            "security": {
                "command_public_keys": [encode_public_key(public_key)],
                "pickup_key": cabinet_pickup_key(b"e2e server pickup key", 1).hex(),
            },
            "serial": {"port": "CHANGE-ME", "protocol": "8a80"},
            "doors": [{"number": n, "board": 1, "lock": n} for n in range(1, DOORS + 1)],
            "journal": {"path": str(self.directory / "journal.sqlite3")},
        }

    def agent_settings(self) -> AgentSettings:
        return parse_settings(self.agent_document())

    def agent_toml(self, serial_port: str) -> Path:
        document = self.agent_document()
        document["serial"]["port"] = serial_port
        path = self.directory / "agent.toml"
        path.write_bytes(tomli_w.dumps(document).encode())
        return path

    def cabinet(
        self,
        *,
        controller: ControllerSettings = FAST_CONTROL,
        settings: AgentSettings | None = None,
    ) -> SimulatedCabinet:
        """The real agent runtime on simulated boards, with test-fast timings
        (``settings``: instead of :meth:`agent_settings`)."""
        mqtt = MqttSettings(
            host=self.broker.host,
            port=self.broker.tls_port,
            client_id=CABINET,
            username=CABINET,
            password=PASSWORD,
            tls=True,
            ca_file=self.broker.ca_file,
            backoff_initial=0.05,
            backoff_max=0.5,
            session_expiry=600,
        )
        tuning = CabinetTuning(
            timing=Timing.fast(),
            link=FAST_LINK,
            controller=controller,
            mqtt=mqtt,
            ack_timeout=2.0,  # re-publish an unacknowledged batch soon (default 15 s)
        )
        return SimulatedCabinet(settings or self.agent_settings(), tuning)

    def run_agent_process(self, serial_port: str) -> subprocess.Popen[bytes]:
        """``locker-agent run --config agent.toml`` in its own process (log in the test dir)."""
        command = [sys.executable, "-m", "locker_agent.cli", "run"]
        command += ["--config", str(self.agent_toml(serial_port))]
        with (self.directory / "agent.log").open("ab") as log:  # the child keeps its own copy
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    # -- what the server stored -------------------------------------------------------
    def stored(self) -> list[Stored]:
        query = (
            sa.select(LinkEvent.event_id, LinkEvent.seq, LinkEvent.type)  # type: ignore[call-overload]
            .where(LinkEvent.cabinet_id == self.cabinet_db_id)
            .order_by(LinkEvent.id)
        )
        with self.engine.connect() as conn:
            return [Stored(*row) for row in conn.execute(query).all()]

    def door_audit_entries(self) -> int:
        """Audit entries of door transitions reported by this cabinet (one per application)."""
        query = (
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.cabinet_id == self.cabinet_db_id)  # type: ignore[arg-type]
            .where(AuditEntry.action.in_(DOOR_EVENTS))  # type: ignore[attr-defined]
            .where(AuditEntry.actor_type == "cabinet")  # type: ignore[arg-type]
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def audit_details(self, action: str) -> list[tuple[str | None, dict[str, Any]]]:
        """(reason, details) of this cabinet's audit entries of ``action``, in log order."""
        query = (
            sa.select(AuditEntry.reason, AuditEntry.details)  # type: ignore[call-overload]
            .where(AuditEntry.cabinet_id == self.cabinet_db_id)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.seq)
        )
        with self.engine.connect() as conn:
            return [(reason, json.loads(details)) for reason, details in conn.execute(query)]

    def door_application_times(self) -> list[Any]:
        """Device times of this cabinet's door events in the order the server applied them
        (audit seq order): in journal order, they never go back."""
        query = (
            sa.select(AuditEntry.device_time)  # type: ignore[call-overload]
            .where(AuditEntry.cabinet_id == self.cabinet_db_id)
            .where(AuditEntry.action.in_(DOOR_EVENTS))
            .where(AuditEntry.actor_type == "cabinet")
            .order_by(AuditEntry.seq)
        )
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query).all()]

    def wait_stored(self, count: int, timeout: float = 30.0) -> list[Stored]:
        wait_until(lambda: len(self.stored()) >= count, timeout)
        return self.stored()

    def assert_each_event_once(self, stored: list[Stored]) -> None:
        """No duplicate id, no seq gap, one audited application per door event."""
        assert len({row.event_id for row in stored}) == len(stored)
        seqs = sorted(row.seq for row in stored)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a seq is missing"
        door_rows = sum(1 for row in stored if row.type in DOOR_EVENTS)
        assert self.door_audit_entries() == door_rows


def _domain_deps(settings: Settings, keys: ServerKeys) -> DomainDeps:
    audit = AuditLog(signing_key=keys.audit_signing_key)
    notifier = Notifier(settings=settings, keys=keys)
    return DomainDeps(settings=settings, keys=keys, audit=audit, notifier=notifier)


def _create_cabinet(engine: Engine, deps: DomainDeps) -> int:
    with session_scope(engine) as session:
        site = config_service.create_site(session, deps, SiteCreate(name="E2E"), caller=ADMIN)
        body = CabinetCreate(site_id=site.id or 0, code=CABINET, name="End to end")
        cabinet = config_service.create_cabinet(session, deps, body, caller=ADMIN)
        doors = [DoorCreate(number=n, size="M", board=1, lock=n) for n in range(1, DOORS + 1)]
        config_service.add_doors(session, deps, cabinet.id or 0, doors, caller=ADMIN)
        return cabinet.id or 0


@pytest.fixture
def world(
    engine: Engine, settings: Settings, server_keys: ServerKeys, tmp_path: Path
) -> Iterator[LinkWorld]:
    deps = _domain_deps(settings, server_keys)
    cabinet_db_id = _create_cabinet(engine, deps)
    with PrivateMosquitto(cabinets={CABINET: PASSWORD}) as broker:
        server = Server(broker, engine, deps)
        server.start()
        try:
            yield LinkWorld(broker, engine, deps, server, cabinet_db_id, tmp_path)
        finally:
            server.stop()
