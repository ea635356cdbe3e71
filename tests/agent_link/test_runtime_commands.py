"""Signed door commands through the real broker to the simulated boards."""

from __future__ import annotations

import pytest

from locker_contract import (
    EventAckMessage,
    RejectReason,
    UnsignedEventAck,
    encode,
    key_id_of,
    new_envelope,
    sign_message,
    topics,
)
from simulators.mosquitto import PrivateMosquitto
from tests.agent_link.conftest import PRIVATE_CABINET as CABINET
from tests.agent_link.conftest import PRIVATE_PASSWORD as PASSWORD
from tests.agent_link.conftest import RigFactory
from tests.agent_link.rig import MAINTENANCE_TOKEN, AgentRig, Signer, wait_until


def rejection_alarms(rig: AgentRig) -> list[str]:
    return [
        str(e.data.get("detail", ""))
        for e in rig.server.events_of("alarm")
        if e.data.get("kind") == "command_rejected"
    ]


def test_valid_signed_open_opens_the_door_exactly_once_and_reports_received_then_succeeded(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    command_id, payload = rig.signer.command("open_door", door=3)

    rig.send(payload)

    result = rig.server.result(command_id)
    assert (result.status, result.outcome) == ("succeeded", "confirmed")
    assert rig.server.statuses(command_id) == ["received", "succeeded"]
    assert rig.door(3).unlock_pulses == 1
    assert rig.door(3).is_open
    assert rig.server.wait(lambda s: s.events_of("door.open_confirmed", 3))
    assert not rig.server.events_of("door.forced_open", 3)


def test_the_same_command_delivered_again_never_opens_a_second_time(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    command_id, payload = rig.signer.command("open_door", door=2)
    rig.send(payload)
    assert rig.server.result(command_id).status == "succeeded"
    rig.door(2).close()

    rig.send(payload)  # a replay by an attacker, or a duplicate delivery

    assert rig.server.wait(lambda s: s.statuses(command_id).count("rejected") == 1)
    rejected = [r for r in rig.server.results if r.status == "rejected"]
    assert rejected[0].reason == RejectReason.REPLAYED_COUNTER
    assert rig.door(2).unlock_pulses == 1


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("expired", "expired"),
        ("retargeted", RejectReason.WRONG_CABINET),
        ("forged", RejectReason.UNKNOWN_KEY),
        ("tampered", RejectReason.BAD_SIGNATURE),
        ("old_counter", RejectReason.REPLAYED_COUNTER),
        ("open_all_without_token", RejectReason.MAINTENANCE_REQUIRED),
        ("unknown_door", RejectReason.UNKNOWN_DOOR),
    ],
)
def test_bad_commands_published_straight_onto_the_broker_never_pulse_a_door(
    cabinet_id: str, make_rig: RigFactory, attack: str, reason: str
) -> None:
    rig = make_rig(cabinet_id)
    first_id, first = rig.signer.command("ping", door=None)
    rig.send(first)
    assert rig.server.result(first_id).status == "succeeded"  # counter is now 1
    command_id, payload = _attack(rig, attack)

    rig.send(payload)

    result = rig.server.result(command_id)
    assert result.reason == reason
    assert result.status == ("expired" if attack == "expired" else "rejected")
    assert "received" not in rig.server.statuses(command_id)
    assert rig.server.wait(lambda s: any(command_id in d for d in rejection_alarms(rig)))
    assert all(rig.door(n).unlock_pulses == 0 for n in range(1, 9))


def _attack(rig: AgentRig, attack: str) -> tuple[str, bytes]:
    signer = rig.signer
    if attack == "expired":
        return signer.command(issued_ago=120, expires_in=60)
    if attack == "retargeted":  # a genuine command for another cabinet, relayed to ours
        return signer.command(cabinet_id=rig.cabinet_id + "-OTHER")
    if attack == "forged":
        return Signer(rig.cabinet_id).command()
    if attack == "tampered":
        command_id, payload = signer.command(door=1)
        return command_id, payload.replace(b'"door":1', b'"door":2')
    if attack == "old_counter":
        return signer.command(counter=1)
    if attack == "open_all_without_token":
        return signer.command("open_all", door=None)
    return signer.command(door=99)


