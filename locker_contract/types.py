"""Field types shared by the envelope and the bodies: ids, timestamps, hashes.

Timestamps are RFC 3339 text on the wire and timezone-aware UTC ``datetime`` values in
Python; they are always written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds, "Z"),
so the canonical form used for signatures is deterministic.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from locker_contract.topics import CABINET_ID_PATTERN

MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)
HEX_ID_PATTERN = r"^[0-9a-f]{32}$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"


def _parse_rfc3339(value: object) -> object:
    """Accept datetimes as they are; text only in the strict RFC 3339 form with an offset."""
    if isinstance(value, str):
        if _RFC3339.fullmatch(value) is None:
            raise ValueError("timestamp must be RFC 3339 with a UTC offset")
        return datetime.fromisoformat(value)
    return value


def format_utc(moment: datetime) -> str:
    """``2026-11-26T10:00:00.123456Z`` — the only way timestamps are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_message_id() -> str:
    """A fresh random id (uuid4 as 32 lowercase hex digits) for messages, commands, events."""
    return uuid.uuid4().hex


UtcTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_parse_rfc3339),
    AfterValidator(lambda moment: moment.astimezone(UTC)),
    PlainSerializer(format_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
HexId = Annotated[str, StringConstraints(pattern=HEX_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_HEX_PATTERN)]
CabinetId = Annotated[str, StringConstraints(pattern=CABINET_ID_PATTERN)]
DoorNumber = Annotated[int, Field(ge=1, le=9999)]
PositiveInt = Annotated[int, Field(ge=1, le=2**63 - 1)]
NonNegativeInt = Annotated[int, Field(ge=0, le=2**63 - 1)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
