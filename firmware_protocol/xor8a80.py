"""Protocol A: the generic "8A/80" RS485 lock-control board (9600 8N1, XOR check byte).

Reference: ``docs/protocols.md`` (layout, vectors, public sources). Every frame is
``bytes… + BCC`` with BCC = XOR of all preceding bytes::

    unlock one        8A BB LL 11 CC    reply 8A BB LL SS CC   (SS = 11 or 00)
    unlock all        8A BB 00 11 CC    reply 8A BB 00 SS CC
    query one lock    80 BB LL 33 CC    reply 80 BB LL SS CC
    query all locks   80 BB 00 33 CC    reply 80 BB S_n … S_1 33 CC  (1..4 status bytes)
    read address      80 01 00 99 18    reply 80 01 AA 99 CC   (AA = DIP address)

Boards are 1..31 and locks 1..32 on the wire (0 = "all locks" where the protocol says).
In the query-all bitmap the LAST status byte holds locks 1-8 with bit 0 = lock 1; its
length is read from the frame, never derived from a channel count.

XOR is a weak check (identical bytes cancel), so decoding also validates the header,
board, lock, status and length; callers cross-check the echoed board and lock with
:meth:`Request.matches <firmware_protocol.base.Request.matches>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Final, TypeVar

from firmware_protocol._stream import WAIT, Found, Reject, ScanningDecoder, Verdict
from firmware_protocol.base import Reply, Request, RequestKind
from firmware_protocol.errors import (
    ChecksumError,
    EncodeError,
    FrameError,
    UnexpectedFrameError,
)

HEADER_UNLOCK: Final = 0x8A
HEADER_QUERY: Final = 0x80
#: "Active feedback" push frames of custom firmware; we never ask for them and skip them.
HEADER_UNSOLICITED: Final = 0x82
FUNC_UNLOCK: Final = 0x11
FUNC_QUERY: Final = 0x33
FUNC_READ_ADDRESS: Final = 0x99
#: Reply status byte: the lock's feedback input carries a signal.
SIGNAL: Final = 0x11
#: Reply status byte: no signal on the feedback input.
NO_SIGNAL: Final = 0x00
ALL_LOCKS: Final = 0
BOARDS: Final = range(1, 32)
LOCKS: Final = range(1, 33)
STATUS_BYTE_COUNTS: Final = range(1, 5)
FRAME_LENGTH: Final = 5
#: The longest frame: a query-all reply with four status bytes.
MAX_FRAME_LENGTH: Final = 2 + STATUS_BYTE_COUNTS.stop - 1 + 2
READ_ADDRESS_BYTES: Final = bytes.fromhex("80 01 00 99 18")
_READ_ADDRESS_BOARD: Final = 0x01
_STATUSES: Final = (NO_SIGNAL, SIGNAL)

FrameT = TypeVar("FrameT")


def bcc(data: bytes) -> int:
    """XOR of every byte: the check byte of ``data``."""
    return reduce(xor, data, 0)


def _seal(*body: int) -> bytes:
    return bytes([*body, bcc(bytes(body))])


def _require(value: int, allowed: range | tuple[int, ...], what: str) -> None:
    if value not in allowed:
        raise EncodeError(f"{what} {value!r} is outside {allowed!r}")


def _built(build: Callable[[], FrameT]) -> FrameT:
    """Build a frame from wire values: an impossible value is the device's fault."""
    try:
        return build()
    except EncodeError as exc:
        raise FrameError(str(exc)) from exc


def _expect_type(frame: object, cls: type[FrameT]) -> FrameT:
    if not isinstance(frame, cls):
        raise UnexpectedFrameError(f"expected {cls.__name__}, got {frame!r}")
    return frame


def _bits(byte: int, first_lock: int) -> dict[int, bool]:
    return {first_lock + bit: bool(byte >> bit & 1) for bit in range(8)}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    """Pulse one lock: ``8A BB LL 11 CC``."""

    board: int
    lock: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.lock, LOCKS, "lock")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.UNLOCK

    def to_bytes(self) -> bytes:
        return _seal(HEADER_UNLOCK, self.board, self.lock, FUNC_UNLOCK)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return (
            isinstance(reply, UnlockReply) and reply.board == self.board and reply.lock == self.lock
        )


