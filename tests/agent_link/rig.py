"""A whole cabinet for the runtime tests: simulated boards on a pty, the real agent runtime,
and a server stand-in (a plain paho client) that sees what the cabinet publishes and
publishes ``cmd``, ``evt/ack`` and ``sync`` the way the server would (signed)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_agent.doors import ControllerSettings
from locker_agent.runtime import AgentRuntime
from locker_agent.serial_link import LinkSettings
from locker_contract import (
    AllowListEntry,
    Body,
    CommandResultMessage,
    EventAckMessage,
    EventMessage,
    PresenceMessage,
    StateMessage,
    SyncMessage,
    UnsignedAllowListSync,
    UnsignedCommand,
    UnsignedEventAck,
    UnsignedTimeSync,
    cabinet_pickup_key,
    credential_hash,
    decode,
    encode,
    encode_public_key,
    key_id_of,
    new_envelope,
    new_message_id,
    sign_command,
    sign_message,
    topics,
)
from locker_contract.bodies import CommandResult, Event, Presence, State
from simulators.board import SimulatedDoor
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests import waiting
from tests.contract.schema_validation import assert_matches_schema
from tests.link_support.clients import TestClient

DOORS = 8
MAINTENANCE_TOKEN = "maintenance-token-of-the-installer"
PICKUP_KEY = cabinet_pickup_key(b"server pickup key for the tests!", 7)

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


def agent_document(
    cabinet_id: str,
    journal: Path,
    public_key: str,
    *,
    port: int = 1883,
    password: str = "anonymous-broker-ignores-it",
    tls: bool = False,
    ca_file: Path | None = None,
    serial_port: str = "CHANGE-ME",
) -> dict[str, Any]:
    broker: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "tls": tls,
        "username": cabinet_id,
        "password": password,
    }
    if ca_file is not None:
        broker["ca_file"] = str(ca_file)
    return {
        "cabinet_id": cabinet_id,
        "broker": broker,
        "security": {
            "command_public_keys": [public_key],
            "pickup_key": PICKUP_KEY.hex(),
            "maintenance_token_hash": _sha256(MAINTENANCE_TOKEN),
        },
        "serial": {"port": serial_port, "protocol": "8a80"},
        "doors": [{"number": n, "board": 1, "lock": n} for n in range(1, DOORS + 1)],
        "journal": {"path": str(journal), "max_telemetry_events": 100},
    }


def write_agent_toml(path: Path, document: dict[str, Any]) -> Path:
    path.write_bytes(tomli_w.dumps(document).encode())
    return path


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """:func:`tests.waiting.wait_until` with the rig's timeout."""
    return waiting.wait_until(predicate, timeout)


