"""Envelopes on the wire: round trips, timestamps, and refusal of anything malformed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from locker_contract import (
    MAX_PAYLOAD_BYTES,
    CommandMessage,
    ContractError,
    Envelope,
    EventMessage,
    MalformedMessage,
    Presence,
    PresenceMessage,
    StateMessage,
    SyncMessage,
    UnsupportedVersion,
    decode,
    encode,
    new_envelope,
    new_message_id,
)
from locker_contract.schemas import ENVELOPES
from tests.contract import messages

KEY = Ed25519PrivateKey.generate()


def _raw(envelope: Envelope[Any]) -> dict[str, Any]:
    return json.loads(encode(envelope))  # type: ignore[no-any-return]


def _bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize("envelope", messages.every_message(KEY), ids=lambda e: e.type)
def test_every_message_type_survives_the_wire_unchanged(envelope: Envelope[Any]) -> None:
    decoded = decode(encode(envelope), ENVELOPES[envelope.type])
    assert decoded == envelope
    assert encode(decoded) == encode(envelope)


def test_sync_messages_decode_to_their_own_kind() -> None:
    kinds = [
        type(decode(encode(m), SyncMessage).body).__name__
        for m in (messages.allow_list_sync(), messages.config_sync(), messages.time_sync())
    ]
    assert kinds == ["AllowListSync", "ConfigSync", "TimeSync"]


def test_encoding_is_compact_utf8_json() -> None:
    payload = encode(messages.presence())
    assert b" " not in payload
    assert payload.decode("utf-8").startswith('{"v":1,"type":"presence","id":"')


def test_timestamps_are_written_in_utc_with_microseconds_and_z() -> None:
    tokyo = timezone(timedelta(hours=9))
    sent = datetime(2026, 11, 26, 19, 0, 0, tzinfo=tokyo)
    body = Presence(status="online", connection=1, agent_version="1")
    raw = _raw(new_envelope("A", body, sent_at=sent))
    assert raw["sent_at"] == "2026-11-26T10:00:00.000000Z"


def test_a_timestamp_with_an_offset_reads_as_the_same_instant() -> None:
    raw = _raw(messages.presence())
    raw["sent_at"] = "2026-11-26T11:00:00.5+01:00"
    decoded = decode(_bytes(raw), PresenceMessage)
    assert decoded.sent_at == datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=UTC)
    assert decoded.sent_at.tzinfo == UTC


@pytest.mark.parametrize(
    "sent_at",
    [
        "2026-11-26T10:00:00",  # no offset: whose local time?
        "2026-11-26 10:00:00Z",
        "2026-11-26T10:00:00.1234567Z",
        "26/11/2026 10:00",
        1_790_000_000,
        None,
    ],
)
def test_timestamps_without_a_clear_utc_instant_are_refused(sent_at: object) -> None:
    raw = _raw(messages.presence())
    raw["sent_at"] = sent_at
    with pytest.raises(MalformedMessage, match="sent_at"):
        decode(_bytes(raw), PresenceMessage)


def test_a_naive_datetime_cannot_be_put_in_an_envelope() -> None:
    body = Presence(status="online", connection=1, agent_version="1")
    with pytest.raises(MalformedMessage):
        new_envelope("A", body, sent_at=datetime(2026, 11, 26, 10, 0))


@pytest.mark.parametrize("where", ["envelope", "body"])
def test_unknown_fields_are_rejected_not_ignored(where: str) -> None:
    raw = _raw(messages.presence())
    (raw if where == "envelope" else raw["body"])["priority"] = "high"
    with pytest.raises(MalformedMessage, match="priority"):
        decode(_bytes(raw), PresenceMessage)


def test_a_message_of_another_type_is_not_taken_for_the_expected_one() -> None:
    with pytest.raises(MalformedMessage):
        decode(encode(messages.presence()), CommandMessage)


def test_the_type_field_must_name_the_body_it_carries() -> None:
    raw = _raw(messages.state())
    raw["type"] = "presence"
    with pytest.raises(MalformedMessage, match="type"):
        decode(_bytes(raw), StateMessage)


def test_a_newer_schema_version_is_reported_as_unsupported() -> None:
    raw = _raw(messages.presence())
    raw["v"] = 2
    with pytest.raises(UnsupportedVersion) as caught:
        decode(_bytes(raw), PresenceMessage)
    assert caught.value.version == 2


@pytest.mark.parametrize("version", ["1", True, 1.0, None])
def test_a_version_that_is_not_the_integer_1_is_malformed(version: object) -> None:
    raw = _raw(messages.presence())
    raw["v"] = version
    with pytest.raises(MalformedMessage):
        decode(_bytes(raw), PresenceMessage)


@pytest.mark.parametrize(
    ("field", "value"),
    [("connection", "7"), ("connection", 7.0), ("connection", True), ("connection", 0)],
)
def test_numbers_are_never_coerced_from_other_types(field: str, value: object) -> None:
    raw = _raw(messages.presence())
    raw["body"][field] = value
    with pytest.raises(MalformedMessage, match=field):
        decode(_bytes(raw), PresenceMessage)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"null",
        b"[]",
        b'"presence"',
        b"\xff\xfe{}",
        b'{"v": 1',
        b'{"v": 1}',
        b"[" * 50_000 + b"]" * 50_000,
    ],
    ids=["empty", "null", "array", "string", "not-utf8", "truncated", "no-fields", "deep"],
)
def test_malformed_payloads_raise_malformed_message(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(payload, PresenceMessage)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_are_refused(constant: str) -> None:
    payload = encode(messages.config_sync()).replace(b"120", constant.encode())
    assert constant.encode() in payload
    with pytest.raises(MalformedMessage, match="not a JSON number"):
        decode(payload, SyncMessage)


def test_an_oversized_payload_is_refused_before_parsing() -> None:
    raw = _raw(messages.presence())
    raw["body"]["agent_version"] = "x" * MAX_PAYLOAD_BYTES
    with pytest.raises(MalformedMessage, match="exceeds"):
        decode(_bytes(raw), PresenceMessage)


def test_errors_name_the_field_but_never_echo_the_value() -> None:
    raw = _raw(messages.command(KEY, action="open_all", door=None, maintenance_token="s3cr3t"))
    raw["body"]["counter"] = "s3cr3t-counter"
    with pytest.raises(MalformedMessage) as caught:
        decode(_bytes(raw), CommandMessage)
    assert "counter" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_message_ids_are_fresh_uuid4_hex() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 and i[12] == "4" for i in ids)


def test_cabinet_ids_in_envelopes_follow_the_topic_rules() -> None:
    with pytest.raises(MalformedMessage, match="cabinet_id"):
        new_envelope("LOBBY/01", messages.time_sync().body)


# --- properties: nothing but ContractError ever leaves decode -----------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
TARGETS = [PresenceMessage, StateMessage, EventMessage, CommandMessage, SyncMessage]


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200), target=st.sampled_from(TARGETS))
def test_random_bytes_only_ever_raise_contract_errors(payload: bytes, target: Any) -> None:
    with pytest.raises(ContractError):
        decode(payload, target)


@settings(max_examples=300, deadline=None)
@given(document=json_values, target=st.sampled_from(TARGETS))
def test_random_json_only_ever_raises_contract_errors(document: object, target: Any) -> None:
    with pytest.raises(ContractError):
        decode(json.dumps(document).encode(), target)


def _mutate(document: Any, path: list[Any], value: object) -> None:
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    found = [prefix] if prefix else []
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


@settings(max_examples=300, deadline=None)
@given(data=st.data(), value=json_values)
def test_a_valid_message_with_any_field_replaced_decodes_or_raises_contract_error(
    data: st.DataObject, value: object
) -> None:
    envelope = data.draw(st.sampled_from(messages.every_message(KEY)))
    document = _raw(envelope)
    path = data.draw(st.sampled_from(_paths(document)))
    _mutate(document, list(path), value)
    try:
        decoded = decode(_bytes(document), ENVELOPES[envelope.type])
    except ContractError:
        return
    assert decode(encode(decoded), ENVELOPES[envelope.type]) == decoded
