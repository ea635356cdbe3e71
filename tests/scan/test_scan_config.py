"""agent.toml ``[camera]`` and ``[scanner]``: an installer describes the kiosk's readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from locker_agent.config import CameraSection, ScannerSection, parse_settings
from locker_agent.errors import ConfigError
from locker_agent.scan.decoders import default_chain
from locker_agent.scan.settings import CameraSettings, ScannerSettings
from tests.agent_link.rig import Signer, agent_document

CABINET = "SCAN-01"


def document(tmp_path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    doc = agent_document(CABINET, tmp_path / "journal.sqlite3", Signer(CABINET).public_key)
    return doc | sections


def test_a_cabinet_without_camera_or_scanner_sections_has_neither(tmp_path: Path) -> None:
    settings = parse_settings(document(tmp_path))
    assert (settings.camera, settings.scanner) == (None, None)


def test_installer_names_the_camera_and_the_scanner_port(tmp_path: Path) -> None:
    settings = parse_settings(
        document(
            tmp_path,
            camera={"device": "/dev/video0", "width": 1280, "height": 720},
            scanner={"port": "/dev/ttyACM0", "baud": 115200},
        )
    )
    assert settings.camera is not None
    assert settings.scanner is not None
    assert settings.camera.camera_settings() == CameraSettings(
        device="/dev/video0", width=1280, height=720
    )
    assert settings.scanner.scanner_settings() == ScannerSettings("/dev/ttyACM0", 115200)


def test_default_camera_section_builds_the_benchmarked_chain() -> None:
    section = CameraSection(device="0")
    assert section.chain().name == default_chain().name


def test_decoders_can_be_reordered_and_the_quick_pass_turned_off() -> None:
    section = CameraSection(device="0", decoders=["zbar", "zxing"], fast_pass_width=0)
    assert section.chain().name == "zbar > zxing > zxing-label"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"device": "CHANGE-ME"}, "camera device is missing"),
        ({"device": "0", "width": 1280}, "both width and height"),
        ({"device": "0", "decoders": ["opencv"]}, "decoders"),
        ({"device": "0", "forget_seconds": "1"}, "forget_seconds"),
        ({"device": "0", "focus": "auto"}, "unknown key"),
    ],
)
def test_a_wrong_camera_section_stops_the_agent_naming_the_key(
    tmp_path: Path, section: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_settings(document(tmp_path, camera=section))


def test_scanner_port_left_as_provisioned_placeholder_is_refused() -> None:
    with pytest.raises(ValidationError, match="scanner port is missing"):
        ScannerSection(port="CHANGE-ME")
