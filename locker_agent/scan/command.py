"""``locker-agent scan``: read codes from image files or a camera, as the kiosk would.

For installers: check that the camera is mounted and focused (``--camera 0``), that a
printed label or a phone screen reads, or what a code that "does not work" contains.
The decoder chain is the kiosk's (:func:`~locker_agent.scan.decoders.default_chain`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import cv2
import numpy as np

from locker_agent.errors import CameraError, ImageUnreadable
from locker_agent.scan.camera import CameraSettings, Debouncer, OpenCvCamera
from locker_agent.scan.decoders import Decoded, DecoderChain, Frame, default_chain
from locker_agent.scan.usage import EXIT_OK, EXIT_UNREADABLE


def run_scan(args: argparse.Namespace) -> int:
    chain = default_chain()
    if args.camera is not None:
        return _scan_camera(chain, args.camera, args.frames, as_json=args.json)
    status = EXIT_OK
    for path in args.images:
        try:
            frame = read_image(path)
        except ImageUnreadable as exc:
            _report_unreadable(path, exc, as_json=args.json)
            status = EXIT_UNREADABLE
            continue
        started = time.perf_counter()
        found = chain.decode(frame)
        _print_found(found, as_json=args.json, key=("file", path), started=started)
    return status


def read_image(path: str) -> Frame:
    """The image file as a BGR frame; :class:`ImageUnreadable` if it is missing or not an image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageUnreadable(f"{path}: {exc.strerror or exc}") from exc
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if frame is None:
        raise ImageUnreadable(f"{path}: not an image OpenCV can decode")
    return np.asarray(frame, dtype=np.uint8)


def _report_unreadable(path: str, exc: ImageUnreadable, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": path, "error": str(exc)}), flush=True)
    print(f"unreadable image: {exc}", file=sys.stderr)


def _print_found(
    found: Sequence[Decoded], *, as_json: bool, key: tuple[str, object], started: float
) -> None:
    if as_json:
        ms = round((time.perf_counter() - started) * 1000, 2)
        payloads = [code.text for code in found]
        print(json.dumps({key[0]: key[1], "payloads": payloads, "ms": ms}), flush=True)
        return
    for code in found:
        print(code.text, flush=True)


def _scan_camera(chain: DecoderChain, device: str, frames: int | None, *, as_json: bool) -> int:
    settings = CameraSettings(device=device)
    camera = OpenCvCamera(settings)
    debouncer = Debouncer(settings.forget_frames, settings.forget_seconds)
    try:
        camera.open()
        count = 0
        while frames is None or count < frames:
            frame = camera.read()
            count += 1
            started = time.perf_counter()
            found = chain.decode(frame)
            new = debouncer.new_codes(found, time.monotonic())
            if new:
                _print_found(new, as_json=as_json, key=("frame", count), started=started)
    except CameraError as exc:
        print(f"camera: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        camera.close()
    return EXIT_OK
