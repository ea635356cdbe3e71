"""Carrier API keys: ``lk_<prefix>_<secret>``, sent as ``Authorization: Bearer <key>``.

The prefix (12 hex digits) finds the row; the whole key is stored only as an
HMAC-SHA256 under the token signing key (fast enough for every request, useless
without the key held outside the database). The full key is shown once, on creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_MARKER = "lk_"
_KEY_SHAPE = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DOMAIN = b"locker-server/api-key/v1\x00"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    prefix: str
    key: str


@dataclass(frozen=True, slots=True)
class PresentedKey:
    prefix: str
    key: str


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_MARKER)


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    return NewApiKey(prefix=prefix, key=f"{KEY_MARKER}{prefix}_{secrets.token_urlsafe(32)}")


def parse_api_key(credential: str) -> PresentedKey | None:
    match = _KEY_SHAPE.match(credential)
    return PresentedKey(prefix=match.group(1), key=credential) if match else None


def hash_api_key(signing_key: bytes, key: str) -> str:
    return hmac.new(signing_key, _DOMAIN + key.encode(), hashlib.sha256).hexdigest()


def api_key_matches(signing_key: bytes, key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(signing_key, key), stored_hash)
