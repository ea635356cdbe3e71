"""Server → cabinet messages as someone who can publish on the broker could make them.

They have the contract and any key of their own, never the server's private key, so they
can publish a message without a signature (the format from before ``sync`` and
``evt/ack`` were signed), sign with their own key, name the server's key id over their
own signature, or re-publish a genuine message of another cabinet (or an old one).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from locker_contract import (
    Body,
    encode,
    format_utc,
    key_id_of,
    new_envelope,
    new_message_id,
    sign_message,
    utc_now,
)


def unsigned(message_type: str, cabinet_id: str, body: dict[str, Any]) -> bytes:
    """A well-formed envelope whose body carries no ``key_id`` and no ``signature``."""
    document = {
        "v": 1,
        "type": message_type,
        "id": new_message_id(),
        "sent_at": format_utc(utc_now()),
        "cabinet_id": cabinet_id,
        "body": body,
    }
    return json.dumps(document).encode()


def signed_by(
    key: Ed25519PrivateKey,
    cabinet_id: str,
    body: Body,
    signed_type: type[Any],
    *,
    sent_at: datetime | None = None,
) -> bytes:
    """``body`` (an ``Unsigned…`` body naming ``key``'s id) signed with ``key``."""
    envelope = new_envelope(cabinet_id, body, sent_at=sent_at)
    return encode(sign_message(envelope, key, signed_type))


def claiming_key(payload: bytes, trusted: Ed25519PrivateKey) -> bytes:
    """``payload`` with its ``key_id`` swapped for ``trusted``'s: the signature stays the
    forger's own, so it names a trusted key it cannot verify under."""
    document = json.loads(payload)
    document["body"]["key_id"] = key_id_of(trusted.public_key())
    return json.dumps(document).encode()
