"""End to end through the machine's real Mosquitto (127.0.0.1:1883): the server's bridge
publishes signed commands and allow-lists; a paho client plays the cabinet, checks the
signature with the contract's ``verify_command`` and answers on ``cmd/res``.

The broker is shared with other tests, so each test renames its cabinet to a fresh code
and uses its own shared-subscription group (``Bridges``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlmodel import Session

from locker_contract import (
    AllowListSync,
    CommandMessage,
    CommandResult,
    Presence,
    SyncMessage,
    TimeSync,
    cabinet_pickup_key,
    credential_hash,
    decode,
    encode,
    new_envelope,
    topics,
    verify_command,
)
from locker_server.db import session_scope
from locker_server.models import Cabinet
from locker_server.services import DomainDeps, commands
from tests.domain.conftest import OPERATOR, Deliver, World
from tests.link_bridge.conftest import BROKER_HOST, BROKER_PORT, WAIT_S, Bridges, wait_for
from tests.link_commands.conftest import load_command


class CabinetStub:
    """The cabinet's side: receives ``cmd`` and ``sync``, publishes what the test says."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.received: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"stub-{code}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(BROKER_HOST, BROKER_PORT)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT_S), "cabinet stub never subscribed"

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(topics.cmd(self.code), 1), (topics.sync(self.code), 1)])

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(message)

    def on(self, kind: str) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.received if m.topic.endswith("/" + kind)]

    def send(self, kind: topics.Kind, body: Any, *, retain: bool = False) -> None:
        payload = encode(new_envelope(self.code, body))
        info = self.client.publish(topics.topic(self.code, kind), payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.publish(topics.presence(self.code), b"", qos=1, retain=True).wait_for_publish(
            WAIT_S
        )
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def cabinet_code(engine: Engine, world: World) -> str:
    code = f"T-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        cabinet = session.get(Cabinet, world.cabinet_id)
        assert cabinet is not None
        cabinet.code = code
        session.add(cabinet)
    return code


@pytest.fixture
def bridges(engine: Engine, deps: DomainDeps) -> Iterator[Bridges]:
    running = Bridges(engine, deps)
    yield running
    running.stop_all()


@pytest.fixture
def stub(cabinet_code: str) -> Iterator[CabinetStub]:
    cabinet = CabinetStub(cabinet_code)
    yield cabinet
    cabinet.close()


def _result(command_id: str, status: str, outcome: str | None = None) -> CommandResult:
    return CommandResult(
        command_id=command_id,
        status=status,
        reason=None,
        outcome=outcome,
        counter=None,  # type: ignore[arg-type]
    )


def test_a_signed_command_crosses_mosquitto_and_the_cabinets_answers_close_it(
    engine: Engine, deps: DomainDeps, world: World, bridges: Bridges, stub: CabinetStub,
    cabinet_trust: dict[str, Any],
) -> None:  # fmt: skip
    bridge, _ = bridges.start()
    with Session(engine, expire_on_commit=False) as session:
        command = commands.issue_command(
            session, bridge.publisher, deps.keys, cabinet_id=world.cabinet_id, action="open_door",
            door=3, reason="courier locked out", caller=OPERATOR, audit=deps.audit,
        )  # fmt: skip
    assert wait_for(lambda: len(stub.on("cmd")) == 1)
    [message] = stub.on("cmd")
    assert (message.retain, message.qos) == (False, 1)
    envelope = decode(message.payload, CommandMessage)
    verify_command(envelope, cabinet_trust)
    assert (envelope.cabinet_id, envelope.body.door) == (stub.code, 3)
    stub.send(topics.Kind.CMD_RES, _result(command.command_id, "received"))
    assert wait_for(lambda: load_command(engine, command.command_id).status == "delivered")
    stub.send(topics.Kind.CMD_RES, _result(command.command_id, "succeeded", "confirmed"))
    assert wait_for(lambda: load_command(engine, command.command_id).status == "succeeded")
    assert load_command(engine, command.command_id).result_outcome == "confirmed"
    assert len(stub.on("cmd")) == 1


def test_a_cabinet_coming_online_gets_time_then_its_full_allow_list_over_mosquitto(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, bridges: Bridges,
    stub: CabinetStub,
) -> None:  # fmt: skip
    delivered = deliver()
    bridges.start()
    stub.send(topics.Kind.PRESENCE, Presence(status="online", connection=1, agent_version="t"),
              retain=True)  # fmt: skip
    assert wait_for(lambda: len(stub.on("sync")) == 3)  # time, allow-list, reservations
    time_sync, allow, _reservations = (decode(m.payload, SyncMessage).body for m in stub.on("sync"))
    assert isinstance(time_sync, TimeSync)
    assert isinstance(allow, AllowListSync)
    assert allow.full
    [entry] = allow.entries
    cabinet_key = cabinet_pickup_key(deps.keys.pickup_hmac_key, world.cabinet_id)
    assert (entry.parcel_id, entry.door) == (delivered.parcel_id, delivered.door_number)
    assert entry.code_hash == credential_hash(cabinet_key, "code", delivered.code)
