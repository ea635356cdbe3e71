"""Ed25519 signatures on commands, and public keys as base64 text.

The signature covers ``b"lockers/v1/cmd\\x00" + canonical_json(envelope without
body.signature)``: the target cabinet id, the envelope id, the counter, the expiry and
every other field are signed, so a command cannot be re-targeted, re-dated or re-used
under another id without breaking it. The domain prefix keeps these signatures from
ever being valid for anything else signed with the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from locker_agent.contract.bodies import Command, CommandMessage, UnsignedCommandMessage
from locker_agent.contract.envelope import Envelope, to_json_object
from locker_agent.contract.errors import BadSignature, InvalidKey, UnknownKey

SIGNATURE_DOMAIN = b"lockers/v1/cmd\x00"


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII only: one byte string per JSON value."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def signed_bytes(envelope: Envelope[Any]) -> bytes:
    """What the signature covers: the domain and the envelope without ``body.signature``."""
    document = to_json_object(envelope)
    document["body"].pop("signature", None)
    return SIGNATURE_DOMAIN + canonical_json(document)


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw 32-byte public key: the ``key_id`` a command names."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    """Base64 of the raw public key, as written in agent.toml ``command_public_keys``."""
    return base64.b64encode(public_key_bytes(public_key)).decode("ascii")


def decode_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey("not a base64 raw Ed25519 public key") from exc


def trusted_keys(texts: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """key_id → public key, for ``verify_command``, from base64 texts."""
    keys = (decode_public_key(text) for text in texts)
    return {key_id_of(key): key for key in keys}


def sign_command(
    envelope: UnsignedCommandMessage, private_key: Ed25519PrivateKey
) -> CommandMessage:
    """Sign an unsigned command envelope; its ``key_id`` must be this key's id."""
    if envelope.body.key_id != key_id_of(private_key.public_key()):
        raise InvalidKey("the command's key_id does not belong to the signing key")
    signature = private_key.sign(signed_bytes(envelope))
    body = Command(
        **envelope.body.model_dump(), signature=base64.b64encode(signature).decode("ascii")
    )
    fields = envelope.model_dump(exclude={"body"})
    return CommandMessage(**fields, body=body)


def verify_command(
    envelope: CommandMessage, trusted_public_keys: Mapping[str, Ed25519PublicKey]
) -> None:
    """Raise ``BadSignature`` (``UnknownKey`` for an untrusted key id) unless it verifies."""
    public_key = trusted_public_keys.get(envelope.body.key_id)
    if public_key is None:
        raise UnknownKey(f"command signed with unknown key id {envelope.body.key_id}")
    signature = base64.b64decode(envelope.body.signature)
    try:
        public_key.verify(signature, signed_bytes(envelope))
    except InvalidSignature as exc:
        raise BadSignature("command signature does not verify") from exc
