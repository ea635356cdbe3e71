"""What the bridge answers a cabinet with — the ``evt/ack`` after storing its events, the
``sync`` after it comes online — is signed with the server's command key and addressed to
that cabinet: the agent acts on nothing else.

These drive ``Ingest`` directly with real payloads (no broker); the agent's side of the
same rule runs over a real broker in ``tests/agent_link/test_inbound_signatures.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from locker_contract import (
    Body,
    CommandResult,
    CommandResultMessage,
    Event,
    EventAckMessage,
    EventBatch,
    Presence,
    SyncMessage,
    decode,
    encode,
    encode_public_key,
    new_envelope,
    new_message_id,
    topics,
    trusted_keys,
    verify_message,
)
from locker_server.link.bridge import InboundMessage
from locker_server.link.ingest import Ingest
from locker_server.services import DomainDeps
from tests.link_bridge.conftest import CabinetWorld


class Recorder:
    """The bridge's publisher: what it would put on the broker, topic and payload."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload))

    def on(self, topic: str) -> list[bytes]:
        return [payload for sent_to, payload in self.sent if sent_to == topic]


def _from_cabinet(cabinet: CabinetWorld, kind: topics.Kind, body: Body) -> InboundMessage:
    payload = encode(new_envelope(cabinet.code, body))
    return InboundMessage(
        topic=topics.topic(cabinet.code, kind), payload=payload, retained=False, qos=1, mid=1
    )


def _what_the_cabinet_trusts(deps: DomainDeps) -> dict[str, Ed25519PublicKey]:
    return trusted_keys([encode_public_key(deps.keys.command_signing_key.public_key())])


def test_the_evt_ack_is_signed_for_that_cabinet_with_the_key_it_trusts(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    events = [
        Event(
            event_id=new_message_id(),
            seq=seq,
            type=kind,
            device_time=datetime.now(UTC),
            door=1,
            data={},
        )
        for seq, kind in ((1, "door.opened"), (2, "door.closed"))
    ]
    recorder = Recorder()

    Ingest(engine, deps)(
        _from_cabinet(cabinet, topics.Kind.EVT, EventBatch(events=events)), recorder
    )

    [payload] = recorder.on(topics.evt_ack(cabinet.code))
    ack = decode(payload, EventAckMessage)
    verify_message(ack, _what_the_cabinet_trusts(deps))  # raises BadSignature otherwise
    assert ack.cabinet_id == cabinet.code
    assert ack.body.event_ids == [event.event_id for event in events]
    assert "result_ids" not in json.loads(payload)["body"]  # what agents before it accept


def test_a_final_command_result_is_acknowledged_signed_even_unmatched_and_received_is_not(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    unknown = new_message_id()  # no such command: audited, and acked so it is not resent
    received = _from_cabinet(cabinet, topics.Kind.CMD_RES, _result(unknown, "received"))
    final = _from_cabinet(cabinet, topics.Kind.CMD_RES, _result(unknown, "succeeded"))
    recorder = Recorder()
    ingest = Ingest(engine, deps)

    ingest(received, recorder)
    ingest(final, recorder)

    [payload] = recorder.on(topics.evt_ack(cabinet.code))
    ack = decode(payload, EventAckMessage)
    verify_message(ack, _what_the_cabinet_trusts(deps))
    assert ack.cabinet_id == cabinet.code
    assert (ack.body.event_ids, ack.body.result_ids) == (
        [],
        [decode(final.payload, CommandResultMessage).id],
    )


def _result(command_id: str, status: str) -> CommandResult:
    return CommandResult(
        command_id=command_id,
        status=status,  # type: ignore[arg-type]
        reason=None,
        outcome="confirmed" if status == "succeeded" else None,
        counter=None,
    )


def test_the_sync_after_coming_online_is_signed_for_that_cabinet_with_the_key_it_trusts(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    online = Presence(status="online", connection=1, agent_version="1.2.3")
    recorder = Recorder()

    Ingest(engine, deps)(_from_cabinet(cabinet, topics.Kind.PRESENCE, online), recorder)

    syncs = [decode(p, SyncMessage) for p in recorder.on(topics.sync(cabinet.code))]
    assert [sync.body.kind for sync in syncs] == ["time", "allow_list", "reservations"]
    for sync in syncs:
        verify_message(sync, _what_the_cabinet_trusts(deps))
        assert sync.cabinet_id == cabinet.code
