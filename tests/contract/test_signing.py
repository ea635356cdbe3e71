"""Ed25519 command signatures: what they cover, and every way a command can be forged."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_agent.contract import (
    BadSignature,
    CommandMessage,
    InvalidKey,
    UnknownKey,
    canonical_json,
    decode,
    decode_public_key,
    encode,
    encode_public_key,
    key_id_of,
    sign_command,
    signed_bytes,
    trusted_keys,
    verify_command,
)
from locker_agent.contract.signing import SIGNATURE_DOMAIN, public_key_bytes
from tests.contract import messages

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
