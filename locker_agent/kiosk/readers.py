"""The kiosk's code readers as input sources: the camera and the serial scanner module.

Each source runs on its own thread until stopped and hands the kiosk what it reads as
:class:`~locker_agent.kiosk.machine.Scanned` inputs, and its own health as
:class:`~locker_agent.kiosk.machine.ReaderChanged`. Which texts matter is the kiosk's
decision, not the reader's: every text is passed on. OpenCV and the decoders are loaded
only when a camera is configured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from locker_agent.errors import ScannerError
from locker_agent.kiosk.machine import KioskInput, ReaderChanged, Scanned
from locker_agent.scan.settings import ScannerSettings

if TYPE_CHECKING:
    from locker_agent.config import CameraSection
    from locker_agent.scan.camera import FrameSource

logger = logging.getLogger(__name__)

Send = Callable[[KioskInput], None]
#: seconds between attempts to reopen a scanner port that failed
SCANNER_RETRY: Final = 2.0


class ScanSource(Protocol):
    name: str

    def run(self, send: Send, stopping: threading.Event) -> None:
        """Read until ``stopping`` is set (or :meth:`stop` is called)."""

    def stop(self) -> None: ...


class CameraSource:
    """The ``[camera]`` through :class:`~locker_agent.scan.camera.CameraReader`.

    ``frames``: read this frame source instead of opening ``[camera]``'s device (a fake
    camera, as the kiosk benchmark feeds generated frames); decoding is unchanged.
    """

    name = "camera"

    def __init__(self, section: CameraSection, *, frames: FrameSource | None = None) -> None:
        self._section = section
        self._frames = frames
        self._stop = threading.Event()
        self._reader_stop: Callable[[], None] = self._stop.set

    def run(self, send: Send, stopping: threading.Event) -> None:
        from locker_agent.scan.camera import CameraReader, OpenCvCamera
        from locker_agent.scan.events import CameraDown, CameraUp, CodeRead

        def pause(seconds: float) -> None:
            stopping.wait(seconds)  # a reconnect backoff that a stop cuts short

        settings = self._section.camera_settings()
        camera = self._frames if self._frames is not None else OpenCvCamera(settings)
        reader = CameraReader(camera, self._section.chain(), settings, sleep=pause)
        self._reader_stop = reader.stop
        if self._stop.is_set():
            return
        for event in reader.events():
            if isinstance(event, CodeRead):
                send(Scanned(event.text))
            elif isinstance(event, CameraDown):
                send(ReaderChanged("camera", up=False, detail=event.reason))
            elif isinstance(event, CameraUp):
                send(ReaderChanged("camera", up=True))

    def stop(self) -> None:
        self._stop.set()
        self._reader_stop()


class ScannerSource:
    """The ``[scanner]`` module: reopened after ``retry`` seconds when its port fails."""

    name = "scanner"

    def __init__(self, settings: ScannerSettings, *, retry: float = SCANNER_RETRY) -> None:
        from locker_agent.scan.scanner import SerialScanner

        self._scanner_type = SerialScanner
        self._settings = settings
        self._retry = retry
        self._current: SerialScanner | None = None
        self._stopped = threading.Event()

    def run(self, send: Send, stopping: threading.Event) -> None:
        down = False
        while not (stopping.is_set() or self._stopped.is_set()):
            try:
                with self._scanner_type(self._settings) as scanner:
                    self._current = scanner
                    if down:
                        down = False
                        send(ReaderChanged("scanner", up=True))
                    for line in scanner.lines():
                        send(Scanned(line))
            except ScannerError as exc:
                logger.warning("scanner: %s", exc)
                down = True
                send(ReaderChanged("scanner", up=False, detail=str(exc)))
                stopping.wait(self._retry)

    def stop(self) -> None:
        self._stopped.set()
        if self._current is not None:
            self._current.stop()
