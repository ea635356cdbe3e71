"""Protocol B: Kerong KR-CU16 parcel-locker control unit (19200 8N1, 8-bit sum).

Reference: ``docs/protocols.md`` (layout, vectors, public sources)::

    request   02 ADDR CMD 03 SUM                      SUM = (sum of preceding bytes) & 0xFF
    reply     02 ADDR 35|36 H1 H2 I1 I2 03 SUM        9 bytes

ADDR packs the board (high nibble, 0..14) and the lock index (low nibble, 0..15; our
lock numbers are 1-based, so lock L is nibble L-1). ``F0`` is the bus-wide broadcast of
command ``32``, which every board answers with a ``36`` reply. ``H1``/``H2`` are the
lock-hook bits of locks 1-8 / 9-16 (bit set = hook engaged); ``I1``/``I2`` the infrared
"item inside" bits. Replies are matched to requests on ``ADDR & 0xF0`` (the board); the
low nibble is kept as read so frames round-trip exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from firmware_protocol._stream import WAIT, Found, Reject, ScanningDecoder, Verdict
from firmware_protocol.base import Reply, Request, RequestKind
from firmware_protocol.errors import (
    ChecksumError,
    EncodeError,
    FrameError,
    UnexpectedFrameError,
)

STX: Final = 0x02
ETX: Final = 0x03
CMD_STATUS: Final = 0x30
CMD_UNLOCK: Final = 0x31
CMD_BUS_STATUS: Final = 0x32
CMD_UNLOCK_ALL: Final = 0x33
CMD_STATUS_REPLY: Final = 0x35
CMD_BUS_STATUS_REPLY: Final = 0x36
#: Board number of the bus-wide broadcast address ``F0``; never a real board's address.
BROADCAST_BOARD: Final = 0x0F
BOARDS: Final = range(0, BROADCAST_BOARD)
LOCKS: Final = range(1, 17)
NIBBLES: Final = range(0, 16)
REQUEST_LENGTH: Final = 5
REPLY_LENGTH: Final = 9
BUS_STATUS_BYTES: Final = bytes.fromhex("02 F0 32 03 27")
_SIXTEEN_BITS: Final = range(0, 0x1_0000)

FrameT = TypeVar("FrameT")


def checksum(data: bytes) -> int:
    """The 8-bit sum of every byte: the check byte of ``data``."""
    return sum(data) & 0xFF


def _seal(*body: int) -> bytes:
    return bytes([*body, checksum(bytes(body))])


def _address(board: int, nibble: int) -> int:
    return board << 4 | nibble


def _require(value: int, allowed: range, what: str) -> None:
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


def _bitmap(signals: Mapping[int, bool]) -> int:
    bitmap = 0
    for lock, signal in signals.items():
        _require(lock, LOCKS, "lock")
        bitmap |= int(signal) << (lock - 1)
    return bitmap


def _signals(bitmap: int) -> dict[int, bool]:
    return {lock: bool(bitmap >> (lock - 1) & 1) for lock in LOCKS}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Status of one board (all 16 locks): ``02 B0 30 03 SUM``.

    The board answers whatever the low nibble; ``addr_low`` keeps it as read.
    """

    board: int
    addr_low: int = 0

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.addr_low, NIBBLES, "address low nibble")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.QUERY_ALL

    def to_bytes(self) -> bytes:
        return _seal(STX, _address(self.board, self.addr_low), CMD_STATUS, ETX)

    @classmethod
    def from_bytes(cls, data: bytes) -> StatusRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return _is_board_status(reply, self.board)


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    """Pulse one lock: ``02 BL 31 03 SUM`` with L = lock - 1."""

    board: int
    lock: int

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.lock, LOCKS, "lock")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.UNLOCK

    def to_bytes(self) -> bytes:
        return _seal(STX, _address(self.board, self.lock - 1), CMD_UNLOCK, ETX)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return _is_board_status(reply, self.board)


@dataclass(frozen=True, slots=True)
class UnlockAllRequest:
    """Pulse every lock of a board: ``02 B0 33 03 SUM`` (low nibble kept as read)."""

    board: int
    addr_low: int = 0

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.addr_low, NIBBLES, "address low nibble")

    @property
    def kind(self) -> RequestKind:
        return RequestKind.UNLOCK_ALL

    def to_bytes(self) -> bytes:
        return _seal(STX, _address(self.board, self.addr_low), CMD_UNLOCK_ALL, ETX)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockAllRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return _is_board_status(reply, self.board)


