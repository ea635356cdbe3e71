"""The serial barcode scanner module: one decoded code per line, ended by CR (or CRLF).

Locker scanner modules (USB-CDC or TTL serial) decode on board and send the text, then
``\\r`` — some ``\\r\\n``, some ``\\n``. :class:`LineSplitter` (sans-IO) cuts the byte
stream into lines whatever the ending; :class:`SerialScanner` owns the port, opened with
``serial.serial_for_url`` so the setting can be ``/dev/ttyACM0``, a pty or ``socket://``;
:func:`scanner_events` turns its lines into the same :class:`CodeRead` events as the
camera's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Final

import serial

from locker_agent.errors import ScannerError
from locker_agent.scan.decoders import Decoded, Symbology
from locker_agent.scan.events import CodeRead
from locker_agent.scan.settings import ScannerSettings

logger = logging.getLogger(__name__)

#: longer than any code we print (a pickup QR is ~42 characters, a label ~40); a line
#: longer than this is line noise or a stuck module and is dropped, not kept growing
MAX_LINE: Final = 512
_ENDINGS: Final = b"\r\n"


class LineSplitter:
    """Bytes in, complete lines out; CR, LF and CRLF all end a line, empty lines vanish."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max_line = max_line
        self._pending = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        for byte in data:
            if byte in _ENDINGS:
                lines.extend(self._finish())
            elif len(self._pending) >= self._max_line:
                self._overlong = True
            else:
                self._pending.append(byte)
        return lines

    def _finish(self) -> list[str]:
        raw, overlong = bytes(self._pending), self._overlong
        self._pending.clear()
        self._overlong = False
        if overlong:
            logger.warning("scanner: dropped a line longer than %s bytes", self._max_line)
            return []
        text = raw.decode("utf-8", errors="replace").strip()
        return [text] if text else []


class SerialScanner:
    """The scanner module's port; :meth:`lines` yields each code's text until stopped."""

    def __init__(self, settings: ScannerSettings) -> None:
        self._settings = settings
        self._port: serial.SerialBase | None = None
        self._stopped = False

    def __enter__(self) -> SerialScanner:
        try:
            self._port = serial.serial_for_url(
                self._settings.port,
                baudrate=self._settings.baudrate,
                timeout=self._settings.read_timeout,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScannerError(f"cannot open scanner {self._settings.port!r}: {exc}") from exc
        return self

    def __exit__(self, *_: object) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def stop(self) -> None:
        self._stopped = True

    def lines(self) -> Iterator[str]:
        splitter = LineSplitter()
        while not self._stopped:
            yield from splitter.feed(self._read())

    def _read(self) -> bytes:
        if self._port is None:
            raise ScannerError("the scanner is not open")
        try:
            # one byte waits up to read_timeout; the rest of a burst is already buffered
            first = bytes(self._port.read(1))
            waiting = int(getattr(self._port, "in_waiting", 0)) if first else 0
            return first + bytes(self._port.read(waiting)) if waiting else first
        except (serial.SerialException, OSError) as exc:
            raise ScannerError(f"scanner {self._settings.port!r}: {exc}") from exc


def scanner_events(scanner: SerialScanner) -> Iterator[CodeRead]:
    """Each line as a :class:`CodeRead`; the module does not say which symbology it read."""
    for line in scanner.lines():
        yield CodeRead.of(Decoded(line, Symbology.UNKNOWN), source="scanner")