@dataclass(frozen=True, slots=True)
class UnlockAllRequest:
    """Pulse every lock of a board, one after another: ``8A BB 00 11 CC``."""

    board: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.UNLOCK_ALL

    def to_bytes(self) -> bytes:
        return _seal(HEADER_UNLOCK, self.board, ALL_LOCKS, FUNC_UNLOCK)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockAllRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return (
            isinstance(reply, UnlockReply) and reply.board == self.board and reply.lock == ALL_LOCKS
        )


@dataclass(frozen=True, slots=True)
class QueryLockRequest:
    """Read one lock's feedback input: ``80 BB LL 33 CC``."""

    board: int
    lock: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.lock, LOCKS, "lock")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.QUERY_LOCK

    def to_bytes(self) -> bytes:
        return _seal(HEADER_QUERY, self.board, self.lock, FUNC_QUERY)

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryLockRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return (
            isinstance(reply, LockStatusReply)
            and reply.board == self.board
            and reply.lock == self.lock
        )


@dataclass(frozen=True, slots=True)
class QueryAllRequest:
    """Read every feedback input of a board: ``80 BB 00 33 CC``."""

    board: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.QUERY_ALL

    def to_bytes(self) -> bytes:
        return _seal(HEADER_QUERY, self.board, ALL_LOCKS, FUNC_QUERY)

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryAllRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return isinstance(reply, AllLocksReply) and reply.board == self.board


@dataclass(frozen=True, slots=True)
class ReadAddressRequest:
    """Ask the (single) board on the line for its DIP address: fixed ``80 01 00 99 18``.

    ``board`` is the fixed board byte of the frame (1); any board answers it, so it is
    only useful with one board connected.
    """

    @property
    def board(self) -> int:
        return _READ_ADDRESS_BOARD

    @property
    def kind(self) -> RequestKind:
        return RequestKind.READ_ADDRESS

    def to_bytes(self) -> bytes:
        return READ_ADDRESS_BYTES

    @classmethod
    def from_bytes(cls, data: bytes) -> ReadAddressRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return isinstance(reply, AddressReply)


XorRequest = (
    UnlockRequest | UnlockAllRequest | QueryLockRequest | QueryAllRequest | ReadAddressRequest
)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class UnlockReply:
    """Answer to an unlock, sent after the pulse: ``8A BB LL SS CC`` (lock 0 = unlock-all)."""

    board: int
    lock: int
    status: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.lock, range(ALL_LOCKS, LOCKS.stop), "lock")
        _require(self.status, _STATUSES, "status")

    def to_bytes(self) -> bytes:
        return _seal(HEADER_UNLOCK, self.board, self.lock, self.status)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockReply:
        return _expect_type(decode_reply(data), cls)

    def feedback(self) -> Mapping[int, bool]:
        """The unlocked lock's signal; empty for the unlock-all reply (no per-lock state)."""
        if self.lock == ALL_LOCKS:
            return {}
        return {self.lock: self.status == SIGNAL}


@dataclass(frozen=True, slots=True)
class LockStatusReply:
    """One lock's feedback input: ``80 BB LL SS CC``."""

    board: int
    lock: int
    status: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.lock, LOCKS, "lock")
        _require(self.status, _STATUSES, "status")

    def to_bytes(self) -> bytes:
        return _seal(HEADER_QUERY, self.board, self.lock, self.status)

    @classmethod
    def from_bytes(cls, data: bytes) -> LockStatusReply:
        return _expect_type(decode_reply(data), cls)

    def feedback(self) -> Mapping[int, bool]:
        return {self.lock: self.status == SIGNAL}


