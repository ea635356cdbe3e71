"""``[kiosk]`` in agent.toml: typed, strict, and loopback by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from locker_agent.config import KioskSection, parse_settings
from locker_agent.errors import ConfigError
from tests.agent_link.rig import Signer, agent_document


def _document(kiosk: dict[str, Any]) -> dict[str, Any]:
    document = agent_document("K-1", Path("j.sqlite3"), Signer("K-1").public_key)
    document["kiosk"] = kiosk
    return document


def test_an_empty_kiosk_section_serves_on_loopback_in_chinese() -> None:
    assert parse_settings(_document({})).kiosk == KioskSection(
        host="127.0.0.1", port=8780, language="zh-CN", help_contact=None, idle_timeout=30.0
    )


@pytest.mark.parametrize(
    ("kiosk", "named"),
    [
        ({"port": "8780"}, "kiosk.port"),
        ({"language": "fr"}, "kiosk.language"),
        ({"colour": "red"}, "kiosk.colour: unknown key"),
        ({"idle_timeout": 0}, "kiosk.idle_timeout"),
    ],
)
def test_a_bad_kiosk_setting_stops_the_agent_naming_the_key(
    kiosk: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_settings(_document(kiosk))
