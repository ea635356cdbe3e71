"""The recipient's link: a capability that carries, sealed, what the recipient page needs.

The database keeps only keyed hashes of the pickup code and QR token, so a page cannot
show the QR code again from the database. The link itself carries it instead:

    token = base64url(version || nonce || AES-256-GCM(parcel id, recipient id,
                                                      expiry, QR token))

The key is derived (HKDF-SHA256) from ``outbox-sealing.key``, which already guards the
same secret while it waits in the outbox and lives outside the database; the context
label is the associated data, so a blob sealed for anything else never opens as a link.
A changed byte, another key or another version makes the token unopenable; a token past
its expiry is refused even though it opens. Nothing here does I/O: bytes and times in,
values or :class:`LinkRejected` out.

The form on the page carries :func:`form_token`, a keyed hash of the link, so a page on
another site cannot submit it without knowing the link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from locker_server.notifications.errors import LinkRejected

#: Where the page lives: ``{public_base_url}/p/<token>``.
LINK_PATH = "/p/"
#: How long a link outlives the deadline it was sent with: long enough for the
#: recipient's own extension and an operator's site-wide one, and to read afterwards
#: that the parcel went back (the QR code is shown only while it still opens the door).
LINK_GRACE = timedelta(days=14)

_VERSION = 1
_CONTEXT = b"locker-recipient-link:v1"
_NONCE_BYTES = 12
# parcel id, recipient id (32-bit: the columns' width), expiry in Unix seconds (64-bit).
_FIELDS = struct.Struct(">IIQ")
_MAX_TOKEN_CHARS = 512


@dataclass(frozen=True, slots=True)
class RecipientLink:
    """What a link says: whose parcel, until when, and the QR token sent with it."""

    parcel_id: int
    recipient_id: int
    expires_at: datetime
    qr_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LinkKeys:
    """The two keys of the links, derived from one server key (never stored)."""

    sealing: bytes = field(repr=False)
    forms: bytes = field(repr=False)

    @classmethod
    def derive(cls, server_key: bytes) -> LinkKeys:
        return cls(sealing=_hkdf(server_key, b"seal"), forms=_hkdf(server_key, b"form"))


def _hkdf(server_key: bytes, purpose: bytes) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT + b":" + purpose)
    return kdf.derive(server_key)


def link_expiry(pickup_deadline: datetime) -> datetime:
    return pickup_deadline + LINK_GRACE


def seal_link(keys: LinkKeys, link: RecipientLink) -> str:
    """The URL-safe token of ``link`` (about 100 characters: short enough for an SMS)."""
    expiry = int(link.expires_at.timestamp())
    plaintext = _FIELDS.pack(link.parcel_id, link.recipient_id, expiry) + link.qr_token.encode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(keys.sealing).encrypt(nonce, plaintext, _CONTEXT)
    return base64.urlsafe_b64encode(bytes([_VERSION]) + nonce + sealed).rstrip(b"=").decode()


def open_link(keys: LinkKeys, token: str, *, now: datetime) -> RecipientLink:
    """The link ``token`` stands for; :class:`LinkRejected` if forged, altered or expired."""
    link = _unseal(keys, token)
    if link.expires_at <= now:
        raise LinkRejected("expired", link=link)
    return link


def _unseal(keys: LinkKeys, token: str) -> RecipientLink:
    blob = _decode(token)
    if len(blob) < 1 + _NONCE_BYTES or blob[0] != _VERSION:
        raise LinkRejected("malformed")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        plaintext = AESGCM(keys.sealing).decrypt(nonce, sealed, _CONTEXT)
    except InvalidTag as exc:
        raise LinkRejected("forged") from exc
    if len(plaintext) <= _FIELDS.size:
        raise LinkRejected("malformed")
    parcel_id, recipient_id, expiry = _FIELDS.unpack_from(plaintext)
    return RecipientLink(
        parcel_id=parcel_id,
        recipient_id=recipient_id,
        expires_at=datetime.fromtimestamp(expiry, UTC),
        qr_token=plaintext[_FIELDS.size :].decode("utf-8", errors="replace"),
    )


def _decode(token: str) -> bytes:
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise LinkRejected("malformed")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LinkRejected("malformed") from exc


def link_url(public_base_url: str, token: str) -> str:
    return public_base_url.rstrip("/") + LINK_PATH + token


def form_token(keys: LinkKeys, token: str) -> str:
    """The token the page's forms carry: only someone who holds the link can make it."""
    digest = hmac.new(keys.forms, b"recipient-form\x00" + token.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
