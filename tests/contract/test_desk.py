"""The courier desk's ``req`` / ``res`` messages: round trips, signatures, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    BadSignature,
    CourierSignIn,
    MalformedMessage,
    ReplyMessage,
    RequestMessage,
    decode,
    encode,
    key_id_of,
    tracking_hash,
    trusted_keys,
    verify_message,
)
from locker_contract.signing import encode_public_key
from tests.contract import messages

KEY = Ed25519PrivateKey.generate()
TRUSTED = trusted_keys([encode_public_key(KEY.public_key())])


def test_a_request_travels_and_comes_back_equal() -> None:
    sent = messages.request()
    assert decode(encode(sent), RequestMessage) == sent


def test_a_signed_reply_round_trips_and_verifies() -> None:
    sent = messages.reply(KEY)
    received = decode(encode(sent), ReplyMessage)
    assert received == sent
    verify_message(received, TRUSTED)
    assert received.body.key_id == key_id_of(KEY.public_key())


def _tampered(change: Any) -> ReplyMessage:
    document = json.loads(encode(messages.reply(KEY)))
    change(document)
    return decode(json.dumps(document).encode(), ReplyMessage)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["body"]["answer"].update(door=3),
        lambda d: d["body"].update(request_id="0" * 32),
        lambda d: d.update(cabinet_id="OTHER-01"),
        lambda d: d["body"].update(expires_at="2030-01-01T00:00:00.000000Z"),
    ],
    ids=["door", "request-id", "cabinet", "expiry"],
)
def test_a_reply_altered_after_signing_never_verifies(change: Any) -> None:
    with pytest.raises(BadSignature):
        verify_message(_tampered(change), TRUSTED)


def test_an_unsigned_reply_does_not_even_decode() -> None:
    document = json.loads(encode(messages.reply(KEY)))
    del document["body"]["signature"]
    with pytest.raises(MalformedMessage):
        decode(json.dumps(document).encode(), ReplyMessage)


def test_a_cabinet_request_is_never_a_verified_server_message() -> None:
    with pytest.raises(BadSignature):
        verify_message(messages.request(), TRUSTED)


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "teleport"},
        {"op": "deposit_lookup", "tracking_number": "A B", "session": None},
        {"op": "courier_sign_in", "credential": "pin", "secret": "x"},
    ],
    ids=["unknown-op", "bad-tracking-number", "unknown-credential"],
)
def test_requests_the_contract_does_not_know_are_malformed(operation: dict[str, Any]) -> None:
    document = json.loads(encode(messages.request()))
    document["body"]["operation"] = operation
    with pytest.raises(MalformedMessage):
        decode(json.dumps(document).encode(), RequestMessage)


def test_a_courier_secret_never_shows_in_a_repr() -> None:
    assert "C0URIER99" not in repr(CourierSignIn(credential="code", secret="C0URIER99"))


def test_tracking_hashes_differ_by_cabinet_key_and_number() -> None:
    one, other = b"k" * 32, b"l" * 32
    assert tracking_hash(one, "SF1") == tracking_hash(one, "SF1")
    assert tracking_hash(one, "SF1") != tracking_hash(other, "SF1")
    assert tracking_hash(one, "SF1") != tracking_hash(one, "SF2")