@dataclass
class ServerStandIn:
    """Checks what the cabinet publishes against the committed JSON Schemas, sorts it by
    kind, and publishes what the server would, signed with ``key`` (the server's: the
    ``Signer``'s key the agent trusts; a stand-in that only watches needs none)."""

    client: TestClient
    cabinet_id: str
    key: Ed25519PrivateKey | None = None
    events: list[Event] = field(default_factory=list)
    batches: list[list[Event]] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)
    #: envelope id of each final result seen (what the server's ack names), by command id
    result_ids: dict[str, list[str]] = field(default_factory=dict)
    states: list[State] = field(default_factory=list)
    presences: list[Presence] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind in ("evt", "cmd/res", "state", "presence"):
            self.client.subscribe(f"lockers/v1/{self.cabinet_id}/{kind}")

    def drain(self) -> None:
        while not self.client.messages.empty():
            message = self.client.messages.get_nowait()
            if not message.payload:  # a retained message being cleared, not a cabinet's word
                continue
            self.raw.append((message.topic, message.payload))
            assert_matches_schema(message.payload)  # what the cabinet sends fits docs/contract
            kind = topics.parse(message.topic).kind
            if kind is topics.Kind.EVT:
                batch = list(decode(message.payload, EventMessage).body.events)
                self.batches.append(batch)
                self.events.extend(batch)
            elif kind is topics.Kind.CMD_RES:
                result = decode(message.payload, CommandResultMessage)
                self.results.append(result.body)
                if result.body.is_final:
                    self.result_ids.setdefault(result.body.command_id, []).append(result.id)
            elif kind is topics.Kind.STATE:
                self.states.append(decode(message.payload, StateMessage).body)
            elif kind is topics.Kind.PRESENCE:
                self.presences.append(decode(message.payload, PresenceMessage).body)

    def wait(self, predicate: Callable[[ServerStandIn], Any], timeout: float = 5.0) -> Any:
        def check() -> Any:
            self.drain()
            return predicate(self)

        return wait_until(check, timeout)

    def events_of(self, event_type: str, door: int | None = None) -> list[Event]:
        self.drain()
        return [e for e in self.events if e.type == event_type and door in (None, e.door)]

    def statuses(self, command_id: str) -> list[str]:
        self.drain()
        return [r.status for r in self.results if r.command_id == command_id]

    def result(self, command_id: str, timeout: float = 5.0) -> CommandResult:
        final = self.wait(
            lambda s: [
                r for r in s.results if r.command_id == command_id and r.status != "received"
            ],
            timeout,
        )
        assert final, f"no final result for {command_id}; got {self.statuses(command_id)}"
        return final[0]  # type: ignore[no-any-return]

    def ping(self, signer: Signer, timeout: float = 10.0) -> None:
        """Send a signed ping and wait for its answer: a marker that the cabinet is done
        with what came before. The broker passes on our publishes and the PUBACKs of the
        cabinet's in the order it handled them, and the agent handles its inbox in that
        order, so once the ping is answered every earlier message and PUBACK was handled,
        and whatever the agent published before the answer has reached us."""
        command_id, payload = signer.command("ping", door=None)
        self.client.publish(topics.cmd(self.cabinet_id), payload)
        assert self.result(command_id, timeout).status == "succeeded"

    def ack(self, event_ids: list[str]) -> None:
        body = UnsignedEventAck(event_ids=event_ids, key_id=self.key_id)
        self.client.publish(topics.evt_ack(self.cabinet_id), self.signed(body, EventAckMessage))

    def ack_results(self, command_id: str) -> None:
        """Acknowledge the final results of ``command_id`` seen so far, as the server does
        once it has stored one."""
        self.drain()
        ids = sorted(set(self.result_ids[command_id]))
        body = UnsignedEventAck(event_ids=[], result_ids=ids, key_id=self.key_id)
        self.client.publish(topics.evt_ack(self.cabinet_id), self.signed(body, EventAckMessage))

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        assert self.key is not None, "give the stand-in the server's key to send evt/ack or sync"
        return self.key

    @property
    def key_id(self) -> str:
        return key_id_of(self.signing_key.public_key())

    def signed(
        self, body: Body, message_type: type[Any], *, sent_at: datetime | None = None
    ) -> bytes:
        envelope = new_envelope(self.cabinet_id, body, sent_at=sent_at)
        return encode(sign_message(envelope, self.signing_key, message_type))

    def ack_everything_seen(self) -> list[str]:
        self.drain()
        ids = sorted({event.event_id for event in self.events})
        for start in range(0, len(ids), 500):
            self.ack(ids[start : start + 500])
        return ids

    def time_sync(self, server_time: datetime, version: int = 1) -> bytes:
        body = UnsignedTimeSync(
            kind="time", version=version, server_time=server_time, key_id=self.key_id
        )
        return self.signed(body, SyncMessage, sent_at=server_time)

    def send_time(self, server_time: datetime, version: int = 1) -> None:
        self.client.publish(topics.sync(self.cabinet_id), self.time_sync(server_time, version))

    def allow_list(self, version: int, entries: list[AllowListEntry]) -> bytes:
        body = UnsignedAllowListSync(
            kind="allow_list",
            version=version,
            server_time=datetime.now(UTC),
            full=True,
            entries=entries,
            removed=[],
            key_id=self.key_id,
        )
        return self.signed(body, SyncMessage)

    def send_allow_list(self, version: int, entries: list[AllowListEntry]) -> None:
        self.client.publish(topics.sync(self.cabinet_id), self.allow_list(version, entries))


@dataclass
class Signer:
    """The server's command key: builds signed cmd payloads (or deliberately bad ones)."""

    cabinet_id: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    counter: int = 0

    @property
    def public_key(self) -> str:
        return encode_public_key(self.key.public_key())

    def command(
        self,
        action: str = "open_door",
        door: int | None = 1,
        *,
        counter: int | None = None,
        expires_in: float = 60.0,
        issued_ago: float = 0.0,
        cabinet_id: str | None = None,
        maintenance_token: str | None = None,
        command_id: str | None = None,
    ) -> tuple[str, bytes]:
        if counter is None:
            self.counter += 1
            counter = self.counter
        issued = datetime.now(UTC) - timedelta(seconds=issued_ago)
        body = UnsignedCommand(
            command_id=command_id or new_message_id(),
            counter=counter,
            issued_at=issued,
            expires_at=issued + timedelta(seconds=expires_in),
            action=action,
            door=door,
            reason="test",
            maintenance_token=maintenance_token,
            key_id=key_id_of(self.key.public_key()),
        )
        target = cabinet_id or self.cabinet_id
        envelope = sign_command(new_envelope(target, body, sent_at=issued), self.key)
        return body.command_id, encode(envelope)


def entry(parcel_id: int, door: int, code: str, *, expires_in: float = 3600) -> AllowListEntry:
    return AllowListEntry(
        parcel_id=parcel_id,
        door=door,
        code_hash=credential_hash(PICKUP_KEY, "code", code),
        qr_hash=None,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )


@dataclass
class AgentRig:
    bus: SimulatedBus
    runtime: AgentRuntime
    server: ServerStandIn
    signer: Signer

    @property
    def cabinet_id(self) -> str:
        return self.runtime.cabinet_id

    def door(self, number: int) -> SimulatedDoor:
        return self.bus.board(1).door(number)

    def send(self, payload: bytes, *, retain: bool = False) -> None:
        self.server.client.publish(topics.cmd(self.cabinet_id), payload, retain=retain)


def public_key_text(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def start_bus(stable_path: Path | None = None) -> tuple[SimulatedBus, str]:
    """Boards on a pty; with ``stable_path``, served behind that symlink (an adapter's
    ``/dev/serial/by-id`` name) so the test can unplug and replug the adapter."""
    bus = SimulatedBus("8a80", [SimBoardConfig(1, DOORS)], Timing.fast())
    return bus, bus.start_pty(stable_path)
