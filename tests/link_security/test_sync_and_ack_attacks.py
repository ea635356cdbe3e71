"""An attacker who can publish on the broker can neither make a cabinet forget its door
events nor slip it a pickup code or an old clock.

Same real path as ``test_command_attacks``: cabinet CAB-A provisioned with
``locker-server cabinet provision``, the private Mosquitto from ``locker-server
broker-config`` (TLS + ACLs), the agent runtime on simulated boards. The attacker holds the
SERVER's broker account (stolen), so the broker delivers whatever it publishes on
``evt/ack`` and ``sync``; what it lacks is the server's signing key. It reads the event ids
off the broker and, for the allow-list, even has the cabinet's pickup key (stolen from the
cabinet's disk). Every forgery must change nothing and be journaled as an ``alarm``.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    AllowListEntry,
    CommandResult,
    CommandResultMessage,
    EventAckMessage,
    EventMessage,
    SyncMessage,
    UnsignedAllowListSync,
    UnsignedEventAck,
    UnsignedTimeSync,
    credential_hash,
    decode,
    key_id_of,
    topics,
)
from locker_server.keys import load_keys
from simulators.mosquitto import PrivateMosquitto
from tests.link_security.conftest import LockerCli
from tests.link_security.test_command_attacks import (
    Cabinet,
    Signer,
    _start_cabinet,
    _wait_until_subscribed,
)
from tests.link_support import forged
from tests.link_support.clients import TestClient, connect
from tests.waiting import wait_until

CABINET = "CAB-A"
CODE = "16180339"
ATTACKER = Ed25519PrivateKey.generate()


@dataclass
class Attack:
    attacker: TestClient  # the server's broker account, subscribed to CAB-A's evt and cmd/res
    cabinet: Cabinet
    server_key: Ed25519PrivateKey  # only to play a command the server really sent

    def publish(self, kind: topics.Kind, payload: bytes) -> None:
        self.attacker.publish(topics.topic(CABINET, kind), payload)

    def alarms(self, kind: str, count: int, timeout: float = 5.0) -> list[str]:
        wait_until(lambda: len(self._alarms(kind)) >= count, timeout)
        found = self._alarms(kind)
        assert len(found) >= count, found
        return found

    def _alarms(self, kind: str) -> list[str]:
        journaled = self.cabinet.runtime.journal.pending(limit=1000)
        return [
            str(event.data["detail"])
            for event in journaled
            if event.type == "alarm" and event.data["kind"] == kind
        ]

    def next_payload(self, kind: topics.Kind, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.attacker.next_message(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if topics.parse(message.topic).kind is kind and message.payload:
                return message.payload
        raise AssertionError(f"no {kind.value} seen on the broker")


@pytest.fixture
def attack(installation: LockerCli, tmp_path: Path, broker_dir: Path) -> Iterator[Attack]:
    installation.ok("cabinet", "provision", CABINET, "--out", str(tmp_path / CABINET))
    installation.ok("broker-config", "--out", str(broker_dir))
    keys = load_keys(tmp_path / "secrets")
    with PrivateMosquitto(broker_dir) as broker:
        cabinet = _start_cabinet(CABINET, tmp_path / CABINET, broker, tmp_path)
        try:
            account = broker.server_credentials
            with connect(broker, account.username, account.password) as attacker:
                attacker.subscribe(topics.evt(CABINET))
                attacker.subscribe(topics.cmd_res(CABINET))
                _wait_until_subscribed({CABINET: cabinet})
                yield Attack(attacker, cabinet, keys.command_signing_key)
        finally:
            cabinet.runtime.stop()
            cabinet.bus.stop()


def _reasons(details: list[str]) -> set[str]:
    return {detail.split(":")[0] for detail in details}


def test_forged_acks_leave_every_door_event_on_the_cabinet(attack: Attack) -> None:
    attack.cabinet.bus.board(1).door(1).force_open()
    batch = decode(attack.next_payload(topics.Kind.EVT), EventMessage)  # read off the broker
    ids = [event.event_id for event in batch.body.events]
    own = UnsignedEventAck(event_ids=ids, key_id=key_id_of(ATTACKER.public_key()))
    own_key = forged.signed_by(ATTACKER, CABINET, own, EventAckMessage)

    attack.publish(topics.Kind.EVT_ACK, forged.unsigned("evt_ack", CABINET, {"event_ids": ids}))
    attack.publish(topics.Kind.EVT_ACK, own_key)
    attack.publish(topics.Kind.EVT_ACK, forged.claiming_key(own_key, attack.server_key))

    details = attack.alarms("ack_rejected", 3)
    assert _reasons(details) == {"unsigned", "unknown_key", "bad_signature"}
    journaled = {event.event_id for event in attack.cabinet.runtime.journal.pending(limit=1000)}
    assert set(ids) <= journaled  # nothing deleted: the cabinet will publish them again


def test_a_forged_allow_list_opens_no_door_even_with_the_cabinets_stolen_pickup_key(
    attack: Attack,
) -> None:
    runtime = attack.cabinet.runtime
    stolen = runtime.settings.security.pickup_key_bytes
    planted = AllowListEntry(
        parcel_id=4242,
        door=2,
        code_hash=credential_hash(stolen, "code", CODE),
        qr_hash=None,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    body = UnsignedAllowListSync(
        kind="allow_list",
        version=1_000_000,  # far above anything the server has sent
        server_time=datetime.now(UTC),
        full=True,
        entries=[planted],
        removed=[],
        key_id=key_id_of(ATTACKER.public_key()),
    )
    own_key = forged.signed_by(ATTACKER, CABINET, body, SyncMessage)
    unsigned = body.model_dump(mode="json", exclude={"key_id"})

    attack.publish(topics.Kind.SYNC, forged.unsigned("sync", CABINET, unsigned))
    attack.publish(topics.Kind.SYNC, own_key)
    attack.publish(topics.Kind.SYNC, forged.claiming_key(own_key, attack.server_key))

    assert _reasons(attack.alarms("sync_rejected", 3)) == {
        "unsigned",
        "unknown_key",
        "bad_signature",
    }
    assert runtime.allow_list.version is None
    outcome = runtime.local_pickup(code=CODE, door=2)
    assert not outcome.opened
    assert attack.cabinet.unlock_pulses() == 0


def test_a_forged_old_clock_does_not_revive_an_expired_command(attack: Attack) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    body = UnsignedTimeSync(
        kind="time",
        version=1_000_000,
        server_time=an_hour_ago,
        key_id=key_id_of(ATTACKER.public_key()),
    )
    own_key = forged.signed_by(ATTACKER, CABINET, body, SyncMessage, sent_at=an_hour_ago)
    attack.publish(topics.Kind.SYNC, own_key)
    attack.publish(topics.Kind.SYNC, forged.claiming_key(own_key, attack.server_key))
    attack.alarms("sync_rejected", 2)
    # a command the server really signed two minutes ago, expired one minute ago, and
    # (say) never delivered: the attacker recorded it off the broker
    command_id, payload = Signer(attack.server_key).command(CABINET, door=3, issued_ago=120)

    attack.publish(topics.Kind.CMD, payload)

    result = _final_result(attack, command_id)
    assert (result.status, result.reason) in {("expired", "expired"), ("rejected", "expired")}
    assert attack.cabinet.runtime.guard.clock_offset.offset == timedelta(0)
    assert attack.cabinet.unlock_pulses() == 0


def _final_result(attack: Attack, command_id: str) -> CommandResult:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        result = decode(attack.next_payload(topics.Kind.CMD_RES), CommandResultMessage).body
        if result.command_id == command_id and result.status != "received":
            return result
    raise AssertionError(f"no final cmd/res for {command_id}")
