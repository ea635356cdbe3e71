"""Protocol-neutral interface shared by every lock-board codec.

This module is the contract between :mod:`firmware_protocol` and its users
(:mod:`simulators` on the board side, :mod:`locker_agent` on the host side).
It does no I/O: bytes in, frames out.

Vocabulary
----------
* **board**: the bus address of one lock-control PCB (as the protocol encodes it).
* **lock**: 1-based channel number on that board, as installers count them.
* **feedback signal**: the raw per-lock sensor bit the board reports
  (8A/80: status ``11`` / bitmap bit set; Kerong: lock-hook bit set). What that
  means for the *door* (closed or open) depends on the wiring and is decided
  by the agent's per-board polarity setting, never here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by a stream decoder's ``next_frame()`` when the buffered bytes do not
#: yet contain a complete frame. Compare with ``is``.
NEED_DATA: Final = _NeedData.NEED_DATA
NeedData = _NeedData


class RequestKind(enum.Enum):
    """What a host request asks of a board."""

    UNLOCK = "unlock"
    UNLOCK_ALL = "unlock_all"
    QUERY_LOCK = "query_lock"
    QUERY_ALL = "query_all"
    READ_ADDRESS = "read_address"
    BUS_STATUS = "bus_status"  # Kerong 0x32 to 0xF0: every board answers


@runtime_checkable
class Frame(Protocol):
    """Any immutable frame value: it can always serialise itself."""

    def to_bytes(self) -> bytes: ...


@runtime_checkable
class Request(Frame, Protocol):
    """A host → board frame."""

    @property
    def kind(self) -> RequestKind: ...

    @property
    def board(self) -> int: ...

    def matches(self, reply: Reply) -> bool:
        """True when ``reply`` is an answer to this request (kind, board, lock)."""
        ...


@runtime_checkable
class Reply(Frame, Protocol):
    """A board → host frame."""

    @property
    def board(self) -> int: ...

    def feedback(self) -> Mapping[int, bool]:
        """Raw feedback signal per 1-based lock number carried by this reply.

        Empty for replies that carry no lock state (e.g. an address reply).
        """
        ...


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes a stream decoder skipped while resynchronising (for logs and stats)."""

    data: bytes
    reason: str


class StreamDecoder(Protocol):
    """Incremental decoder: feed arbitrary chunks, pull complete frames.

    ``next_frame()`` returns a frame, a :class:`Garbage` record for bytes it had
    to discard (bad check byte, missing first byte, noise), or :data:`NEED_DATA`.
    It never raises on bad input: it resynchronises and reports the garbage.
    ``line_quiet()`` tells the decoder that the line has been silent for the
    inter-frame gap, which ends variable-length frames and flushes a partial
    frame that can no longer complete (reported as Garbage).
    """

    def feed(self, data: bytes) -> None: ...

    def next_frame(self) -> Frame | Garbage | NeedData: ...

    def line_quiet(self) -> None: ...

    @property
    def buffered(self) -> int:
        """Number of bytes held waiting for more data."""
        ...


class ReplyDecoder(StreamDecoder, Protocol):
    """Host-side stream decoder of board replies.

    The request manager tells it which request is outstanding, so replies whose
    shape is ambiguous on the wire (8A/80 query-one vs. query-all) are read as
    the kind that was asked for. ``expect(None)`` means no request is pending:
    anything that arrives then is stale or unsolicited.
    """

    def expect(self, request: Request | None) -> None: ...


class BoardProtocol(Protocol):
    """One lock-board protocol: builds requests and makes decoders.

    Implementations: :data:`firmware_protocol.xor8a80.PROTOCOL` ("8a80") and
    :data:`firmware_protocol.kerong.PROTOCOL` ("kerong"); look them up with
    :func:`firmware_protocol.get_protocol`.
    """

    @property
    def name(self) -> str: ...

    @property
    def default_baud(self) -> int: ...

    @property
    def board_range(self) -> range: ...

    @property
    def max_locks(self) -> int: ...

    def unlock(self, board: int, lock: int) -> Request: ...

    def unlock_all(self, board: int) -> Request: ...

    def query_lock(self, board: int, lock: int) -> Request: ...

    def query_all(self, board: int) -> Request: ...

    def reply_decoder(self) -> ReplyDecoder: ...

    def request_decoder(self) -> StreamDecoder:
        """Board-side decoder of host requests (used by the simulator)."""
        ...