def test_retained_command_is_never_acted_on(cabinet_id: str, make_rig: RigFactory) -> None:
    rig = make_rig(cabinet_id, start=False)
    waiting_id, waiting = rig.signer.command("open_door", door=1)
    rig.send(waiting, retain=True)  # sits on the broker until the cabinet subscribes
    try:
        rig.runtime.start()
        assert rig.runtime.link.wait_connected(5)
        assert rig.server.result(waiting_id).reason == RejectReason.RETAINED
        live_id, live = rig.signer.command("open_door", door=2)
        rig.send(live, retain=True)  # published with the flag while the cabinet listens
        assert rig.server.result(live_id).reason == RejectReason.RETAINED
        rig.server.ping(rig.signer)  # door commands run one at a time: any before it is done
        assert rig.door(1).unlock_pulses == 0
        assert rig.door(2).unlock_pulses == 0
    finally:
        rig.send(b"", retain=True)  # clear the retained message from the shared broker


def test_open_all_with_the_maintenance_token_opens_every_door_once(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    command_id, payload = rig.signer.command(
        "open_all", door=None, maintenance_token=MAINTENANCE_TOKEN
    )

    rig.send(payload)

    assert rig.server.result(command_id, timeout=15).status == "succeeded"
    assert [rig.door(n).unlock_pulses for n in range(1, 9)] == [1] * 8


def test_cabinet_caps_remote_opens_per_minute(cabinet_id: str, make_rig: RigFactory) -> None:
    rig = make_rig(cabinet_id, max_remote_opens_per_minute=2)
    ids = []
    for door in (1, 2, 3):
        command_id, payload = rig.signer.command("open_door", door=door)
        ids.append(command_id)
        rig.send(payload)
    results = [rig.server.result(command_id) for command_id in ids]

    assert [r.status for r in results] == ["succeeded", "succeeded", "rejected"]
    assert results[2].reason == RejectReason.RATE_LIMITED
    assert rig.door(3).unlock_pulses == 0


def test_command_result_decided_while_the_link_is_down_survives_a_restart_and_is_reported(
    private_broker: PrivateMosquitto, make_rig: RigFactory
) -> None:
    rig = make_rig(CABINET, broker=private_broker, password=PASSWORD)
    rig.door(3).faults.jammed = True  # the answer takes the whole confirm window
    command_id, payload = rig.signer.command("open_door", door=3)
    rig.send(payload)
    assert rig.server.wait(lambda s: s.statuses(command_id) == ["received"])
    private_broker.stop()
    assert wait_until(lambda: rig.runtime.journal.pending_results(), 5)
    journal = rig.runtime.journal.path
    rig.runtime.stop()
    private_broker.start()

    revived = make_rig(CABINET, broker=private_broker, password=PASSWORD, journal=journal)

    result = revived.server.result(command_id)
    assert (result.status, result.outcome) == ("failed", "jammed")
    revived.server.ack_results(command_id)
    assert wait_until(lambda: not revived.runtime.journal.pending_results())
    assert rig.door(3).unlock_pulses == 1
    assert revived.door(3).unlock_pulses == 0  # reported, never tried again


def test_a_final_result_is_sent_again_until_the_server_acknowledges_it(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id, ack_timeout=0.3)
    command_id, payload = rig.signer.command("open_door", door=5)
    rig.send(payload)

    # the broker acknowledged the first copy long ago: only the server's ack ends the copies
    assert rig.server.wait(lambda s: len(s.result_ids.get(command_id, [])) >= 3)
    assert rig.runtime.journal.pending_results()
    copies = set(rig.server.result_ids[command_id])
    assert len(copies) == 1, "every copy is the journaled message, byte for byte"
    assert rig.server.statuses(command_id).count("received") == 1  # never kept or re-sent

    rig.server.ack_results(command_id)

    assert wait_until(lambda: not rig.runtime.journal.pending_results())
    assert rig.door(5).unlock_pulses == 1


def test_a_forged_result_acknowledgement_keeps_the_result(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id, ack_timeout=0.3)
    command_id, payload = rig.signer.command("ping", door=None)
    rig.send(payload)
    assert rig.server.result(command_id).status == "succeeded"
    [message_id] = set(rig.server.result_ids[command_id])
    attacker = Signer(cabinet_id).key  # a key the cabinet does not trust
    body = UnsignedEventAck(
        event_ids=[], result_ids=[message_id], key_id=key_id_of(attacker.public_key())
    )
    forged_ack = encode(sign_message(new_envelope(cabinet_id, body), attacker, EventAckMessage))

    rig.server.client.publish(topics.evt_ack(cabinet_id), forged_ack)

    assert rig.server.wait(
        lambda s: any(e.data.get("kind") == "ack_rejected" for e in s.events_of("alarm"))
    )
    [kept] = rig.runtime.journal.pending_results()
    assert (kept.command_id, kept.message_id) == (command_id, message_id)
