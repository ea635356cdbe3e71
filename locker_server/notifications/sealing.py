"""Sealing pickup secrets while they wait in the outbox.

The pickup code and QR token must reach the recipient, so the outbox has to keep them
until delivery, but never in plaintext: they are sealed with AES-256-GCM under
``keys.outbox_sealing_key`` (kept outside the database). The associated data binds the
blob to its message (event id and channel), so a blob copied onto another row does not open.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from locker_server.notifications.errors import SealingError

_NONCE_BYTES = 12
_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class PickupSecret:
    """What the recipient needs at the locker: the short code and the QR token."""

    code: str
    qr_token: str

    def __repr__(self) -> str:  # never print the secret by accident
        return "PickupSecret(<sealed>)"


def _aesgcm(key: bytes) -> AESGCM:
    return AESGCM(key[:_KEY_BYTES])


def _associated_data(event_id: str, kind: str) -> bytes:
    return f"locker-notification-outbox:v1:{event_id}:{kind}".encode()


def seal(key: bytes, secret: PickupSecret, *, event_id: str, kind: str) -> bytes:
    """Return ``nonce || ciphertext`` for ``secret``, bound to the message it belongs to."""
    plaintext = json.dumps({"code": secret.code, "qr_token": secret.qr_token}).encode()
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _aesgcm(key).encrypt(nonce, plaintext, _associated_data(event_id, kind))


def unseal(key: bytes, blob: bytes, *, event_id: str, kind: str) -> PickupSecret:
    """Open a blob made by :func:`seal`; :class:`SealingError` if it was not made for us."""
    nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    try:
        plaintext = _aesgcm(key).decrypt(nonce, ciphertext, _associated_data(event_id, kind))
    except (InvalidTag, ValueError) as exc:
        raise SealingError("sealed pickup secret does not open for this message") from exc
    values = json.loads(plaintext)
    return PickupSecret(code=str(values["code"]), qr_token=str(values["qr_token"]))
