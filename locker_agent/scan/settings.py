"""Settings of the camera and the scanner module, as the lower layers take them.

Plain frozen values, so that ``locker_agent.config`` can build them without loading
OpenCV or pyserial; the ``[camera]`` and ``[scanner]`` sections of ``agent.toml`` map
onto them one to one (docs/scanning.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CameraSettings:
    """What :class:`~locker_agent.scan.camera.CameraReader` needs."""

    #: a camera index ("0"), a /dev/video* path, a stream URL or a video file
    device: str = "0"
    width: int | None = None
    height: int | None = None
    #: a code is forgotten (and reported again if shown again) once it has been out of
    #: view for this many consecutive frames AND this many seconds
    forget_frames: int = 10
    forget_seconds: float = 1.5
    #: reopening a lost camera: first wait, then doubled up to the maximum
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0


@dataclass(frozen=True)
class ScannerSettings:
    """What :class:`~locker_agent.scan.scanner.SerialScanner` needs."""

    #: /dev/ttyACM0, /dev/ttyUSB0, a pty, or socket://host:port
    port: str
    baudrate: int = 9600
    #: how long one read waits for bytes; bounds how late ``stop()`` is seen
    read_timeout: float = 0.2
