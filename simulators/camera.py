"""A virtual kiosk camera: a pickup QR on a phone, or a parcel label, as a camera sees it.

A :class:`Scene` describes one picture (what is shown and how badly: tilt, blur, dim
light, glare, the moiré of a phone screen filmed by a camera, dark mode, a small code);
:func:`render` draws it as a BGR frame, deterministically from its seed. The frames feed
the agent's :class:`~locker_agent.scan.camera.FakeCamera` (see :func:`virtual_camera`),
the ``scan`` CLI tests and ``bench/bench_scan.py``.

QR symbols come from the ``qrcode`` package (the one the server uses for the e-mail);
Code 128 labels from :mod:`simulators.code128`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
import qrcode
from qrcode.constants import ERROR_CORRECT_M

from locker_agent.scan.camera import CAMERA_LOST, FakeCamera, Frame, ScriptItem
from simulators.code128 import code128b_modules

Gray = npt.NDArray[np.float32]
Symbology = Literal["qr", "code128"]
_QR_QUIET: Final = 4


@dataclass(frozen=True)
class Scene:
    """One picture in front of the camera; ``payload=None`` is a frame with no code."""

    payload: str | None
    symbology: Symbology = "qr"
    width: int = 1280
    height: int = 720
    #: the code's width as a fraction of the frame's height
    code_fraction: float = 0.45
    #: perspective: each corner moves by up to this fraction of the code's size
    tilt: float = 0.0
    rotation: float = 0.0  # degrees
    blur: float = 0.0  # Gaussian sigma in pixels
    noise: float = 2.0  # sensor noise sigma in grey levels
    light: float = 1.0  # exposure gain; 0.25 is a dim hallway
    glare: float = 0.0  # 0..1, a specular reflection on the screen
    moire: float = 0.0  # 0..1, beat pattern of the screen's pixel grid
    inverted: bool = False  # dark mode: light modules on a dark screen
    on_screen: bool = True  # shown on a phone (bezel) rather than printed on a label
    seed: int = 0


def _f32(image: object) -> Gray:
    return np.asarray(image, dtype=np.float32)


def qr_modules(text: str) -> npt.NDArray[np.bool_]:
    """The QR symbol of ``text`` (level M, like the e-mail), True = dark, with quiet zone."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=_QR_QUIET)
    code.add_data(text)
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=np.bool_)


