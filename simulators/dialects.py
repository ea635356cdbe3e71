"""What each protocol's boards answer, built with the real codec classes.

A dialect turns board state into reply frames; the bus decides when they are sent.
Only the codecs in :mod:`firmware_protocol` know byte layouts: nothing here writes a
frame by hand, apart from the 8A/80 "active feedback" push that the codec does not
model (hosts only have to tolerate it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from firmware_protocol import kerong, xor8a80
from firmware_protocol.base import BoardProtocol, Frame
from simulators.board import SimulatedBoard
from simulators.errors import SimulatorConfigError
from simulators.timing import Timing


class Dialect(ABC):
    """Replies of one protocol's boards, built from the board's current state."""

    def __init__(self, protocol: BoardProtocol) -> None:
        self.protocol = protocol

    @abstractmethod
    def unlock_reply_delay(self, timing: Timing) -> float:
        """Seconds between an unlock request and the board's answer."""

    @abstractmethod
    def unlock_reply(self, board: SimulatedBoard, lock: int) -> Frame: ...

    @abstractmethod
    def unlock_all_reply(self, board: SimulatedBoard) -> Frame: ...

    @abstractmethod
    def lock_reply(self, board: SimulatedBoard, lock: int) -> Frame: ...

    @abstractmethod
    def board_reply(self, board: SimulatedBoard) -> Frame:
        """Answer to a query of every lock on the board."""

    @abstractmethod
    def bus_reply(self, board: SimulatedBoard) -> Frame:
        """This board's answer to a bus-wide status request."""

    @abstractmethod
    def address_reply(self, board: SimulatedBoard) -> Frame: ...

    @abstractmethod
    def unsolicited(self, board: SimulatedBoard, lock: int) -> Frame:
        """A frame the board pushes without being asked."""


@dataclass(frozen=True, slots=True)
class ActiveFeedbackFrame:
    """8A/80 ``82 BB LL SS BCC`` push (docs/protocols.md): BCC = XOR of the bytes before."""

    board: int
    lock: int
    status: int

    def to_bytes(self) -> bytes:
        body = bytes((xor8a80.HEADER_UNSOLICITED, self.board, self.lock, self.status))
        return body + bytes((xor8a80.bcc(body),))


class Xor8a80Dialect(Dialect):
    """Generic 8A/80 board: answers after the pulse, status 11 = signal present."""

    def unlock_reply_delay(self, timing: Timing) -> float:
        return timing.unlock_reply_delay

    @staticmethod
    def _status(board: SimulatedBoard, lock: int) -> int:
        return xor8a80.SIGNAL if board.feedback()[lock] else xor8a80.NO_SIGNAL

    def unlock_reply(self, board: SimulatedBoard, lock: int) -> Frame:
        return xor8a80.UnlockReply(board.address, lock, self._status(board, lock))

    def unlock_all_reply(self, board: SimulatedBoard) -> Frame:
        return xor8a80.UnlockReply(board.address, 0, xor8a80.SIGNAL)

    def lock_reply(self, board: SimulatedBoard, lock: int) -> Frame:
        return xor8a80.LockStatusReply(board.address, lock, self._status(board, lock))

    def board_reply(self, board: SimulatedBoard) -> Frame:
        return xor8a80.AllLocksReply.from_feedback(
            board.address, board.feedback(), board.status_bytes
        )

    def bus_reply(self, board: SimulatedBoard) -> Frame:
        return self.board_reply(board)

    def address_reply(self, board: SimulatedBoard) -> Frame:
        return xor8a80.AddressReply(board.address)

    def unsolicited(self, board: SimulatedBoard, lock: int) -> Frame:
        return ActiveFeedbackFrame(board.address, lock, self._status(board, lock))


class KerongDialect(Dialect):
    """Kerong KR-CU16: every answer is the whole board's hook and item bitmap."""

    def unlock_reply_delay(self, timing: Timing) -> float:
        return timing.query_reply_delay

    @staticmethod
    def _status(board: SimulatedBoard, *, bus: bool = False) -> Frame:
        return kerong.StatusReply.from_feedback(
            board.address, hooks=board.feedback(), items=board.items(), bus=bus
        )

    def unlock_reply(self, board: SimulatedBoard, lock: int) -> Frame:
        return self._status(board)

    def unlock_all_reply(self, board: SimulatedBoard) -> Frame:
        return self._status(board)

    def lock_reply(self, board: SimulatedBoard, lock: int) -> Frame:
        return self._status(board)

    def board_reply(self, board: SimulatedBoard) -> Frame:
        return self._status(board)

    def bus_reply(self, board: SimulatedBoard) -> Frame:
        return self._status(board, bus=True)

    def address_reply(self, board: SimulatedBoard) -> Frame:
        return self._status(board)

    def unsolicited(self, board: SimulatedBoard, lock: int) -> Frame:
        return self._status(board)


_DIALECTS: dict[str, type[Dialect]] = {"8a80": Xor8a80Dialect, "kerong": KerongDialect}


def dialect_for(protocol: BoardProtocol) -> Dialect:
    try:
        return _DIALECTS[protocol.name](protocol)
    except KeyError:
        raise SimulatorConfigError(f"no simulated boards for protocol {protocol.name!r}") from None
