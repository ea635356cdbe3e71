"""Validate a message against the committed JSON Schema of its type (``docs/contract``).

Tests of either side import :func:`assert_matches_schema` to check what they send, or
wrap the publisher they hand to the code under test in :class:`SchemaCheckingPublisher`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "contract"


@cache
def validator(message_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{message_type}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def assert_matches_schema(message: bytes | dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``message`` fits its type's schema."""
    document = json.loads(message) if isinstance(message, bytes) else message
    validator(document["type"]).validate(document)


class _Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any: ...


class SchemaCheckingPublisher:
    """Forwards ``publish`` after checking a ``lockers/v1/...`` payload against its schema."""

    def __init__(self, inner: _Publisher) -> None:
        self._inner = inner
        self.checked = 0

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any:
        if topic.startswith("lockers/v1/"):
            assert_matches_schema(payload)
            self.checked += 1
        return self._inner.publish(topic, payload, qos=qos, retain=retain)
