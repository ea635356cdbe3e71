"""Typed board API: open a lock, read door states, over one :class:`SerialLink`.

This is where raw feedback becomes a door state, through each board's configured
:class:`~locker_agent.layout.Polarity`. A lock that a reply does not cover is an
error, never a guess. Boards whose status replies carry item-sensor bits (Kerong) have
them passed on as read, for the door layer to use where a sensor is wired.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from types import MappingProxyType

from firmware_protocol import kerong
from firmware_protocol.base import BoardProtocol, Reply
from locker_agent.errors import BoardReplyError, ConfigError
from locker_agent.layout import Polarity
from locker_agent.serial_link import Exchange, Priority, SerialLink

logger = logging.getLogger(__name__)


class DoorState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    #: the board did not answer: we have not observed the door, so we do not say
    UNKNOWN = "unknown"


def door_state(signal: bool, polarity: Polarity) -> DoorState:
    """Raw feedback signal → door state. NORMAL: signal present means closed."""
    closed = signal if polarity is Polarity.NORMAL else not signal
    return DoorState.CLOSED if closed else DoorState.OPEN


@dataclass(frozen=True, slots=True)
class UnlockAck:
    """The board acknowledged an unlock. Not proof that the door opened."""

    board: int
    lock: int
    frame: bytes
    sent_at: float
    answered_at: float


@dataclass(frozen=True, slots=True)
class BoardReading:
    """Door states of one board, as observed by one answered query."""

    board: int
    doors: Mapping[int, DoorState]
    sent_at: float
    answered_at: float
    #: per lock of ``doors``, whether the reply's item bit says something is inside
    #: (True); None when the reply carries no item bits (8A/80). A bit is what the board
    #: sent: whether a sensor is wired to it is the layout's to say
    items: Mapping[int, bool] | None = None


class BoardClient:
    """Open locks and read doors on the boards of one bus."""

    def __init__(
        self,
        link: SerialLink,
        polarity: Mapping[int, Polarity] | None = None,
    ) -> None:
        self.link = link
        self.protocol: BoardProtocol = link.protocol
        self._polarity = MappingProxyType(dict(polarity or {}))

    def polarity_of(self, board: int) -> Polarity:
        return self._polarity.get(board, Polarity.NORMAL)

    def open_lock(self, board: int, lock: int) -> UnlockAck:
        """Send ONE unlock. Raises BoardTimeout/BoardReplyError: outcome unknown then."""
        return self.submit_open_lock(board, lock).result()

    def submit_open_lock(self, board: int, lock: int) -> Future[UnlockAck]:
        """Queue ONE unlock (ahead of every query); the future gives the acknowledgement
        or raises BoardTimeout/BoardReplyError (outcome unknown then)."""
        request = self.protocol.unlock(board, lock)
        exchanged = self.link.submit(request)
        acked: Future[UnlockAck] = Future()

        def convert(done: Future[Exchange]) -> None:
            try:
                exchange = done.result()
            except Exception as exc:  # handed to whoever waits on the acknowledgement
                acked.set_exception(exc)
                return
            frame = request.to_bytes()
            acked.set_result(UnlockAck(board, lock, frame, exchange.sent_at, exchange.answered_at))

        exchanged.add_done_callback(convert)
        return acked

    def unlock_frame(self, board: int, lock: int) -> bytes:
        """The bytes an unlock of (board, lock) puts on the line (for logs and demos)."""
        return self.protocol.unlock(board, lock).to_bytes()

    def read_lock(self, board: int, lock: int) -> DoorState:
        """Query one lock (Kerong answers with the whole board; we take ours)."""
        return self.observe_lock(board, lock).doors[lock]

    def observe_lock(self, board: int, lock: int, priority: Priority | None = None) -> BoardReading:
        """Query one lock; a reading that covers that lock only."""
        return self.submit_observe_lock(board, lock, priority).result()

    def submit_observe_lock(
        self, board: int, lock: int, priority: Priority | None = None
    ) -> Future[BoardReading]:
        """Queue a query of one lock; the future gives a reading of that lock only (or
        raises BoardTimeout/BoardReplyError). On 8A/80 its fixed 5-byte reply ends
        without the quiet gap a query-all reply needs."""
        exchanged = self.link.submit(self.protocol.query_lock(board, lock), priority)
        reading: Future[BoardReading] = Future()

        def convert(done: Future[Exchange]) -> None:
            try:
                result = self._reading(board, done.result(), (lock,))
            except Exception as exc:  # handed to whoever waits on the reading
                reading.set_exception(exc)
                return
            reading.set_result(result)

        exchanged.add_done_callback(convert)
        return reading

    def read_board(self, board: int, locks: tuple[int, ...] | None = None) -> BoardReading:
        """Query every lock of ``board``; ``locks`` are the ones that must be covered
        (default: whatever the reply carries)."""
        exchange = self.link.request(self.protocol.query_all(board))
        return self._reading(board, exchange, locks)

    def _reading(
        self, board: int, exchange: Exchange, locks: tuple[int, ...] | None
    ) -> BoardReading:
        states = MappingProxyType(self._states(exchange, locks))
        items = _items(exchange.reply, tuple(states))
        return BoardReading(board, states, exchange.sent_at, exchange.answered_at, items)

    def _states(self, exchange: Exchange, locks: tuple[int, ...] | None) -> dict[int, DoorState]:
        reply: Reply = exchange.reply
        feedback = reply.feedback()
        wanted = tuple(sorted(feedback)) if locks is None else locks
        missing = [lock for lock in wanted if lock not in feedback]
        if missing:
            raise BoardReplyError(
                f"reply from board {reply.board} does not cover locks {missing}",
                board=reply.board,
                kind=exchange.request.kind.value,
            )
        polarity = self.polarity_of(reply.board)
        return {lock: door_state(feedback[lock], polarity) for lock in wanted}


def _items(reply: Reply, locks: tuple[int, ...]) -> Mapping[int, bool] | None:
    """The item bits of ``locks`` in a Kerong status reply; None for any other reply."""
    if not isinstance(reply, kerong.StatusReply):
        return None
    inside = reply.items_inside()
    return MappingProxyType({lock: inside[lock] for lock in locks if lock in inside})


def parse_polarity(value: str) -> Polarity:
    try:
        return Polarity(value)
    except ValueError:
        raise ConfigError(f"polarity must be 'normal' or 'inverted', not {value!r}") from None
