"""The text inside a pickup QR code: ``LKR1:<token>:<check>``.

The server puts it in the notification e-mail; a cabinet's camera or barcode scanner
reads it back. ``LKR1`` names the format and its version, ``<token>`` is the parcel's QR
token exactly as issued (base64url, no padding), and ``<check>`` is the CRC-16/IBM-3740
(initial value 0xFFFF) of everything before the last colon, as four upper-case hex digits.

The check is not a secret and proves nothing about who made the code: the token itself
is the credential, checked against the allow-list hash. The check exists so that a
misread, a truncated read or a foreign code that happens to start with ``LKR1:`` is
never presented as a pickup attempt (and never counts towards a lockout). Four hex digits
keep a 32-character token inside a version-3 QR symbol (29×29 modules at level M), the
size the bare token needed before.

Sans-IO and pure: strings in, strings out.
"""

from __future__ import annotations

import binascii
import re
from enum import StrEnum
from typing import Final, NamedTuple

PICKUP_QR_PREFIX: Final = "LKR1"
#: the QR token alphabet (base64url without padding) and the longest token the server stores
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CHECK = re.compile(r"[0-9A-F]{4}")
_CRC_START: Final = 0xFFFF


class QrVerdict(StrEnum):
    """What a scanned text is, as far as the pickup flow is concerned."""

    PICKUP = "pickup"  # our format, check matches: the token may be tried
    DAMAGED = "damaged"  # starts like ours but fails the format or the check: ignore
    FOREIGN = "foreign"  # not ours at all (a parcel label, a badge, a web link): ignore


class PickupQrReading(NamedTuple):
    verdict: QrVerdict
    token: str | None


def _check(body: str) -> str:
    return f"{binascii.crc_hqx(body.encode('ascii'), _CRC_START):04X}"


def encode_pickup_qr(token: str) -> str:
    """The QR text for ``token``; ``ValueError`` if the token is not a QR token."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("a QR token is 1..128 base64url characters")
    body = f"{PICKUP_QR_PREFIX}:{token}"
    return f"{body}:{_check(body)}"


def read_pickup_qr(text: str) -> PickupQrReading:
    """Classify a scanned text and, when it is a valid pickup QR, extract its token."""
    if not text.startswith(PICKUP_QR_PREFIX + ":"):
        return PickupQrReading(QrVerdict.FOREIGN, None)
    body, _, check = text.rpartition(":")
    token = body[len(PICKUP_QR_PREFIX) + 1 :]
    if not (_TOKEN.fullmatch(token) and _CHECK.fullmatch(check)) or _check(body) != check:
        return PickupQrReading(QrVerdict.DAMAGED, None)
    return PickupQrReading(QrVerdict.PICKUP, token)


def parse_pickup_qr(text: str) -> str | None:
    """The token inside a pickup QR text, or ``None`` for anything else."""
    return read_pickup_qr(text).token
