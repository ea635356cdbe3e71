"""Ed25519 signatures on every server → cabinet message, and public keys as base64 text.

The server signs ``cmd``, ``evt_ack``, ``sync`` and ``res`` (:data:`SIGNED_TYPES`) with one key
(``command_signing_key``). The body names the key (``key_id``) and carries the signature
(``signature``), which covers ``b"lockers/v1/" + type + b"\\x00" + canonical_json(envelope
without body.signature)``: the target cabinet id, the envelope id, ``sent_at`` and every
body field are signed, so a message cannot be re-targeted, re-dated or altered without
breaking it. The domain prefix (``lockers/v1/cmd\\x00`` for commands, as before) keeps a
signature of one message type from ever being valid for another, or for anything else
signed with the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from locker_contract.bodies import CommandMessage, UnsignedCommandMessage
from locker_contract.envelope import Envelope, EnvelopeT, MessageType, to_json_object
from locker_contract.errors import BadSignature, InvalidKey, MalformedMessage, UnknownKey

#: the message types the server signs: everything it sends a cabinet
SIGNED_TYPES: Final[frozenset[MessageType]] = frozenset({"cmd", "evt_ack", "sync", "res"})


def signature_domain(message_type: str) -> bytes:
    """``b"lockers/v1/<type>\\x00"``: what a signature of that message type starts with."""
    return b"lockers/v1/" + message_type.encode("ascii") + b"\x00"


#: the domain of command signatures (unchanged since commands were the only signed type)
SIGNATURE_DOMAIN: Final = signature_domain("cmd")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII only: one byte string per JSON value."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def signed_bytes(envelope: Envelope[Any]) -> bytes:
    """What the signature covers: the domain and the envelope without ``body.signature``."""
    return _signed_bytes(to_json_object(envelope))


def _signed_bytes(document: dict[str, Any]) -> bytes:
    body = {key: value for key, value in document["body"].items() if key != "signature"}
    return signature_domain(document["type"]) + canonical_json(document | {"body": body})


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


def sign_message(
    envelope: Envelope[Any], private_key: Ed25519PrivateKey, signed_type: type[EnvelopeT]
) -> EnvelopeT:
    """Sign an unsigned server message; its body's ``key_id`` must be this key's id.

    ``signed_type`` is what it becomes (``CommandMessage``, ``EventAckMessage``,
    ``SyncMessage``): the same envelope with ``body.signature`` added.
    """
    document = to_json_object(envelope)
    if document["body"].get("key_id") != key_id_of(private_key.public_key()):
        raise InvalidKey(f"the {envelope.type}'s key_id does not belong to the signing key")
    signature = private_key.sign(_signed_bytes(document))
    document["body"]["signature"] = base64.b64encode(signature).decode("ascii")
    try:
        return signed_type.model_validate_json(canonical_json(document))
    except ValidationError as exc:
        raise MalformedMessage(f"a signed {envelope.type} is not a {signed_type.__name__}") from exc


def verify_message(
    envelope: Envelope[Any], trusted_public_keys: Mapping[str, Ed25519PublicKey]
) -> None:
    """Raise ``BadSignature`` (``UnknownKey`` for an untrusted key id) unless it verifies.

    A message of a type the server does not sign, or without a signature, never verifies.
    """
    key_id = getattr(envelope.body, "key_id", None)
    signature = getattr(envelope.body, "signature", None)
    if envelope.type not in SIGNED_TYPES or key_id is None or signature is None:
        raise BadSignature(f"a {envelope.type} message carries no signature")
    public_key = trusted_public_keys.get(key_id)
    if public_key is None:
        raise UnknownKey(f"{envelope.type} signed with unknown key id {key_id}")
    try:
        public_key.verify(base64.b64decode(signature), signed_bytes(envelope))
    except InvalidSignature as exc:
        raise BadSignature(f"{envelope.type} signature does not verify") from exc


def sign_command(
    envelope: UnsignedCommandMessage, private_key: Ed25519PrivateKey
) -> CommandMessage:
    """Sign an unsigned command envelope; its ``key_id`` must be this key's id."""
    return sign_message(envelope, private_key, CommandMessage)


def verify_command(
    envelope: CommandMessage, trusted_public_keys: Mapping[str, Ed25519PublicKey]
) -> None:
    """Raise ``BadSignature`` (``UnknownKey`` for an untrusted key id) unless it verifies."""
    verify_message(envelope, trusted_public_keys)
