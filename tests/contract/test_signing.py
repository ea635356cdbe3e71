"""Ed25519 signatures on cmd, evt_ack and sync: what they cover, and every way to forge one."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    SIGNED_TYPES,
    BadSignature,
    CommandMessage,
    Envelope,
    EventAckMessage,
    InvalidKey,
    MalformedMessage,
    SyncMessage,
    UnknownKey,
    UnsignedEventAck,
    canonical_json,
    decode,
    decode_public_key,
    encode,
    encode_public_key,
    key_id_of,
    new_envelope,
    sign_command,
    sign_message,
    signed_bytes,
    trusted_keys,
    verify_command,
    verify_message,
)
from locker_contract.schemas import ENVELOPES
from locker_contract.signing import SIGNATURE_DOMAIN, public_key_bytes
from tests.contract import messages
from tests.contract.schema_validation import SCHEMA_DIR, assert_matches_schema

SERVER_KEY = Ed25519PrivateKey.generate()
TRUSTED = trusted_keys([encode_public_key(SERVER_KEY.public_key())])


def _tampered(command: CommandMessage, change: Any) -> CommandMessage:
    document = json.loads(encode(command))
    change(document)
    return decode(json.dumps(document).encode(), CommandMessage)


def test_a_signed_command_verifies_after_crossing_the_wire() -> None:
    received = decode(encode(messages.command(SERVER_KEY)), CommandMessage)
    verify_command(received, TRUSTED)


def test_the_signature_is_ed25519_over_the_documented_bytes() -> None:
    """Rebuild the signed bytes from the raw wire JSON, as another implementation would."""
    wire = json.loads(encode(messages.command(SERVER_KEY)))
    signature = base64.b64decode(wire["body"].pop("signature"))
    documented = (
        b"lockers/v1/cmd\x00"
        + json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    )
    SERVER_KEY.public_key().verify(signature, documented)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(cabinet_id="LOBBY-02"),
        lambda d: d.update(id="f" * 32),
        lambda d: d.update(sent_at="2030-01-01T00:00:00.000000Z"),
        lambda d: d["body"].update(door=3),
        lambda d: d["body"].update(counter=d["body"]["counter"] + 1),
        lambda d: d["body"].update(expires_at="2030-01-01T00:00:00.000000Z"),
        lambda d: d["body"].update(command_id="e" * 32),
        lambda d: d["body"].update(reason="other reason"),
    ],
    ids=["re-targeted", "envelope-id", "sent-at", "door", "counter", "expiry", "command-id", "why"],
)
def test_changing_any_signed_field_breaks_the_signature(change: Any) -> None:
    forged = _tampered(messages.command(SERVER_KEY), change)
    with pytest.raises(BadSignature):
        verify_command(forged, TRUSTED)


def test_a_flipped_signature_bit_is_caught() -> None:
    def flip(document: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(document["body"]["signature"]))
        raw[10] ^= 0x01
        document["body"]["signature"] = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(BadSignature):
        verify_command(_tampered(messages.command(SERVER_KEY), flip), TRUSTED)


def test_a_command_from_an_attackers_own_key_names_an_unknown_key() -> None:
    attacker = Ed25519PrivateKey.generate()
    with pytest.raises(UnknownKey) as caught:
        verify_command(messages.command(attacker), TRUSTED)
    assert isinstance(caught.value, BadSignature)


def test_an_attacker_cannot_borrow_the_servers_key_id() -> None:
    attacker = Ed25519PrivateKey.generate()
    real = messages.command(SERVER_KEY)
    unsigned = messages.unsigned_command(attacker)
    forged_body = unsigned.body.model_dump() | {
        "key_id": real.body.key_id,
        "signature": base64.b64encode(attacker.sign(signed_bytes(unsigned))).decode(),
    }
    forged = CommandMessage(**(unsigned.model_dump() | {"body": forged_body}))
    with pytest.raises(BadSignature):
        verify_command(forged, TRUSTED)


def test_signing_with_a_key_other_than_the_named_one_is_refused() -> None:
    with pytest.raises(InvalidKey):
        sign_command(messages.unsigned_command(SERVER_KEY), Ed25519PrivateKey.generate())


def test_rotating_keys_trusts_old_and_new_until_the_old_is_removed() -> None:
    new_key = Ed25519PrivateKey.generate()
    both = trusted_keys(encode_public_key(k.public_key()) for k in (SERVER_KEY, new_key))
    verify_command(messages.command(SERVER_KEY), both)
    verify_command(messages.command(new_key), both)
    with pytest.raises(UnknownKey):
        verify_command(
            messages.command(SERVER_KEY), trusted_keys([encode_public_key(new_key.public_key())])
        )


def test_canonical_json_is_sorted_compact_and_ascii() -> None:
    assert canonical_json({"b": 1, "a": ["\u00e9", None]}) == b'{"a":["\\u00e9",null],"b":1}'


def test_signed_bytes_start_with_the_domain_and_leave_out_the_signature() -> None:
    command = messages.command(SERVER_KEY)
    covered = signed_bytes(command)
    assert covered.startswith(SIGNATURE_DOMAIN)
    assert command.body.signature.encode() not in covered
    assert b'"cabinet_id":"LOBBY-01"' in covered


def test_public_keys_travel_as_base64_raw_and_are_named_by_their_sha256() -> None:
    public = SERVER_KEY.public_key()
    text = encode_public_key(public)
    assert len(base64.b64decode(text)) == 32
    assert public_key_bytes(decode_public_key(text)) == public_key_bytes(public)
    assert key_id_of(public) == hashlib.sha256(base64.b64decode(text)).hexdigest()


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_public_key_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        decode_public_key(text)


# --- evt_ack and sync: signed like commands ------------------------------------------------

SIGNED_EXAMPLES: dict[str, tuple[Callable[[Ed25519PrivateKey], Envelope[Any]], Any]] = {
    "evt_ack": (messages.event_ack, EventAckMessage),
    "allow_list": (messages.allow_list_sync, SyncMessage),
    "config": (messages.config_sync, SyncMessage),
    "time": (messages.time_sync, SyncMessage),
}


def _wire(name: str, key: Ed25519PrivateKey = SERVER_KEY) -> tuple[dict[str, Any], Any]:
    build, message_type = SIGNED_EXAMPLES[name]
    return json.loads(encode(build(key))), message_type


@pytest.mark.parametrize("name", SIGNED_EXAMPLES)
def test_a_signed_ack_or_sync_verifies_after_crossing_the_wire(name: str) -> None:
    document, message_type = _wire(name)
    verify_message(decode(json.dumps(document).encode(), message_type), TRUSTED)


@pytest.mark.parametrize("name", SIGNED_EXAMPLES)
def test_an_ack_or_sync_signature_is_ed25519_over_its_own_domain(name: str) -> None:
    document, _ = _wire(name)
    signature = base64.b64decode(document["body"].pop("signature"))
    documented = (
        b"lockers/v1/"
        + document["type"].encode()
        + b"\x00"
        + json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    )
    SERVER_KEY.public_key().verify(signature, documented)
    with pytest.raises(InvalidSignature):  # the same bytes under the command domain: no
        SERVER_KEY.public_key().verify(signature, SIGNATURE_DOMAIN + documented.split(b"\x00")[1])


def _every_field(document: dict[str, Any]) -> list[tuple[str, ...]]:
    """Paths to every leaf of the document except the signature itself."""
    paths: list[tuple[str, ...]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict) and node:
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list) and node:
            for index, child in enumerate(node):
                walk(child, (*path, str(index)))
        elif path != ("body", "signature"):
            paths.append(path)

    walk(document, ())
    return paths


def _changed(value: Any) -> Any:
    """Another valid value of the same shape (the forged message must still decode)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "ef" * 32  # a null hash of an allow-list entry becomes a hash
    if value == []:
        return [1]  # an empty list of removed parcels names one
    if value.endswith("Z"):
        return "2030-01-01T00:00:00.000000Z"
    if len(value) in (32, 64) and all(c in "0123456789abcdef" for c in value):
        return ("0" if value[0] != "0" else "1") + value[1:]
    return value + "x"


