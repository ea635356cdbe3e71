"""Frames the scanning tests show the camera, rendered once per test session."""

from __future__ import annotations

from functools import cache

from locker_agent.scan.decoders import Frame
from locker_contract.pickup_qr import encode_pickup_qr
from simulators.camera import Scene, render, scene_for

TOKEN = "Qk9YLTdmM2E5YzFlNWIyZDRmNmE4YzBl"
PICKUP_QR = encode_pickup_qr(TOKEN)
LABEL = "JJD0001234567890"
#: starts like ours but its check digits are wrong: a misread or a forgery attempt
DAMAGED_QR = PICKUP_QR[:-4] + ("0000" if not PICKUP_QR.endswith("0000") else "FFFF")


@cache
def frame_of(
    condition: str, payload: str = PICKUP_QR, *, seed: int = 7, size: tuple[int, int] = (640, 480)
) -> Frame:
    """A frame of ``condition`` (see simulators.camera.CONDITIONS), 640×480 unless told."""
    return render(scene_for(condition, payload, seed=seed, width=size[0], height=size[1]))


@cache
def empty_frame(seed: int = 7, *, size: tuple[int, int] = (640, 480)) -> Frame:
    return render(Scene(payload=None, width=size[0], height=size[1], seed=seed))
