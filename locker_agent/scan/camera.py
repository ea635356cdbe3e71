"""The kiosk camera: frames in, one event per code shown, an alarm when the camera goes away.

Layers, bottom up:

* a :class:`FrameSource` gives frames: :class:`OpenCvCamera` (``cv2.VideoCapture`` on a
  device index ``"0"``, a ``/dev/video*`` path, a stream URL or a video file) or
  :class:`FakeCamera`, which plays a script of frames and losses;
* :class:`Debouncer` (pure) turns "what is in view in this frame" into "what is new";
* :class:`CameraReader` drives both with a :class:`~locker_agent.scan.decoders.DecoderChain`
  and yields :class:`~locker_agent.scan.events.ScanEvent` values: each code once, and
  ``CameraDown`` / ``CameraUp`` around a lost camera, reopening it with a backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol

import cv2
import numpy as np

from locker_agent.errors import CameraLost, CameraUnavailable, ImageUnreadable
from locker_agent.scan.decoders import Decoded, DecoderChain, Frame, Symbology
from locker_agent.scan.events import CameraDown, CameraUp, CodeRead, ScanEvent
from locker_agent.scan.settings import CameraSettings

__all__ = [
    "CAMERA_LOST",
    "CameraReader",
    "CameraSettings",
    "Debouncer",
    "FakeCamera",
    "Frame",
    "FrameSource",
    "OpenCvCamera",
    "ScriptItem",
]

logger = logging.getLogger(__name__)


class FrameSource(Protocol):
    def open(self) -> None:
        """Open the device; :class:`CameraUnavailable` if it cannot be opened."""

    def read(self) -> Frame:
        """The next frame; :class:`CameraLost` if the device stopped giving frames."""

    def close(self) -> None: ...


def device_argument(device: str) -> int | str:
    """``"0"`` means camera index 0; anything else is a path, URL or file name."""
    return int(device) if device.isdigit() else device


class OpenCvCamera:
    """A real camera through ``cv2.VideoCapture``."""

    def __init__(self, settings: CameraSettings) -> None:
        self._settings = settings
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        capture = cv2.VideoCapture(device_argument(self._settings.device))
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailable(f"cannot open camera {self._settings.device!r}")
        if self._settings.width and self._settings.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._settings.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._settings.height)
        self._capture = capture

    def read(self) -> Frame:
        if self._capture is None:
            raise CameraLost("the camera is not open")
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise CameraLost(f"camera {self._settings.device!r} gave no frame")
        return np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class _Lost:
    def __repr__(self) -> str:
        return "CAMERA_LOST"


#: in a :class:`FakeCamera` script: this read fails as if the cable were pulled
CAMERA_LOST: Final = _Lost()
ScriptItem = Frame | _Lost


class FakeCamera:
    """A camera that plays a script: frames, and :data:`CAMERA_LOST` where a read fails.

    ``unavailable_opens`` makes that many calls to :meth:`open` fail first (a camera
    that is still enumerating). When the script ends, reads fail as a lost camera would.
    """

    def __init__(self, script: Iterable[ScriptItem], *, unavailable_opens: int = 0) -> None:
        self._script = iter(script)
        self._unavailable = unavailable_opens
        self.is_open = False
        self.opens = 0

    @classmethod
    def from_files(cls, paths: Iterable[str], *, repeat: int = 1) -> FakeCamera:
        """A camera showing each image file for ``repeat`` frames, then lost."""
        frames = []
        for path in paths:
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is None:
                raise ImageUnreadable(f"{path}: not an image OpenCV can decode")
            frames.extend([np.asarray(frame, dtype=np.uint8)] * repeat)
        return cls(frames)

    def open(self) -> None:
        self.opens += 1
        if self._unavailable > 0:
            self._unavailable -= 1
            raise CameraUnavailable("fake camera: not there yet")
        self.is_open = True

    def read(self) -> Frame:
        if not self.is_open:
            raise CameraLost("fake camera: read while closed")
        item = next(self._script, CAMERA_LOST)
        if isinstance(item, _Lost):
            raise CameraLost("fake camera: lost")
        return item

    def close(self) -> None:
        self.is_open = False


#: frames a linear code (Code 128) must be read in before it counts. Its only check is
#: one symbol modulo 103, so a thin, blurred label can be misread as another valid text;
#: a QR code's error correction makes that next to impossible. A camera's noise differs
#: from frame to frame, so the same misread twice is far rarer than once, while a label
#: held up is read in many frames: waiting for a second read costs one frame (~33 ms).
LINEAR_CODE_READS: Final = 2


class Debouncer:
    """Which codes are new in a frame, given the codes of every frame before it.

    A code stays "in view" while it keeps being read; it is forgotten only after being
    missed for ``forget_frames`` consecutive frames AND ``forget_seconds``. Both, because
    either alone repeats a code: frames alone at a low frame rate are a fraction of a
    second; seconds alone at a low frame rate can pass within one blurred frame. A linear
    code is new only at its ``linear_reads``-th read (no more than ``forget_seconds``
    between two reads).
    """

    def __init__(
        self, forget_frames: int, forget_seconds: float, linear_reads: int = LINEAR_CODE_READS
    ) -> None:
        self._forget_frames = forget_frames
        self._forget_seconds = forget_seconds
        self._linear_reads = linear_reads
        self._seen: dict[Decoded, tuple[float, int]] = {}  # code -> (last seen, missed frames)
        self._sightings: dict[Decoded, tuple[float, int]] = {}  # code -> (last read, reads)

    def new_codes(self, found: Iterable[Decoded], now: float) -> list[Decoded]:
        found = list(dict.fromkeys(found))
        for code in list(self._seen):
            if code not in found:
                self._miss(code, now)
        self._sightings = {
            code: sighting
            for code, sighting in self._sightings.items()
            if now - sighting[0] <= self._forget_seconds
        }
        fresh = [code for code in found if code not in self._seen and self._confirmed(code, now)]
        for code in found:
            if code not in self._sightings:
                self._seen[code] = (now, 0)
        return fresh

    def _confirmed(self, code: Decoded, now: float) -> bool:
        """Whether a code not in view yet has been read often enough to count."""
        needed = self._linear_reads if code.symbology is Symbology.CODE128 else 1
        reads = self._sightings.get(code, (now, 0))[1] + 1
        if reads < needed:
            self._sightings[code] = (now, reads)
            return False
        self._sightings.pop(code, None)
        return True

    def _miss(self, code: Decoded, now: float) -> None:
        last_seen, missed = self._seen[code]
        missed += 1
        if missed >= self._forget_frames and now - last_seen >= self._forget_seconds:
            del self._seen[code]
        else:
            self._seen[code] = (last_seen, missed)

    def forget_all(self) -> None:
        self._seen.clear()
        self._sightings.clear()


class CameraReader:
    """Reads frames until stopped, yielding each new code once and the camera's health."""

    def __init__(
        self,
        source: FrameSource,
        chain: DecoderChain,
        settings: CameraSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._source = source
        self._chain = chain
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._debouncer = Debouncer(settings.forget_frames, settings.forget_seconds)
        self._stopped = False
        self.frames = 0

    def stop(self) -> None:
        """Ask :meth:`events` to end after the frame being read."""
        self._stopped = True

    def events(self, *, max_frames: int | None = None) -> Iterator[ScanEvent]:
        try:
            yield from self._run(max_frames)
        finally:
            self._source.close()

    def _run(self, max_frames: int | None) -> Iterator[ScanEvent]:
        yield from self._connect(first=True)
        while not self._stopped and (max_frames is None or self.frames < max_frames):
            try:
                frame = self._source.read()
            except CameraLost as exc:
                logger.warning("camera lost: %s", exc)
                self._source.close()
                yield CameraDown(str(exc), attempt=0)
                yield from self._connect(first=False)
                continue
            self.frames += 1
            for code in self._debouncer.new_codes(self._chain.decode(frame), self._clock()):
                yield CodeRead.of(code, source="camera")

    def _connect(self, *, first: bool) -> Iterator[ScanEvent]:
        delay = self._settings.reconnect_initial
        attempt = 0
        while not self._stopped:
            try:
                self._source.open()
            except CameraUnavailable as exc:
                attempt += 1
                logger.warning("camera unavailable (attempt %s): %s", attempt, exc)
                yield CameraDown(str(exc), attempt=attempt)
                self._sleep(delay)
                delay = min(delay * 2, self._settings.reconnect_max)
                continue
            if attempt or not first:
                self._debouncer.forget_all()
                yield CameraUp(attempts=attempt)
            return