@pytest.mark.parametrize("name", SIGNED_EXAMPLES)
def test_changing_any_field_of_a_signed_ack_or_sync_breaks_the_signature(name: str) -> None:
    document, message_type = _wire(name)
    unchangeable = {("v",), ("type",), ("body", "kind")}  # another value would not decode
    fields = [path for path in _every_field(document) if path not in unchangeable]
    assert ("cabinet_id",) in fields
    assert ("body", "key_id") in fields
    for path in fields:
        forged = json.loads(json.dumps(document))
        *parents, leaf = path
        node = forged
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = _changed(node[int(leaf)])
        else:
            node[leaf] = _changed(node[leaf])
        message = decode(json.dumps(forged).encode(), message_type)
        expected = UnknownKey if path == ("body", "key_id") else BadSignature
        with pytest.raises(expected):
            verify_message(message, TRUSTED)


@pytest.mark.parametrize("name", SIGNED_EXAMPLES)
def test_an_ack_or_sync_signed_by_an_attackers_key_names_an_unknown_key(name: str) -> None:
    document, message_type = _wire(name, Ed25519PrivateKey.generate())
    with pytest.raises(UnknownKey):
        verify_message(decode(json.dumps(document).encode(), message_type), TRUSTED)


@pytest.mark.parametrize("name", SIGNED_EXAMPLES)
def test_an_unsigned_ack_or_sync_is_not_a_message_at_all(name: str) -> None:
    document, message_type = _wire(name)
    del document["body"]["signature"]
    with pytest.raises(MalformedMessage, match="signature"):
        decode(json.dumps(document).encode(), message_type)
    with pytest.raises(jsonschema.ValidationError):
        assert_matches_schema(document)


