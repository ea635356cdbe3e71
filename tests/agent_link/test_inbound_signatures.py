"""evt/ack and sync are acted on only when the server signed them for this cabinet.

Forged messages are published straight onto the machine's Mosquitto next to the real
agent runtime: an acknowledgement nobody signed must not delete journaled door events, an
allow-list nobody signed must not let a code open a door, and a genuine old sync played
again must not roll the allow-list or the clock back. Every refusal is journaled as a
custody ``alarm`` (and so reaches the server); nothing secret is logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    EventAckMessage,
    SyncMessage,
    UnsignedAllowListSync,
    UnsignedEventAck,
    UnsignedTimeSync,
    credential_hash,
    key_id_of,
    topics,
)
from tests.agent_link.conftest import RigFactory
from tests.agent_link.rig import PICKUP_KEY, AgentRig, entry, wait_until
from tests.link_support import forged

CODE = "27182818"
ATTACKER = Ed25519PrivateKey.generate()


def _alarm_details(rig: AgentRig, kind: str) -> list[str]:
    """Details of the journaled alarms of ``kind`` (they stay until the server acks them)."""
    return [
        str(event.data["detail"])
        for event in rig.runtime.journal.pending(limit=1000)
        if event.type == "alarm" and event.data["kind"] == kind
    ]


def _wait_for_alarms(rig: AgentRig, kind: str, count: int) -> list[str]:
    assert wait_until(lambda: len(_alarm_details(rig, kind)) >= count), _alarm_details(rig, kind)
    return _alarm_details(rig, kind)


def _reasons(details: list[str]) -> set[str]:
    return {detail.split(":")[0] for detail in details}


def _forged_allow_list(rig: AgentRig, key: Ed25519PrivateKey, version: int) -> bytes:
    """An allow-list for CODE at door 3: hashed with the cabinet's own key (say it was
    stolen from another cabinet's disk), signed with ``key``."""
    body = UnsignedAllowListSync(
        kind="allow_list",
        version=version,
        server_time=datetime.now(UTC),
        full=True,
        entries=[entry(99, 3, CODE)],
        removed=[],
        key_id=key_id_of(key.public_key()),
    )
    return forged.signed_by(key, rig.cabinet_id, body, SyncMessage)


def _barrier(rig: AgentRig, count: int) -> None:
    """Publish an unsigned sync and wait for its alarm: everything published on ``sync``
    before it (same topic, same client, QoS 1: in order) has been handled by then."""
    payload = forged.unsigned("sync", rig.cabinet_id, {"kind": "time", "version": 1})
    rig.server.client.publish(topics.sync(rig.cabinet_id), payload)
    _wait_for_alarms(rig, "sync_rejected", count)


