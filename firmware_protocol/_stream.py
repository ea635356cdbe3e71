"""Shared machinery of the stream decoders: a buffer with quiet-line marks and a scanner loop.

Each protocol supplies a *scan* function that looks at the bytes starting with a frame's
first byte and answers one of three things: here is a frame of ``length`` bytes
(:class:`Found`), these bytes cannot start a frame (:class:`Reject`), or more bytes could
still complete one (:data:`WAIT`). The :class:`ScanningDecoder` loop turns those answers
into frames, :class:`~firmware_protocol.base.Garbage` records and
:data:`~firmware_protocol.base.NEED_DATA`, and guarantees progress: every call either
returns a frame, discards at least one byte, or holds fewer than ``max_length`` bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from firmware_protocol.base import NEED_DATA, Garbage, NeedData

FrameT = TypeVar("FrameT")


@dataclass(frozen=True, slots=True)
class Found(Generic[FrameT]):
    """The first ``length`` bytes of the window are ``frame``."""

    frame: FrameT
    length: int


@dataclass(frozen=True, slots=True)
class Reject:
    """The first byte of the window cannot start a valid frame."""

    reason: str


class _Wait(enum.Enum):
    WAIT = "WAIT"


#: A valid frame could still start here once more bytes arrive.
WAIT: Final = _Wait.WAIT

Verdict = Found[FrameT] | Reject | _Wait
#: ``scan(window, ended)``: ``ended`` is True when the line went quiet after ``window``.
Scan = Callable[[bytes, bool], Verdict[FrameT]]


class QuietMarkedBuffer:
    """Received bytes plus the offsets at which the line went quiet (burst ends)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._quiet_marks: list[int] = []

    def __len__(self) -> int:
        return len(self._data)

    def feed(self, data: bytes) -> None:
        self._data += data

    def mark_quiet(self) -> None:
        """Record that the bytes received so far form a complete burst."""
        end = len(self._data)
        if end and (not self._quiet_marks or self._quiet_marks[-1] != end):
            self._quiet_marks.append(end)

    def window(self) -> tuple[bytes, bool]:
        """The bytes of the current burst, and whether the line went quiet after them."""
        if self._quiet_marks:
            return bytes(self._data[: self._quiet_marks[0]]), True
        return bytes(self._data), False

    def take(self, count: int) -> bytes:
        """Remove and return the first ``count`` bytes."""
        taken = bytes(self._data[:count])
        del self._data[:count]
        self._quiet_marks = [mark - count for mark in self._quiet_marks if mark > count]
        return taken


class ScanningDecoder(Generic[FrameT]):
    """Stream decoder loop shared by every protocol and direction (see module docstring)."""

    def __init__(
        self,
        scan: Scan[FrameT],
        start_bytes: Collection[int],
        max_length: int,
        skipped_reasons: dict[int, str] | None = None,
    ) -> None:
        self._scan = scan
        self._start_bytes = frozenset(start_bytes)
        self._max_length = max_length
        self._skipped_reasons = skipped_reasons or {}
        self._buffer = QuietMarkedBuffer()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer.feed(bytes(data))

    def line_quiet(self) -> None:
        self._buffer.mark_quiet()

    def next_frame(self) -> FrameT | Garbage | NeedData:
        window, ended = self._buffer.window()
        if not window:
            return NEED_DATA
        if window[0] not in self._start_bytes:
            reason = self._skipped_reasons.get(window[0], "bytes before a frame start")
            return self._discard(window, reason)
        verdict = self._scan(window, ended)
        if isinstance(verdict, Found):
            self._buffer.take(verdict.length)
            return verdict.frame
        if isinstance(verdict, Reject):
            return self._discard(window, verdict.reason)
        return self._wait_or_discard(window, ended)

    def _wait_or_discard(self, window: bytes, ended: bool) -> Garbage | NeedData:
        if ended:
            return self._discard(window, "incomplete frame cut off by a quiet line")
        if len(window) >= self._max_length:  # a scan bug must never grow the buffer
            return self._discard(window, "no valid frame within the longest frame length")
        return NEED_DATA

    def _discard(self, window: bytes, reason: str) -> Garbage:
        """Drop the first byte and everything up to the next possible frame start."""
        end = 1
        while end < len(window) and window[end] not in self._start_bytes:
            end += 1
        return Garbage(self._buffer.take(end), reason)