def test_a_signed_command_is_not_a_signed_ack() -> None:
    """The signature covers the type and the domain: nothing carries over between types."""
    command = json.loads(encode(messages.command(SERVER_KEY)))
    ack = json.loads(encode(messages.event_ack(SERVER_KEY)))
    ack["body"]["signature"] = command["body"]["signature"]
    with pytest.raises(BadSignature):
        verify_message(decode(json.dumps(ack).encode(), EventAckMessage), TRUSTED)


def test_only_the_types_the_server_signs_ever_verify() -> None:
    with pytest.raises(BadSignature, match="no signature"):
        verify_message(messages.presence(), TRUSTED)


def test_signing_an_ack_with_a_key_other_than_the_named_one_is_refused() -> None:
    unsigned = new_envelope(
        messages.CABINET,
        UnsignedEventAck(event_ids=["a" * 32], key_id=key_id_of(SERVER_KEY.public_key())),
    )
    with pytest.raises(InvalidKey):
        sign_message(unsigned, Ed25519PrivateKey.generate(), EventAckMessage)


README_EXAMPLE_KEY = "DYi6nPaZoTy5CTytGsBbUPvs1KBbhWoW6qa7v5bXENA="
#: the example ``res`` was signed later, with a second example key
README_REPLY_EXAMPLE_KEY = "5J/44R8ZEY4LQPLjwKWKJ9ZdQFmsoZDpXNtkCXQHzjE="


def test_the_signed_readme_examples_verify_with_the_documented_example_key() -> None:
    text = (SCHEMA_DIR / "README.md").read_text("utf-8")
    assert README_EXAMPLE_KEY in text
    assert README_REPLY_EXAMPLE_KEY in text
    documents = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    signed = [doc for doc in documents if doc.get("type") in SIGNED_TYPES]
    assert {doc["type"] for doc in signed} == set(SIGNED_TYPES)
    for document in signed:
        message = decode(json.dumps(document).encode(), ENVELOPES[document["type"]])
        verify_message(message, trusted_keys([README_EXAMPLE_KEY, README_REPLY_EXAMPLE_KEY]))