def test_forged_acknowledgements_delete_no_journaled_event_and_are_journaled_as_alarms(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    rig.door(4).force_open()
    published = rig.server.wait(lambda s: s.events_of("door.forced_open", 4))
    ids = sorted({event.event_id for event in rig.server.events})
    assert published
    key_id = key_id_of(ATTACKER.public_key())
    own_key = forged.signed_by(
        ATTACKER, cabinet_id, UnsignedEventAck(event_ids=ids, key_id=key_id), EventAckMessage
    )
    elsewhere = UnsignedEventAck(event_ids=ids, key_id=rig.server.key_id)
    other_cabinet = forged.signed_by(rig.signer.key, "T-other", elsewhere, EventAckMessage)
    attempts = [
        forged.unsigned("evt_ack", cabinet_id, {"event_ids": ids}),
        own_key,
        forged.claiming_key(own_key, rig.signer.key),
        other_cabinet,  # genuine, but the server's ack for another cabinet
    ]

    for payload in attempts:
        rig.server.client.publish(topics.evt_ack(cabinet_id), payload)

    details = _wait_for_alarms(rig, "ack_rejected", len(attempts))
    assert _reasons(details) == {"unsigned", "unknown_key", "bad_signature", "wrong_cabinet"}
    still_journaled = {event.event_id for event in rig.runtime.journal.pending(limit=1000)}
    assert set(ids) <= still_journaled
    assert rig.server.wait(lambda s: s.events_of("alarm"))  # the refusals reach the server

    rig.server.ack_everything_seen()  # the server's own ack still works

    assert wait_until(lambda: not set(ids) & _pending_ids(rig))


def _pending_ids(rig: AgentRig) -> set[str]:
    return {event.event_id for event in rig.runtime.journal.pending(limit=1000)}


def test_a_forged_allow_list_lets_no_code_open_a_door_and_leaks_no_hash_into_the_log(
    cabinet_id: str, make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig(cabinet_id)
    unsigned_list = forged.unsigned(
        "sync",
        cabinet_id,
        {
            "kind": "allow_list",
            "version": 7,
            "server_time": datetime.now(UTC).isoformat(),
            "full": True,
            "entries": [entry(98, 3, CODE).model_dump(mode="json")],
            "removed": [],
        },
    )
    own_key = _forged_allow_list(rig, ATTACKER, version=8)
    attempts = [unsigned_list, own_key, forged.claiming_key(own_key, rig.signer.key)]

    for payload in attempts:
        rig.server.client.publish(topics.sync(cabinet_id), payload)

    details = _wait_for_alarms(rig, "sync_rejected", len(attempts))
    assert _reasons(details) == {"unsigned", "unknown_key", "bad_signature"}
    assert rig.runtime.allow_list.version is None
    outcome = rig.runtime.local_pickup(code=CODE)
    assert (outcome.opened, outcome.reason) == (False, "no_list")
    assert rig.door(3).unlock_pulses == 0
    assert credential_hash(PICKUP_KEY, "code", CODE) not in caplog.text + "".join(details)

    rig.server.send_allow_list(1, [entry(98, 3, CODE)])  # the same list from the server: opens
    assert wait_until(lambda: rig.runtime.allow_list.version == 1)
    assert rig.runtime.local_pickup(code=CODE).opened


def test_a_replayed_old_allow_list_does_not_bring_back_a_code_the_server_withdrew(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    old = rig.server.allow_list(1, [entry(97, 5, CODE)])  # recorded by the attacker
    rig.server.client.publish(topics.sync(cabinet_id), old)
    assert wait_until(lambda: rig.runtime.allow_list.version == 1)
    rig.server.send_allow_list(2, [])  # the parcel was cancelled: its code withdrawn
    assert wait_until(lambda: rig.runtime.allow_list.version == 2)

    rig.server.client.publish(topics.sync(cabinet_id), old)  # genuine signature, old version
    _barrier(rig, 1)

    assert rig.runtime.allow_list.version == 2
    assert not rig.runtime.local_pickup(code=CODE).opened
    assert rig.door(5).unlock_pulses == 0
    assert len(_alarm_details(rig, "sync_rejected")) == 1  # the barrier's: a replay is no forgery


def _an_hour_old_time_sync(rig: AgentRig, version: int) -> bytes:
    """A genuine time sync the attacker recorded an hour ago."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    body = UnsignedTimeSync(
        kind="time", version=version, server_time=an_hour_ago, key_id=rig.server.key_id
    )
    return forged.signed_by(rig.signer.key, rig.cabinet_id, body, SyncMessage, sent_at=an_hour_ago)


def _expired_ten_minutes_ago_is_still_refused(rig: AgentRig) -> None:
    command_id, payload = rig.signer.command("open_door", door=2, issued_ago=660, expires_in=60)
    rig.send(payload)
    assert rig.server.result(command_id).reason == "expired"
    assert rig.door(2).unlock_pulses == 0


def test_a_replayed_time_sync_cannot_pull_the_clock_back_to_revive_an_expired_command(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    rig.server.send_time(datetime.now(UTC) + timedelta(minutes=2), version=5)
    assert wait_until(lambda: rig.runtime.guard.clock_offset.offset > timedelta(seconds=100))

    rig.server.client.publish(topics.sync(cabinet_id), _an_hour_old_time_sync(rig, version=3))
    _barrier(rig, 1)

    assert rig.runtime.guard.clock_offset.offset > timedelta(seconds=100)
    _expired_ten_minutes_ago_is_still_refused(rig)


def test_a_time_sync_older_than_the_allow_list_held_is_a_replay_too(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    """After a restart the cabinet may have seen no time sync yet, but it holds a list
    whose version every older sync (time syncs included) is below."""
    rig = make_rig(cabinet_id)
    rig.server.send_allow_list(4, [])
    assert wait_until(lambda: rig.runtime.allow_list.version == 4)

    rig.server.client.publish(topics.sync(cabinet_id), _an_hour_old_time_sync(rig, version=3))
    _barrier(rig, 1)

    assert rig.runtime.guard.clock_offset.offset == timedelta(0)
    _expired_ten_minutes_ago_is_still_refused(rig)