@dataclass(frozen=True, slots=True)
class BusStatusRequest:
    """Status of every board on the bus: fixed ``02 F0 32 03 27``; one ``36`` reply each.

    ``board`` is the broadcast board number (15), not a real board.
    """

    @property
    def board(self) -> int:
        return BROADCAST_BOARD

    @property
    def kind(self) -> RequestKind:
        return RequestKind.BUS_STATUS

    def to_bytes(self) -> bytes:
        return BUS_STATUS_BYTES

    @classmethod
    def from_bytes(cls, data: bytes) -> BusStatusRequest:
        return _expect_type(decode_request(data), cls)

    def matches(self, reply: Reply) -> bool:
        return isinstance(reply, StatusReply) and reply.bus


KerongRequest = StatusRequest | UnlockRequest | UnlockAllRequest | BusStatusRequest


# --------------------------------------------------------------------------- reply


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A board's 16 lock-hook and 16 item bits: ``02 ADDR 35|36 H1 H2 I1 I2 03 SUM``.

    ``hooks``/``items`` are 16-bit maps, bit 0 = lock 1; ``bus`` marks a ``36`` reply to
    the bus-wide status request.
    """

    board: int
    hooks: int
    items: int
    bus: bool = False
    addr_low: int = 0

    def __post_init__(self) -> None:
        _require(self.board, BOARDS, "board")
        _require(self.hooks, _SIXTEEN_BITS, "hook bitmap")
        _require(self.items, _SIXTEEN_BITS, "item bitmap")
        _require(self.addr_low, NIBBLES, "address low nibble")

    @classmethod
    def from_feedback(
        cls,
        board: int,
        hooks: Mapping[int, bool],
        items: Mapping[int, bool],
        bus: bool = False,
    ) -> StatusReply:
        return cls(board, _bitmap(hooks), _bitmap(items), bus)

    def to_bytes(self) -> bytes:
        command = CMD_BUS_STATUS_REPLY if self.bus else CMD_STATUS_REPLY
        hooks = self.hooks.to_bytes(2, "little")
        items = self.items.to_bytes(2, "little")
        return _seal(STX, _address(self.board, self.addr_low), command, *hooks, *items, ETX)

    @classmethod
    def from_bytes(cls, data: bytes) -> StatusReply:
        return decode_reply(data)

    def feedback(self) -> Mapping[int, bool]:
        """Lock-hook signal per lock (True = hook engaged)."""
        return _signals(self.hooks)

    def items_inside(self) -> Mapping[int, bool]:
        """Infrared item sensor per lock (True = something inside)."""
        return _signals(self.items)


def _is_board_status(reply: Reply, board: int) -> bool:
    return isinstance(reply, StatusReply) and not reply.bus and reply.board == board


# --------------------------------------------------------------------------- decoding


def _checked(data: bytes, length: int) -> bytes:
    """Validate length, STX, ETX and SUM; return the frame without its SUM."""
    data = bytes(data)
    if len(data) != length:
        raise FrameError(f"{len(data)} bytes is not a {length}-byte frame: {data.hex(' ')}")
    if data[0] != STX or data[-2] != ETX:
        raise FrameError(f"missing STX/ETX in {data.hex(' ')}")
    if checksum(data[:-1]) != data[-1]:
        raise ChecksumError(f"SUM 0x{data[-1]:02X} != 0x{checksum(data[:-1]):02X}")
    return data[:-1]


_REQUEST_BUILDERS: Final[dict[int, Callable[[int, int], KerongRequest]]] = {
    CMD_STATUS: lambda board, nibble: StatusRequest(board, nibble),
    CMD_UNLOCK: lambda board, nibble: UnlockRequest(board, nibble + 1),
    CMD_UNLOCK_ALL: lambda board, nibble: UnlockAllRequest(board, nibble),
}


def decode_request(data: bytes) -> KerongRequest:
    """Decode one complete host → board frame."""
    _, address, command, _ = _checked(data, REQUEST_LENGTH)
    if bytes(data) == BUS_STATUS_BYTES:
        return BusStatusRequest()
    build = _REQUEST_BUILDERS.get(command)
    if build is None:
        raise UnexpectedFrameError(f"unsupported command 0x{command:02X} to 0x{address:02X}")
    return _built(lambda: build(address >> 4, address & 0x0F))


def decode_reply(data: bytes) -> StatusReply:
    """Decode one complete board → host frame."""
    body = _checked(data, REPLY_LENGTH)
    address, command = body[1], body[2]
    if command not in (CMD_STATUS_REPLY, CMD_BUS_STATUS_REPLY):
        raise UnexpectedFrameError(f"unsupported reply command 0x{command:02X}")
    hooks = int.from_bytes(body[3:5], "little")
    items = int.from_bytes(body[5:7], "little")
    bus = command == CMD_BUS_STATUS_REPLY
    return _built(lambda: StatusReply(address >> 4, hooks, items, bus, address & 0x0F))


# --------------------------------------------------------------------------- streams


def _scan(
    window: bytes,
    length: int,
    prefix_ok: Callable[[bytes], bool],
    decode: Callable[[bytes], FrameT],
) -> Verdict[FrameT]:
    candidate = window[:length]
    if not prefix_ok(candidate):
        return Reject(f"no valid frame starts with {candidate.hex(' ')}")
    if len(candidate) < length:
        return WAIT
    try:
        return Found(decode(candidate), length)
    except ChecksumError:
        return Reject(f"bad SUM in {candidate.hex(' ')}")
    except FrameError as exc:
        return Reject(str(exc))


def _request_prefix_ok(candidate: bytes) -> bool:
    if candidate.startswith(BUS_STATUS_BYTES[: len(candidate)]):
        return True
    checks: tuple[Callable[[int], bool], ...] = (
        lambda address: address >> 4 in BOARDS,
        lambda command: command in _REQUEST_BUILDERS,
        lambda etx: etx == ETX,
    )
    return all(check(byte) for byte, check in zip(candidate[1:4], checks, strict=False))


def _reply_prefix_ok(candidate: bytes) -> bool:
    checks: dict[int, Callable[[int], bool]] = {
        1: lambda address: address >> 4 in BOARDS,
        2: lambda command: command in (CMD_STATUS_REPLY, CMD_BUS_STATUS_REPLY),
        7: lambda etx: etx == ETX,
    }
    return all(check(candidate[at]) for at, check in checks.items() if at < len(candidate))


def _scan_request(window: bytes, ended: bool) -> Verdict[KerongRequest]:
    return _scan(window, REQUEST_LENGTH, _request_prefix_ok, decode_request)


def _scan_reply(window: bytes, ended: bool) -> Verdict[StatusReply]:
    return _scan(window, REPLY_LENGTH, _reply_prefix_ok, decode_reply)


class RequestStreamDecoder(ScanningDecoder[KerongRequest]):
    """Board-side decoder of host requests (used by the simulator)."""

    def __init__(self) -> None:
        super().__init__(_scan_request, (STX,), REQUEST_LENGTH)


class ReplyStreamDecoder(ScanningDecoder[StatusReply]):
    """Host-side decoder of board replies (fixed 9-byte frames, so no ambiguity to resolve)."""

    def __init__(self) -> None:
        super().__init__(_scan_reply, (STX,), REPLY_LENGTH)
        self._expected: Request | None = None

    def expect(self, request: Request | None) -> None:
        """Accepted for the common interface; Kerong replies are self-describing."""
        self._expected = request


# --------------------------------------------------------------------------- protocol


@dataclass(frozen=True, slots=True)
class KerongProtocol:
    """The Kerong KR-CU16 as a :class:`~firmware_protocol.base.BoardProtocol`."""

    name: str = "kerong"
    default_baud: int = 19200

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

    def query_lock(self, board: int, lock: int) -> StatusRequest:
        """The CU16 has no single-lock query: the board status carries every lock."""
        _require(lock, LOCKS, "lock")
        return StatusRequest(board)

    def query_all(self, board: int) -> StatusRequest:
        return StatusRequest(board)

    def reply_decoder(self) -> ReplyStreamDecoder:
        return ReplyStreamDecoder()

    def request_decoder(self) -> RequestStreamDecoder:
        return RequestStreamDecoder()


PROTOCOL: Final = KerongProtocol()