@dataclass(frozen=True, slots=True)
class AllLocksReply:
    """Every feedback input: ``80 BB S_n … S_1 33 CC``; S_1 (last) = locks 1-8, bit 0 = lock 1."""

    board: int
    status_bytes: bytes

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(len(self.status_bytes), STATUS_BYTE_COUNTS, "status byte count")

    @classmethod
    def from_feedback(
        cls, board: int, feedback: Mapping[int, bool], status_byte_count: int
    ) -> AllLocksReply:
        """Build the reply of a board that reports ``status_byte_count`` status bytes."""
        _require(status_byte_count, STATUS_BYTE_COUNTS, "status byte count")
        bitmap = 0
        for lock, signal in feedback.items():
            _require(lock, range(1, 8 * status_byte_count + 1), "lock")
            bitmap |= int(signal) << (lock - 1)
        return cls(board, bitmap.to_bytes(status_byte_count, "big"))

    def to_bytes(self) -> bytes:
        return _seal(HEADER_QUERY, self.board, *self.status_bytes, FUNC_QUERY)

    @classmethod
    def from_bytes(cls, data: bytes) -> AllLocksReply:
        return _expect_type(decode_reply(data), cls)

    def feedback(self) -> Mapping[int, bool]:
        signals: dict[int, bool] = {}
        for index, byte in enumerate(reversed(self.status_bytes)):
            signals.update(_bits(byte, 8 * index + 1))
        return signals


@dataclass(frozen=True, slots=True)
class AddressReply:
    """The DIP address of the board that answered: ``80 01 AA 99 CC``."""

    address: int

    def __post_init__(self) -> None:
        _require(self.address, BOARDS, "address")

    @property
    def board(self) -> int:
        return self.address

    def to_bytes(self) -> bytes:
        return _seal(HEADER_QUERY, _READ_ADDRESS_BOARD, self.address, FUNC_READ_ADDRESS)

    @classmethod
    def from_bytes(cls, data: bytes) -> AddressReply:
        return _expect_type(decode_reply(data), cls)

    def feedback(self) -> Mapping[int, bool]:
        return {}


XorReply = UnlockReply | LockStatusReply | AllLocksReply | AddressReply


# --------------------------------------------------------------------------- decoding


def _checked(data: bytes, lengths: range) -> bytes:
    """Validate length, header and BCC; return the frame without its BCC."""
    data = bytes(data)
    if len(data) not in lengths:
        raise FrameError(f"{len(data)} bytes is not a valid frame length ({lengths!r})")
    if data[0] not in (HEADER_UNLOCK, HEADER_QUERY):
        raise FrameError(f"unknown header 0x{data[0]:02X}")
    if bcc(data[:-1]) != data[-1]:
        raise ChecksumError(f"BCC 0x{data[-1]:02X} != 0x{bcc(data[:-1]):02X} in {data.hex(' ')}")
    return data[:-1]


_REQUEST_BUILDERS: Final[dict[tuple[int, int], Callable[[int, int], XorRequest]]] = {
    (HEADER_UNLOCK, FUNC_UNLOCK): lambda board, lock: (
        UnlockAllRequest(board) if lock == ALL_LOCKS else UnlockRequest(board, lock)
    ),
    (HEADER_QUERY, FUNC_QUERY): lambda board, lock: (
        QueryAllRequest(board) if lock == ALL_LOCKS else QueryLockRequest(board, lock)
    ),
}


def decode_request(data: bytes) -> XorRequest:
    """Decode one complete host → board frame."""
    header, board, lock, function = _checked(data, range(FRAME_LENGTH, FRAME_LENGTH + 1))
    if bytes(data) == READ_ADDRESS_BYTES:
        return ReadAddressRequest()
    build = _REQUEST_BUILDERS.get((header, function))
    if build is None:
        raise UnexpectedFrameError(f"no request 0x{header:02X} … 0x{function:02X}")
    return _built(lambda: build(board, lock))


