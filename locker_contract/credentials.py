"""Pickup credential hashes shared by server and agent, and the maintenance-token hash.

The server derives one pickup key per cabinet from its own secret and stores, for each
parcel, ``HMAC(cabinet key, kind ‖ value)``. A provisioned agent holds only ITS cabinet
key, so it can check a typed code or scanned QR token while offline without ever holding
the server's key. Trade-off: someone who steals a cabinet key can brute-force the
8-digit codes of parcels in that one cabinet from its allow-list — parcels they could
also reach by attacking the cabinet physically; no other cabinet is exposed.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

CredentialKind = Literal["code", "qr"]

_CABINET_KEY_DOMAIN = b"lockers/v1/cabinet-pickup-key\x00"
_CREDENTIAL_DOMAIN = b"lockers/v1/pickup/"
_TRACKING_DOMAIN = b"lockers/v1/tracking\x00"


def cabinet_pickup_key(server_pickup_key: bytes, cabinet_db_id: int) -> bytes:
    """The 32-byte key of one cabinet (by its database id), derived from the server key."""
    message = _CABINET_KEY_DOMAIN + str(cabinet_db_id).encode("ascii")
    return hmac.new(server_pickup_key, message, hashlib.sha256).digest()


def credential_hash(cabinet_key: bytes, kind: CredentialKind, value: str) -> str:
    """Hex HMAC-SHA256 of a pickup code or QR token under the cabinet's key.

    ``value`` is hashed exactly as given (UTF-8); callers strip what a user may type
    around it (spaces) before calling, the same way on both sides.
    """
    if kind not in ("code", "qr"):
        raise ValueError(f"unknown credential kind {kind!r}")
    message = _CREDENTIAL_DOMAIN + kind.encode("ascii") + b"\x00" + value.encode()
    return hmac.new(cabinet_key, message, hashlib.sha256).hexdigest()


def tracking_hash(cabinet_key: bytes, tracking_number: str) -> str:
    """Hex HMAC-SHA256 of a parcel's tracking number under the cabinet's key.

    The cabinet's reservations carry this instead of the number, so its journal does not
    list who expects which parcel; the agent hashes a scanned label the same way to
    find the reservation while the server is out of reach. ``tracking_number`` is hashed
    as given: both sides strip surrounding whitespace first.
    """
    message = _TRACKING_DOMAIN + tracking_number.encode()
    return hmac.new(cabinet_key, message, hashlib.sha256).hexdigest()


def maintenance_token_hash(token: str) -> str:
    """SHA-256 hex of a maintenance token, as configured for ``open_all``."""
    return hashlib.sha256(token.encode()).hexdigest()
