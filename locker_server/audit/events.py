"""What callers hand to :meth:`AuditLog.record`: who did what, to which target, with what outcome.

Entries are kept for years, so they carry ids only: no names, no e-mail addresses, no
pickup codes. ``reason`` and ``details`` must stay free of personal data and secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from locker_server.audit.errors import InvalidAuditEvent

ACTOR_TYPES: Final = frozenset(
    {"user", "courier", "api_key", "cabinet", "system", "recipient", "anonymous"}
)
CHANNELS: Final = frozenset({"api", "web", "cli", "cabinet", "worker", "kiosk"})
TARGET_FIELDS: Final = ("site_id", "cabinet_id", "door_id", "parcel_id", "recipient_id")

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_WORD = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_ACTION = 64
_MAX_ID = 64
_MAX_SOURCE = 64
_MAX_REASON = 500
_MAX_DETAILS = 4000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: ``type`` is one of :data:`ACTOR_TYPES`; ``id`` is their id as text."""

    type: str
    id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTOR_TYPES:
            raise InvalidAuditEvent(f"unknown actor type {self.type!r}")
        if self.id is not None and (not self.id or len(self.id) > _MAX_ID):
            raise InvalidAuditEvent("actor id must be 1-64 characters")


SYSTEM: Final = Actor(type="system")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security-relevant event, before the log gives it a place in the chain."""

    action: str
    actor: Actor
    outcome: str
    channel: str
    site_id: int | None = None
    cabinet_id: int | None = None
    door_id: int | None = None
    parcel_id: int | None = None
    recipient_id: int | None = None
    source: str | None = None
    reason: str | None = None
    device_time: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_action(self.action)
        if not isinstance(self.actor, Actor):
            raise InvalidAuditEvent("actor must be an audit Actor")
        if not _WORD.match(self.outcome) or len(self.outcome) > 32:
            raise InvalidAuditEvent(f"outcome {self.outcome!r} is not a lower-case word")
        if self.channel not in CHANNELS:
            raise InvalidAuditEvent(f"unknown channel {self.channel!r}")
        for name in TARGET_FIELDS:
            _check_id(name, getattr(self, name))
        _check_text("source", self.source, _MAX_SOURCE)
        _check_text("reason", self.reason, _MAX_REASON)
        _check_details(self.details)


def _check_action(action: str) -> None:
    if len(action) > _MAX_ACTION or not _ACTION.match(action):
        raise InvalidAuditEvent(f"action {action!r} is not a dotted lower-case verb")


def _check_id(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidAuditEvent(f"{name} must be a non-negative integer id")


def _check_text(name: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidAuditEvent(f"{name} must be text of at most {limit} characters")


def _check_details(details: Mapping[str, Any]) -> None:
    try:
        text = json.dumps(dict(details), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidAuditEvent("details must be a small JSON-able object") from exc
    if len(text) > _MAX_DETAILS or "\\u0000" in text:
        raise InvalidAuditEvent(f"details must be under {_MAX_DETAILS} characters of JSON")