def decode_reply(data: bytes) -> XorReply:
    """Decode one complete board → host frame (its length tells the shapes apart)."""
    body = _checked(data, range(FRAME_LENGTH, MAX_FRAME_LENGTH + 1))
    header, board = body[0], body[1]
    if header == HEADER_UNLOCK:
        if len(body) != FRAME_LENGTH - 1:
            raise FrameError(f"unlock reply must be {FRAME_LENGTH} bytes: {body.hex(' ')}")
        return _built(lambda: UnlockReply(board, body[2], body[3]))
    if body[-1] == FUNC_QUERY:
        return _built(lambda: AllLocksReply(board, body[2:-1]))
    if len(body) != FRAME_LENGTH - 1:
        raise FrameError(f"query-all reply must end with 33: {body.hex(' ')}")
    if body[3] == FUNC_READ_ADDRESS:
        return _decode_address_reply(body)
    return _built(lambda: LockStatusReply(board, body[2], body[3]))


def _decode_address_reply(body: bytes) -> AddressReply:
    if body[1] != _READ_ADDRESS_BOARD:
        raise FrameError(f"address reply with board byte 0x{body[1]:02X}: {body.hex(' ')}")
    return _built(lambda: AddressReply(body[2]))


# --------------------------------------------------------------------------- streams


def _try_decode(data: bytes) -> XorReply | None:
    try:
        return decode_reply(data)
    except FrameError:
        return None


def _scan_fixed(
    window: bytes, prefix_ok: Callable[[bytes], bool], decode: Callable[[bytes], FrameT]
) -> Verdict[FrameT]:
    """Scan a 5-byte frame: reject a bad prefix early, then decode when complete."""
    candidate = window[:FRAME_LENGTH]
    if not prefix_ok(candidate):
        return Reject(f"no valid frame starts with {candidate.hex(' ')}")
    if len(candidate) < FRAME_LENGTH:
        return WAIT
    try:
        return Found(decode(candidate), FRAME_LENGTH)
    except ChecksumError:
        return Reject(f"bad BCC in {candidate.hex(' ')}")
    except FrameError as exc:
        return Reject(str(exc))


def _fields_ok(candidate: bytes, locks: range, functions: tuple[int, ...]) -> bool:
    """True when the bytes present could be the start of ``HDR BB LL FN``."""
    checks = (BOARDS, locks, functions)
    return all(byte in allowed for byte, allowed in zip(candidate[1:4], checks, strict=False))


def _request_prefix_ok(candidate: bytes) -> bool:
    if candidate.startswith(READ_ADDRESS_BYTES[: len(candidate)]):
        return True
    function = FUNC_UNLOCK if candidate[0] == HEADER_UNLOCK else FUNC_QUERY
    return _fields_ok(candidate, range(ALL_LOCKS, LOCKS.stop), (function,))


def _unlock_reply_prefix_ok(candidate: bytes) -> bool:
    return _fields_ok(candidate, range(ALL_LOCKS, LOCKS.stop), _STATUSES)


def _scan_request(window: bytes, ended: bool) -> Verdict[XorRequest]:
    return _scan_fixed(window, _request_prefix_ok, decode_request)


class RequestStreamDecoder(ScanningDecoder[XorRequest]):
    """Board-side decoder of host requests (used by the simulator)."""

    def __init__(self) -> None:
        super().__init__(_scan_request, (HEADER_UNLOCK, HEADER_QUERY), FRAME_LENGTH)


