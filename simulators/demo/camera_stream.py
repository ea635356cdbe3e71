"""The kiosk's camera as a network camera: an MJPEG stream of :mod:`simulators.camera` scenes.

The kiosk reads it exactly as it reads an IP camera: ``[camera] device`` is the stream's
URL and ``cv2.VideoCapture`` opens it, so the frames go through the agent's real camera
reader, debouncer and decoder chain. :meth:`VirtualCameraStream.show` puts something in
front of the lens (a phone with a pickup QR, or nothing); every client gets the current
picture ten times a second.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import cv2

from simulators.camera import Scene, render

logger = logging.getLogger(__name__)

FRAME_INTERVAL: Final = 0.1
#: frames small enough to render and decode quickly on a shared machine
WIDTH: Final = 640
HEIGHT: Final = 480
_BOUNDARY: Final = "frame"


class VirtualCameraStream:
    """Serves ``http://127.0.0.1:<port>/stream.mjpg``; :meth:`show` changes the picture."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jpeg = _jpeg(Scene(payload=None, width=WIDTH, height=HEIGHT))
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="camera-stream", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"

    def start(self) -> VirtualCameraStream:
        self._thread.start()
        return self

    def show(self, payload: str | None, *, seed: int = 0) -> None:
        """Hold a phone showing the QR of ``payload`` in front of the camera (None: nothing)."""
        scene = Scene(payload=payload, width=WIDTH, height=HEIGHT, seed=seed)
        jpeg = _jpeg(scene)
        with self._lock:
            self._jpeg = jpeg

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    def _current(self) -> bytes:
        with self._lock:
            return self._jpeg

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
                self.end_headers()
                try:
                    while not camera._stopping.wait(FRAME_INTERVAL):
                        self.wfile.write(_part(camera._current()))
                except OSError:  # the reader went away (BrokenPipe, ConnectionReset)
                    return

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("camera stream: " + format, *args)

        return Handler


def _jpeg(scene: Scene) -> bytes:
    ok, encoded = cv2.imencode(".jpg", render(scene))
    if not ok:
        raise RuntimeError("OpenCV could not encode a camera frame as JPEG")
    return bytes(encoded.tobytes())


def _part(jpeg: bytes) -> bytes:
    head = (
        f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    ).encode()
    return head + jpeg + b"\r\n"
