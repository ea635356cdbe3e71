"""Canonical serialisation, entry hashes and checkpoint messages (format ``locker-audit-v1``).

Pure functions, no database: the online verifier, the exporter and the offline bundle
verifier all hash through this module, so they cannot disagree.

Canonical bytes of an entry
    The UTF-8 bytes of a compact JSON array (``json.dumps(values, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)``) of these 16 values, in this order::

        seq, recorded_at, device_time, actor_type, actor_id, action, outcome,
        site_id, cabinet_id, door_id, parcel_id, recipient_id,
        channel, source, reason, details

    Integers are JSON integers, absent values ``null``, timestamps strings in RFC 3339 UTC
    with exactly six fractional digits and a ``Z`` (``2026-11-26T09:21:56.123456Z``), and
    ``details`` is a *string*: the entry's details object as canonical JSON text (sorted
    keys, same separators), hashed exactly as stored.

Entry hash
    ``entry_hash = SHA-256("locker-audit-v1/entry\\x00" || prev_hash || canonical bytes)``
    where ``prev_hash`` is the previous entry's hash as 32 raw bytes; the first entry's
    ``prev_hash`` is :data:`GENESIS_HASH` (32 zero bytes). Hashes are stored as lowercase hex.

Bundle manifest signature
    Ed25519 over ``"locker-audit-v1/bundle-manifest\\x00" ||`` the manifest (without its
    ``signature`` field) as compact sorted-key JSON.

Checkpoint signature
    Ed25519 over ``"locker-audit-v1/checkpoint\\x00" || JSON`` where the JSON is the
    compact sorted-key object ``{"entry_hash", "key_id", "seq", "signed_at"}``.
    ``key_id`` is the lowercase hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT: Final = "locker-audit-v1"
ENTRY_TAG: Final = b"locker-audit-v1/entry\x00"
CHECKPOINT_TAG: Final = b"locker-audit-v1/checkpoint\x00"
BUNDLE_TAG: Final = b"locker-audit-v1/bundle-manifest\x00"
GENESIS_HASH: Final = "0" * 64

#: The canonical field order; also the column order every hashing query selects.
CANONICAL_FIELDS: Final = (
    "seq",
    "recorded_at",
    "device_time",
    "actor_type",
    "actor_id",
    "action",
    "outcome",
    "site_id",
    "cabinet_id",
    "door_id",
    "parcel_id",
    "recipient_id",
    "channel",
    "source",
    "reason",
    "details",
)
TIME_FIELDS: Final = frozenset({"recorded_at", "device_time"})

_encode_array = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_encode_object = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
).encode


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds; naive values are taken as UTC (how SQLite returns them)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (an aware UTC datetime)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def canonical_details(details: Mapping[str, Any]) -> str:
    """The canonical JSON text of an entry's details (sorted keys, compact)."""
    return _encode_object(dict(details))


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not part of a canonical entry")


#: The C encoder behind ``json.dumps``, built once: ``JSONEncoder.encode`` rebuilds it on
#: every call, which costs more than the hashing. Same output (see the tests).
_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_fast_array = (
    _c_encoder(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _c_encoder is not None
    else None
)


def canonical_bytes(values: Sequence[Any]) -> bytes:
    """Canonical bytes of one entry given its values in :data:`CANONICAL_FIELDS` order.

    Timestamps must already be strings (:func:`format_time`); this is the hot path.
    """
    if _fast_array is not None:
        return "".join(_fast_array(values, 0)).encode()
    return _encode_array(values).encode()


def entry_hash(prev_hash: str, values: Sequence[Any]) -> str:
    """The hex entry hash of an entry whose canonical values are ``values``."""
    data = ENTRY_TAG + bytes.fromhex(prev_hash) + canonical_bytes(values)
    return hashlib.sha256(data).hexdigest()


def values_from_mapping(entry: Mapping[str, Any]) -> list[Any]:
    """Canonical values of an entry given as a mapping (datetimes or canonical strings)."""
    values = [entry[name] for name in CANONICAL_FIELDS]
    for index, name in enumerate(CANONICAL_FIELDS):
        if name in TIME_FIELDS and isinstance(values[index], datetime):
            values[index] = format_time(values[index])
    return values


def key_id(public_key: Ed25519PublicKey) -> str:
    """Fingerprint of a checkpoint key: hex SHA-256 of the raw public key bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def checkpoint_message(seq: int, entry_hash_hex: str, signed_at: str, key: str) -> bytes:
    """The exact bytes a checkpoint signature covers (``signed_at`` in canonical form)."""
    body = {"entry_hash": entry_hash_hex, "key_id": key, "seq": seq, "signed_at": signed_at}
    return CHECKPOINT_TAG + _encode_object(body).encode()


def manifest_message(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a bundle manifest signature covers: every field but ``signature``."""
    body = {name: value for name, value in manifest.items() if name != "signature"}
    return BUNDLE_TAG + _encode_object(body).encode()


def signature_ok(public_key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def sign_checkpoint(
    private_key: Ed25519PrivateKey, seq: int, entry_hash_hex: str, signed_at: str
) -> tuple[str, str]:
    """Sign a checkpoint; returns ``(key_id, signature_hex)``."""
    key = key_id(private_key.public_key())
    signature = private_key.sign(checkpoint_message(seq, entry_hash_hex, signed_at, key))
    return key, signature.hex()


def checkpoint_signature_ok(
    public_key: Ed25519PublicKey, seq: int, entry_hash_hex: str, signed_at: str, signature: str
) -> bool:
    """Whether ``signature`` is the key's valid signature over this checkpoint."""
    try:
        message = checkpoint_message(seq, entry_hash_hex, signed_at, key_id(public_key))
    except (TypeError, ValueError):
        return False
    return signature_ok(public_key, signature, message)