def _code_image(scene: Scene, side: int) -> Gray:
    """The printed/displayed code, 0 = dark, 1 = light, ``side`` pixels wide."""
    assert scene.payload is not None
    if scene.symbology == "qr":
        modules = qr_modules(scene.payload)
        image = np.where(modules, 0.0, 1.0).astype(np.float32)
        size = (side, side)
    else:
        row = np.where(code128b_modules(scene.payload), 0.0, 1.0).astype(np.float32)
        image = np.tile(row, (max(8, row.size // 4), 1))
        size = (side, max(8, side * 2 // 5))
    scaled = as_sensor_sees(image, size)
    return _f32(1.0 - scaled) if scene.inverted else scaled


#: how finely a module is drawn before the sensor's pixels average it
_PRINT_OVERSAMPLING: Final = 4


def as_sensor_sees(modules: Gray, size: tuple[int, int]) -> Gray:
    """``modules`` (one pixel each) at ``size`` pixels, each pixel averaging the print it covers.

    A sensor pixel that straddles the edge of a bar sees grey, and the decoders use that
    grey to place the edge between pixels. Snapping each module to whole pixels instead
    (nearest neighbour) prints a label whose bars are off by up to half a pixel, the same
    error in every row: at 1.8 pixels per module that is ±28 % of a module, a label no
    print-quality grade would pass.
    """
    rows, columns = modules.shape
    fine_size = (_oversampled(columns, size[0]), _oversampled(rows, size[1]))
    fine = cv2.resize(modules, fine_size, interpolation=cv2.INTER_NEAREST)
    return _f32(cv2.resize(fine, size, interpolation=cv2.INTER_AREA))


def _oversampled(modules: int, pixels: int) -> int:
    """A whole number of fine pixels per module, at least ``_PRINT_OVERSAMPLING`` per pixel."""
    per_module = max(1, -(-_PRINT_OVERSAMPLING * pixels // modules))
    return modules * per_module


def _framed(scene: Scene, code: Gray) -> Gray:
    """The code on its carrier: a phone screen with a black bezel, or a white label."""
    pad = max(4, code.shape[1] // 12)
    paper = 0.0 if scene.inverted else 1.0
    carrier = cv2.copyMakeBorder(code, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=paper)
    if scene.on_screen:
        bezel = max(3, code.shape[1] // 10)
        carrier = cv2.copyMakeBorder(
            carrier, bezel * 2, bezel * 2, bezel, bezel, cv2.BORDER_CONSTANT, value=0.05
        )
    return np.asarray(carrier, dtype=np.float32)


def _background(scene: Scene, rng: np.random.Generator) -> Gray:
    """A cabinet hallway: a lighting gradient, some boxes and printed text, no codes."""
    ys, xs = np.mgrid[0 : scene.height, 0 : scene.width].astype(np.float32)
    base = 0.35 + 0.3 * xs / scene.width * rng.uniform(-1, 1) + 0.2 * ys / scene.height
    # drawn in 8 bits: OpenCV draws text only on uint8 images
    frame = (np.clip(base, 0.05, 0.95) * 255).astype(np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, scene.width)), int(rng.integers(0, scene.height))
        w, h = int(rng.integers(40, 300)), int(rng.integers(40, 300))
        cv2.rectangle(frame, (x, y), (x + w, y + h), int(rng.integers(25, 230)), -1)
    for line in range(3):
        origin = (int(rng.integers(0, scene.width // 2)), 60 + line * scene.height // 3)
        cv2.putText(frame, "PARCEL LOCKER 24/7", origin, cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    return _f32(frame) / np.float32(255)


def _destination(
    scene: Scene, shape: tuple[int, int], rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Where the carrier's corners land in the frame: placed, rotated and tilted."""
    h, w = shape
    centre = np.array(
        [
            rng.uniform(w / 2 + 10, scene.width - w / 2 - 10) if scene.width > w + 20 else w / 2,
            rng.uniform(h / 2 + 10, scene.height - h / 2 - 10) if scene.height > h + 20 else h / 2,
        ]
    )
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=np.float64) / 2
    angle = np.deg2rad(scene.rotation)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    jitter = rng.uniform(-scene.tilt, scene.tilt, size=(4, 2)) * max(w, h)
    return _f32(corners @ turn.T + jitter + centre)


def _place(scene: Scene, frame: Gray, carrier: Gray, rng: np.random.Generator) -> Gray:
    h, w = carrier.shape
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, _destination(scene, (h, w), rng))
    size = (scene.width, scene.height)
    warped = _f32(cv2.warpPerspective(carrier, matrix, size, flags=cv2.INTER_LINEAR))
    mask = _f32(cv2.warpPerspective(np.ones_like(carrier), matrix, size, flags=cv2.INTER_LINEAR))
    if scene.moire:
        warped = _moire(warped, scene.moire, rng)
    if scene.glare:
        warped = _glare(warped, mask, scene.glare, rng)
    return np.asarray(frame * (1 - mask) + warped * mask, dtype=np.float32)


def _moire(image: Gray, strength: float, rng: np.random.Generator) -> Gray:
    """The beat of the screen's sub-pixel grid against the sensor's: slanted bands."""
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    fx, fy = rng.uniform(0.46, 0.49), rng.uniform(0.02, 0.05)
    bands = 0.5 + 0.5 * np.cos(2 * np.pi * (fx * xs + fy * ys))
    return np.asarray(image * (1 - strength * 0.6 * bands), dtype=np.float32)


def _glare(image: Gray, mask: Gray, strength: float, rng: np.random.Generator) -> Gray:
    """A ceiling light reflected on the screen: a bright blob that washes out modules."""
    ys, xs = np.nonzero(mask > 0.5)
    pick = int(rng.integers(0, xs.size))
    radius = max(8.0, float(np.sqrt(xs.size)) * 0.18)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    blob = np.exp(-((xx - xs[pick]) ** 2 + (yy - ys[pick]) ** 2) / (2 * radius**2))
    return np.asarray(np.minimum(1.0, image + strength * 1.1 * blob), dtype=np.float32)


def render(scene: Scene) -> Frame:
    """The camera's frame of ``scene``, BGR ``uint8``, the same for the same scene."""
    rng = np.random.default_rng(scene.seed)
    frame = _background(scene, rng)
    if scene.payload is not None:
        side = max(16, int(scene.height * scene.code_fraction))
        frame = _place(scene, frame, _framed(scene, _code_image(scene, side)), rng)
    frame = _f32(frame * scene.light)
    if scene.blur:
        frame = _f32(cv2.GaussianBlur(frame, (0, 0), scene.blur))
    frame = _f32(frame * 255 + rng.normal(0, scene.noise, frame.shape))
    gray = np.clip(frame, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)


#: the conditions the kiosk must cope with, as changes to a clean scene
CONDITIONS: Final[dict[str, dict[str, object]]] = {
    "clean": {},
    "tilted": {"tilt": 0.12, "rotation": 25.0},
    "blurred": {"blur": 2.0},
    "dim": {"light": 0.22, "noise": 6.0},
    "noisy": {"noise": 14.0},
    "glare": {"glare": 0.8},
    "moire": {"moire": 0.5},
    "inverted": {"inverted": True},
    "small": {"code_fraction": 0.16},
    "label": {"symbology": "code128", "on_screen": False, "code_fraction": 0.9},
    "label_tilted": {
        "symbology": "code128",
        "on_screen": False,
        "code_fraction": 0.9,
        "rotation": 8.0,
        "blur": 1.0,
    },
    "no_code": {"payload": None},
}


def scene_for(condition: str, payload: str, *, seed: int, width: int, height: int) -> Scene:
    """A ``condition`` from :data:`CONDITIONS` showing ``payload`` (or nothing)."""
    base = Scene(payload=payload, width=width, height=height, seed=seed)
    return replace(base, **CONDITIONS[condition])  # type: ignore[arg-type]


def virtual_camera(script: Iterable[tuple[Scene | None, int]]) -> FakeCamera:
    """A fake camera playing ``(scene, frames)`` steps; a ``None`` scene loses the camera.

    ``(scene, 30)`` holds the scene in view for 30 frames (one second at 30 fps), with
    fresh sensor noise in each; ``(None, 1)`` is the USB cable pulled out once.
    """
    return FakeCamera(_frames(script))


def _frames(script: Iterable[tuple[Scene | None, int]]) -> Iterator[ScriptItem]:
    for scene, count in script:
        for index in range(count):
            yield CAMERA_LOST if scene is None else render(replace(scene, seed=scene.seed + index))
