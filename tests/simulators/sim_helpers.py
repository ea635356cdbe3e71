"""Helpers of the simulator tests: a tiny host talking pyserial to a served bus.

The host side uses the real reply decoders of :mod:`firmware_protocol`, exactly as the
cabinet agent will, so every assertion is about bytes that crossed a real pty (or TCP
socket) and were read back through ``serial.serial_for_url``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import serial

from firmware_protocol.base import (
    NEED_DATA,
    BoardProtocol,
    Frame,
    Garbage,
    Reply,
    ReplyDecoder,
    Request,
)
from simulators import Timing
from tests import waiting

#: Realistic order of events, but every delay shrunk to milliseconds.
FAST = Timing.fast()
#: How long the host listens when it expects nothing to arrive.
SILENCE = 0.25
#: Host-side quiet gap that ends a burst (Open-Locker uses 25 ms on real adapters).
HOST_QUIET_GAP = 0.02


@dataclass
class Host:
    """The host end of the line: writes requests, reads bytes and decoded replies."""

    port: serial.Serial
    protocol: BoardProtocol
    garbage: list[Garbage] = field(default_factory=list)

    def send(self, request: Request) -> float:
        """Write the request; returns the monotonic time the write finished."""
        self.port.write(request.to_bytes())
        self.port.flush()
        return time.monotonic()

    def arrivals(self, window: float) -> list[tuple[float, bytes]]:
        """Every chunk read within ``window`` seconds, with its arrival time."""
        deadline = time.monotonic() + window
        chunks: list[tuple[float, bytes]] = []
        while time.monotonic() < deadline:
            data = self.port.read(max(1, self.port.in_waiting))
            if data:
                chunks.append((time.monotonic(), data))
        return chunks

    def read_bytes(self, window: float = SILENCE) -> bytes:
        return b"".join(data for _, data in self.arrivals(window))

    def replies(self, request: Request | None, count: int, timeout: float = 1.0) -> list[Reply]:
        """Decode up to ``count`` replies arriving within ``timeout`` seconds."""
        decoder = self.protocol.reply_decoder()
        decoder.expect(request)
        found: list[Reply] = []
        deadline = time.monotonic() + timeout
        last_byte = time.monotonic()
        while len(found) < count and time.monotonic() < deadline:
            data = self.port.read(max(1, self.port.in_waiting))
            if data:
                decoder.feed(data)
                last_byte = time.monotonic()
            elif decoder.buffered and time.monotonic() - last_byte > HOST_QUIET_GAP:
                decoder.line_quiet()
            found.extend(self._drain(decoder))
        return found

    def _drain(self, decoder: ReplyDecoder) -> Iterator[Reply]:
        while (item := decoder.next_frame()) is not NEED_DATA:
            if isinstance(item, Garbage):
                self.garbage.append(item)
            else:
                assert isinstance(item, Reply)
                yield item

    def ask(self, request: Request, timeout: float = 3.0) -> Reply:
        """Send ``request`` and return its one reply (fails the test on silence)."""
        self.send(request)
        replies = self.replies(request, 1, timeout)
        assert replies, f"no reply to {request!r} within {timeout} s"
        assert request.matches(replies[0]), f"{replies[0]!r} does not answer {request!r}"
        return replies[0]


#: polls of the simulator tests: a FAST pulse or spring lasts a few tens of milliseconds
SIM_POLL_INTERVAL_S = 0.002


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """:func:`tests.waiting.wait_until`, polled often enough to see a FAST pulse."""
    return waiting.wait_until(condition, timeout, every=SIM_POLL_INTERVAL_S)


def frames_of(chunks: list[tuple[float, bytes]], gap: float) -> list[bytes]:
    """Group arrival chunks into bursts separated by at least ``gap`` seconds of silence."""
    bursts: list[bytearray] = []
    last = float("-inf")
    for at, data in chunks:
        if at - last >= gap or not bursts:
            bursts.append(bytearray())
        bursts[-1] += data
        last = at
    return [bytes(b) for b in bursts]


def expected(frame: Frame) -> bytes:
    return frame.to_bytes()
