"""Body rules beyond types: event kinds and their data, batch sizes, command shapes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from locker_contract import (
    MAX_EVENTS_PER_MESSAGE,
    AllowListSync,
    EventBatch,
    OfflinePickupData,
    RejectReason,
    encode,
    is_droppable,
)
from locker_contract.bodies import CommandResult, DoorSnapshot
from tests.contract import messages

KEY = Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    "event_type",
    ["door.opened", "door.open_outcome_unknown", "deposit", "telemetry.temperature", "alarm"],
)
def test_known_event_types_are_accepted(event_type: str) -> None:
    data: dict[str, Any] = {"kind": "tamper"} if event_type == "alarm" else {}
    assert messages.event(event_type, **data).type == event_type


@pytest.mark.parametrize("event_type", ["door.exploded", "telemetry.", "Pickup", "custom"])
def test_unknown_event_types_are_refused(event_type: str) -> None:
    with pytest.raises(ValidationError):
        messages.event(event_type)


def test_a_refused_pickup_event_cannot_carry_the_code_that_was_tried() -> None:
    with pytest.raises(ValidationError, match="code"):
        messages.event("pickup.refused", reason="no_match", code="12345678")


def test_an_offline_pickup_event_states_parcels_credential_and_list_version() -> None:
    event = messages.event(
        "pickup", mode="offline", parcel_ids=[3, 4], credential="qr", allow_list_version=9
    )
    assert event.typed_data() == OfflinePickupData(
        mode="offline", parcel_ids=[3, 4], credential="qr", allow_list_version=9
    )
    with pytest.raises(ValidationError):
        messages.event("pickup", mode="online", parcel_ids=[3], credential="qr")


def test_only_telemetry_may_be_dropped() -> None:
    assert is_droppable("telemetry.rssi")
    assert not any(map(is_droppable, ["door.opened", "deposit", "pickup", "alarm"]))


@pytest.mark.parametrize("count", [0, MAX_EVENTS_PER_MESSAGE + 1])
def test_an_event_message_carries_1_to_100_events(count: int) -> None:
    with pytest.raises(ValidationError, match="events"):
        EventBatch(events=[messages.event(seq=i + 1) for i in range(count)])


def test_one_event_cannot_appear_twice_in_a_batch() -> None:
    event = messages.event()
    with pytest.raises(ValidationError, match="unique"):
        EventBatch(events=[event, event])


def test_a_batch_with_no_earlier_unacknowledged_event_is_what_an_older_server_accepts() -> None:
    batch = EventBatch(events=[messages.event()])
    assert set(json.loads(batch.model_dump_json())) == {"events"}
    follows = EventBatch(events=[messages.event(seq=2)], after_event="b" * 32)
    assert json.loads(follows.model_dump_json())["after_event"] == "b" * 32


def test_a_batch_cannot_follow_one_of_its_own_events() -> None:
    event = messages.event()
    with pytest.raises(ValidationError, match="after_event"):
        EventBatch(events=[event], after_event=event.event_id)


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "open_door", "door": None},
        {"action": "ping", "door": 2},
        {"action": "open_all", "door": 1},
        {"lifetime": timedelta(0)},
        {"action": "reboot"},
    ],
    ids=["open-without-door", "ping-with-door", "open-all-with-door", "no-lifetime", "action"],
)
def test_commands_of_impossible_shape_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        messages.unsigned_command(KEY, **fields)


def test_a_rejection_result_names_one_of_the_contract_reasons() -> None:
    for reason in RejectReason:
        assert messages.command_result("rejected", reason=reason.value).body.reason == reason
    with pytest.raises(ValidationError):
        CommandResult(
            command_id="0" * 32, status="rejected", reason="because", outcome=None, counter=None
        )


def test_an_allow_list_entry_needs_a_code_or_a_qr_hash() -> None:
    with pytest.raises(ValidationError, match="code_hash or a qr_hash"):
        messages.allow_list_entry(code_hash=None, qr_hash=None)
    with pytest.raises(ValidationError):
        messages.allow_list_entry(code_hash="12345678")  # a plain code is not a hash


def test_a_state_snapshot_is_keyed_by_door_numbers() -> None:
    snapshot = messages.state().body
    assert snapshot.door(2) == DoorSnapshot(state="open", occupied=None)
    assert snapshot.door(9) is None
    with pytest.raises(ValidationError):
        type(snapshot)(version=1, doors={"0": snapshot.doors["1"]})


def test_sync_bodies_need_their_kind() -> None:
    body = messages.allow_list_sync().body
    with pytest.raises(ValidationError):
        AllowListSync(**(body.model_dump() | {"kind": "time"}))


def test_an_ack_names_at_least_one_event_or_command_result() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        messages.event_ack(KEY, event_ids=[], result_ids=[])
    results_only = messages.event_ack(KEY, event_ids=[], result_ids=["a" * 32])
    assert results_only.body.result_ids == ["a" * 32]


def test_an_ack_of_events_only_carries_no_result_ids_on_the_wire() -> None:
    """Agents that predate ``result_ids`` refuse unknown fields: an ack of events only
    must stay exactly what they accept."""
    wire = json.loads(encode(messages.event_ack(KEY)))
    assert set(wire["body"]) == {"event_ids", "key_id", "signature"}