class ReplyStreamDecoder(ScanningDecoder[XorReply]):
    """Host-side decoder of board replies.

    A query-all reply has 1..4 status bytes and no length field, so it ends where the
    line goes quiet (:meth:`line_quiet`), at the longest possible length, or as soon as
    no longer reading is possible. While a query-all request is expected, a 5-byte
    ``80`` frame is held until then; otherwise single-lock and address replies are
    returned as soon as their 5 bytes check (no quiet gap needed), unless the bytes
    already buffered complete a longer query-all reading, which then wins: a late
    query-all reply must not pass for a single-lock answer.

    Half-duplex echo is the transport's job: an unlock reply with status ``11`` is
    byte-identical to its request, and so is a 1-status query-all reply of ``00``.
    """

    def __init__(self) -> None:
        super().__init__(
            self._scan_reply,
            (HEADER_UNLOCK, HEADER_QUERY),
            MAX_FRAME_LENGTH,
            {HEADER_UNSOLICITED: "unsolicited 0x82 frame skipped"},
        )
        self._expected: Request | None = None

    def expect(self, request: Request | None) -> None:
        self._expected = request

    def _scan_reply(self, window: bytes, ended: bool) -> Verdict[XorReply]:
        if window[0] == HEADER_UNLOCK:
            return _scan_fixed(window, _unlock_reply_prefix_ok, decode_reply)
        if len(window) > 1 and window[1] not in BOARDS:
            return Reject(f"board byte 0x{window[1]:02X} out of range")
        return self._scan_query_reply(window, ended)

    def _scan_query_reply(self, window: bytes, ended: bool) -> Verdict[XorReply]:
        found = [
            Found(frame, length)
            for length in range(FRAME_LENGTH, min(len(window), MAX_FRAME_LENGTH) + 1)
            if (frame := _try_decode(window[:length])) is not None
        ]
        wants_all = self._expected is not None and self._expected.kind is RequestKind.QUERY_ALL
        if ended:
            whole = [f for f in found if f.length == len(window)]
            return _best(whole or found, wants_all)
        if not wants_all and found and not _all_locks(found):
            return found[0]  # a complete single-lock or address reply: no need to wait
        if any(_all_locks_possible(window, n) for n in _longer_lengths(window)):
            return WAIT
        return _best(found, wants_all)


def _all_locks(found: list[Found[XorReply]]) -> list[Found[XorReply]]:
    """The query-all readings among ``found``, longest first."""
    readings = [f for f in found if isinstance(f.frame, AllLocksReply)]
    return sorted(readings, key=lambda f: f.length, reverse=True)


def _best(found: list[Found[XorReply]], wants_all: bool) -> Verdict[XorReply]:
    """Choose among complete readings: the longest query-all one when it was asked for or
    when it explains more bytes than a 5-byte reply (a late query-all answer must not
    pass for a single-lock one); otherwise the 5-byte reply."""
    if not found:
        return Reject("no valid 80 reply in these bytes")
    all_locks = _all_locks(found)
    others = [f for f in found if not isinstance(f.frame, AllLocksReply)]
    if wants_all or (all_locks and all_locks[0].length > FRAME_LENGTH):
        return (all_locks + others)[0]
    return (others + all_locks)[0]


def _longer_lengths(window: bytes) -> range:
    return range(max(len(window) + 1, FRAME_LENGTH), MAX_FRAME_LENGTH + 1)


def _all_locks_possible(window: bytes, length: int) -> bool:
    """Could a query-all reply of ``length`` bytes still be completed from ``window``?"""
    function_at = length - 2
    return function_at >= len(window) or window[function_at] == FUNC_QUERY


# --------------------------------------------------------------------------- protocol


@dataclass(frozen=True, slots=True)
class Xor8A80Protocol:
    """The 8A/80 board as a :class:`~firmware_protocol.base.BoardProtocol`."""

    name: str = "8a80"
    default_baud: int = 9600

    @property
    def board_range(self) -> range:
        return BOARDS

    @property
    def max_locks(self) -> int:
        return len(LOCKS)

    def unlock(self, board: int, lock: int) -> UnlockRequest:
        return UnlockRequest(board, lock)

    def unlock_all(self, board: int) -> UnlockAllRequest:
        return UnlockAllRequest(board)

    def query_lock(self, board: int, lock: int) -> QueryLockRequest:
        return QueryLockRequest(board, lock)

    def query_all(self, board: int) -> QueryAllRequest:
        return QueryAllRequest(board)

    def reply_decoder(self) -> ReplyStreamDecoder:
        return ReplyStreamDecoder()

    def request_decoder(self) -> RequestStreamDecoder:
        return RequestStreamDecoder()


PROTOCOL: Final = Xor8A80Protocol()
