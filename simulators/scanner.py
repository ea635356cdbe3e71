"""A virtual barcode scanner module on a real pty.

The agent opens :attr:`VirtualScanner.port` with ``serial.serial_for_url`` exactly as it
would ``/dev/ttyACM0``; :meth:`VirtualScanner.scan` is a code held under the module: its
text and a line ending (CR, as most modules send by default) are written to the line.

    with VirtualScanner() as scanner:
        settings = ScannerSettings(port=scanner.port)
        scanner.scan("LKR1:...:1A2B")
        scanner.scan("JJD000123", ending="\\r\\n")
"""

from __future__ import annotations

import contextlib
import os
import tty

from simulators.errors import TransportError


class VirtualScanner:
    """A pty pair: the agent reads the slave end, :meth:`scan` writes to the master."""

    def __init__(self) -> None:
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:
            raise TransportError(f"cannot open a pty: {exc}") from exc
        # raw on both ends: no echo, no CR→LF translation — the bytes the module sends
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.sent: list[str] = []

    def scan(self, text: str, *, ending: str = "\r") -> None:
        """The module decoded ``text``: send it and the line ending."""
        self.write((text + ending).encode())
        self.sent.append(text)

    def write(self, data: bytes) -> None:
        """Raw bytes on the line (noise, a code split across writes)."""
        os.write(self._master, data)

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)

    def __enter__(self) -> VirtualScanner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
