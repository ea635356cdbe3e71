"""Column types and request-field rules shared by the domain models.

Request bodies: ``NotNull[T]`` for change fields that may be left out but not cleared,
``visible()`` for names that must hold more than whitespace, ``STRICT`` for numbers and
booleans that must arrive as JSON numbers and booleans, ``known_time_zone`` for zones.

Timestamps are stored and compared in UTC. SQLite has no time-zone type, so
``UTCDateTime`` refuses naive values on the way in and marks values read back as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator
from sqlmodel._compat import SQLModelConfig


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def forbid_extra() -> SQLModelConfig:
    """Config for request bodies: an unknown field is a validation error naming it."""
    return SQLModelConfig(extra="forbid")


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


T = TypeVar("T")

#: A field of a change (PATCH) body that may be left out but never set to ``null``: the
#: column behind it cannot be empty, and a ``null`` must be a 422 naming the field, not a
#: database conflict. Give it the default ``None`` (meaning "left out"): defaults are not
#: validated, so at run time the field validates as ``T`` alone and the schema documents
#: it as not nullable; type checkers see ``T | None``, which is what the code receives.
if TYPE_CHECKING:
    NotNull = Annotated[T | None, "left out: None"]
else:
    NotNull = Annotated[T, BeforeValidator(_refuse_null)]

#: Names and reasons must carry something visible: whitespace alone is refused.
VISIBLE_TEXT = r"\S"

#: Field options that refuse ``true`` where a number belongs (and ``1`` where a boolean does).
STRICT: dict[str, Any] = {"strict": True}


def visible(**extra: Any) -> dict[str, Any]:
    """``schema_extra`` for a text field that must hold more than whitespace."""
    return {"pattern": VISIBLE_TEXT, **extra}


def known_time_zone(value: str | None) -> str | None:
    """An IANA time zone name the server can use (e-mails show local times in it)."""
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Berlin"
        ) from exc
    return value


_OPENING_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


def opening_minutes(value: str) -> tuple[int, int]:
    """``"07:00-20:00"`` → minutes after midnight of the opening and the closing (a closing
    before the opening spans midnight: ``"22:00-06:00"``); ``ValueError`` otherwise."""
    match = _OPENING_HOURS.fullmatch(value)
    if match is None:
        raise ValueError(f"opening hours must look like 07:00-20:00, not {value!r}")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start == end:
        raise ValueError("opening and closing time are the same; leave it empty for always open")
    return start, end


def known_opening_hours(value: str | None) -> str | None:
    """Validator: None (always open) or daily opening hours in the site's time zone."""
    if value is not None:
        opening_minutes(value)
    return value
