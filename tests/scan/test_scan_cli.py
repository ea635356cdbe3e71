"""An installer checks codes with ``locker-agent scan``, on image files or a camera."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.scan.scenes import LABEL, PICKUP_QR, empty_frame, frame_of


def run_scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locker_agent.cli", "scan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """A phone showing the pickup QR, a parcel label, and a hallway with no code."""
    images = {
        "phone": frame_of("tilted"),
        "label": frame_of("label", LABEL, size=(1280, 720)),
        "hallway": empty_frame(),
    }
    paths = {name: tmp_path / f"{name}.png" for name in images}
    for name, image in images.items():
        assert cv2.imwrite(str(paths[name]), image)
    return paths


def test_installer_sees_every_payload_one_per_line(photos: dict[str, Path]) -> None:
    result = run_scan(str(photos["phone"]), str(photos["hallway"]), str(photos["label"]))

    assert (result.returncode, result.stdout.splitlines()) == (0, [PICKUP_QR, LABEL])


def test_json_gives_one_object_per_image_with_its_decode_time(photos: dict[str, Path]) -> None:
    result = run_scan("--json", str(photos["phone"]), str(photos["hallway"]))

    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert [(o["file"], o["payloads"]) for o in objects] == [
        (str(photos["phone"]), [PICKUP_QR]),
        (str(photos["hallway"]), []),
    ]
    assert all(o["ms"] >= 0 for o in objects)


def test_unreadable_image_exits_1_after_reading_the_others(
    photos: dict[str, Path], tmp_path: Path
) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    missing = tmp_path / "missing.jpg"

    result = run_scan("--json", str(not_an_image), str(missing), str(photos["phone"]))

    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1
    assert [("error" in o, o.get("payloads")) for o in objects] == [
        (True, None),
        (True, None),
        (False, [PICKUP_QR]),
    ]
    assert "unreadable image" in result.stderr


@pytest.mark.parametrize(
    "args", [[], ["--camera", "0", "x.png"], ["--frames", "3", "x.png"]], ids=str
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run_scan(*args).returncode == 2


def test_camera_prints_a_code_held_in_view_once(tmp_path: Path) -> None:
    # an image sequence is a camera to OpenCV: the same capture path as /dev/video0
    frames = [empty_frame()] * 2 + [frame_of("clean")] * 6 + [empty_frame()] * 2
    for index, frame in enumerate(frames):
        assert cv2.imwrite(str(tmp_path / f"frame_{index:03d}.png"), frame)

    result = run_scan("--camera", str(tmp_path / "frame_%03d.png"), "--frames", str(len(frames)))

    assert (result.returncode, result.stdout.splitlines()) == (0, [PICKUP_QR])


def test_camera_that_cannot_be_opened_exits_1(tmp_path: Path) -> None:
    result = run_scan("--camera", str(tmp_path / "no-such-video-device"), "--frames", "1")

    assert result.returncode == 1
    assert "camera" in result.stderr


def test_camera_that_stops_giving_frames_exits_1(tmp_path: Path) -> None:
    for index in range(2):
        assert cv2.imwrite(str(tmp_path / f"frame_{index:03d}.png"), frame_of("clean"))

    result = run_scan("--camera", str(tmp_path / "frame_%03d.png"), "--frames", "5")

    assert (result.returncode, result.stdout.splitlines()) == (1, [PICKUP_QR])
    assert "gave no frame" in result.stderr


def test_door_commands_do_not_load_opencv_or_the_decoders() -> None:
    probe = (
        "import sys, locker_agent.cli, locker_agent.config; locker_agent.cli.build_parser();"
        "print(sorted({'cv2', 'zxingcpp', 'pyzbar', 'numpy'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
