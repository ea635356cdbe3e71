"""Validate a message against the committed JSON Schema of its type (``docs/contract``).

Tests of either side import :func:`assert_matches_schema` to check what they send.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

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
