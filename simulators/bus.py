"""A simulated RS485 bus of lock-control boards, served on a real pty or a TCP socket.

Requests are decoded with the protocol's own ``request_decoder()``; replies are built
by the codec's reply classes (see :mod:`simulators.dialects`). Each request kind maps
to one handler that moves doors now and schedules the reply on the world's clock.
Three daemon threads serve a running bus: the link's reader, the scheduler and the
transmitter; :meth:`SimulatedBus.stop` ends all three and closes every descriptor.

A USB adapter that is unplugged and plugged back (or resets) comes back as a new tty
under the same stable name (``/dev/serial/by-id/…``). ``start_pty(stable_path)`` serves
through such a name, a symlink to the pty; :meth:`SimulatedBus.unplug` closes the pty
and removes the symlink (the boards keep their doors, which can still be moved by
hand), :meth:`SimulatedBus.replug` opens a new pty and points the symlink at it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from firmware_protocol import get_protocol
from firmware_protocol.base import (
    NEED_DATA,
    BoardProtocol,
    Frame,
    Garbage,
    Request,
    RequestKind,
    StreamDecoder,
)
from firmware_protocol.errors import ProtocolError
from simulators.board import BoardConfig, DoorChange, DoorListener, SimulatedBoard, World
from simulators.dialects import dialect_for
from simulators.errors import (
    AlreadyServingError,
    NotServingError,
    SimulatorConfigError,
    UnknownDoorError,
)
from simulators.faults import BusFaults, on_the_wire
from simulators.scheduler import ScheduledCall, Scheduler
from simulators.serving import Burst, Link, PtyLink, TcpLink, Transmitter
from simulators.timing import Timing

__all__ = ["BoardConfig", "DoorChange", "SimulatedBus", "Timing"]

logger = logging.getLogger(__name__)

#: How often the bus checks whether a board should push a periodic unsolicited frame.
_UNSOLICITED_TICK = 0.02


@runtime_checkable
class _LockRequest(Protocol):
    """A request naming one lock (unlock, query one)."""

    @property
    def lock(self) -> int: ...


class SimulatedBus:
    """Boards sharing one serial line; see the package docstring for the API."""

    def __init__(
        self,
        protocol: str | BoardProtocol = "8a80",
        boards: Sequence[BoardConfig] = (BoardConfig(address=1),),
        timing: Timing | None = None,
    ) -> None:
        self.protocol = _resolve_protocol(protocol)
        self.timing = timing or Timing()
        self.faults = BusFaults()
        self.received: list[tuple[float, Frame]] = []
        self.garbage: list[tuple[float, Garbage]] = []
        self._dialect = dialect_for(self.protocol)
        self._scheduler = Scheduler()
        self._world = World(self.timing, self._scheduler)
        self._boards = self._build_boards(boards)
        self._link: Link | None = None
        self._transmitter: Transmitter | None = None
        #: the adapter's stable name (a symlink to the pty being served), if any
        self._stable_path: Path | None = None
        self._decoder: StreamDecoder = self.protocol.request_decoder()
        self._last_push: dict[int, float] = {}
        self._handlers: dict[RequestKind, Callable[[Request], None]] = {
            RequestKind.UNLOCK: self._on_unlock,
            RequestKind.UNLOCK_ALL: self._on_unlock_all,
            RequestKind.QUERY_LOCK: self._on_query_lock,
            RequestKind.QUERY_ALL: self._on_query_all,
            RequestKind.READ_ADDRESS: self._on_read_address,
            RequestKind.BUS_STATUS: self._on_bus_status,
        }

    # ----------------------------------------------------------------- building
    def _build_boards(self, configs: Sequence[BoardConfig]) -> dict[int, SimulatedBoard]:
        if not configs:
            raise SimulatorConfigError("a bus needs at least one board")
        boards: dict[int, SimulatedBoard] = {}
        for config in sorted(configs, key=lambda c: c.address):
            if config.address in boards:
                raise SimulatorConfigError(f"two boards with address {config.address}")
            boards[config.address] = self._build_board(config)
        return boards

    def _build_board(self, config: BoardConfig) -> SimulatedBoard:
        protocol = self.protocol
        if config.address not in protocol.board_range:
            raise SimulatorConfigError(
                f"{protocol.name} board address {config.address} not in {protocol.board_range}"
            )
        locks = protocol.max_locks if config.locks is None else config.locks
        if not 1 <= locks <= protocol.max_locks:
            raise SimulatorConfigError(f"{protocol.name} boards have 1..{protocol.max_locks} locks")
        board = SimulatedBoard(config, locks, self._world)
        board.attach(self._send_unsolicited)
        self._check_reportable(board)
        return board

    def _check_reportable(self, board: SimulatedBoard) -> None:
        """Refuse a board whose full status the codec cannot encode (e.g. too few bytes)."""
        try:
            self._dialect.board_reply(board).to_bytes()
        except ProtocolError as exc:
            raise SimulatorConfigError(
                f"board {board.address} cannot report its {board.locks} locks: {exc}"
            ) from exc

    # ------------------------------------------------------------ public state
    @property
    def boards(self) -> tuple[SimulatedBoard, ...]:
        return tuple(self._boards.values())

    def board(self, address: int) -> SimulatedBoard:
        try:
            return self._boards[address]
        except KeyError:
            raise UnknownDoorError(f"no board {address} on this bus") from None

    @property
    def address(self) -> str | None:
        """The pty path or socket URL being served, None when stopped."""
        return self._link.address if self._link else None

    @property
    def baudrate(self) -> int:
        return self.timing.baud or self.protocol.default_baud

    def subscribe(self, callback: DoorListener) -> Callable[[], None]:
        """Call ``callback(DoorChange)`` on every physical door change; returns unsubscribe."""
        return self._world.subscribe(callback)

    def schedule_close(self, board: int, lock: int, after: float) -> ScheduledCall:
        """A person will close this door ``after`` seconds from now."""
        return self._scheduler.call_later(after, self.board(board).door(lock).close)

    def requests(self) -> list[Frame]:
        """The decoded requests received so far, without their times."""
        return [frame for _, frame in self.received]

    # ------------------------------------------------------------------ serving
    def start_pty(self, stable_path: Path | None = None) -> str:
        """Serve on a fresh raw pty; returns the slave path for pyserial, or
        ``stable_path`` made a symlink to it (an adapter's ``/dev/serial/by-id`` name)."""
        self._stable_path = stable_path
        return self._serve_pty()

    def unplug(self) -> None:
        """The adapter goes away: its pty closes (a client holding it gets I/O errors)
        and its stable name disappears. Doors keep their state and can still be moved."""
        link, transmitter = self._link, self._transmitter
        if link is None or transmitter is None:
            raise NotServingError("the bus is not being served")
        self._link = self._transmitter = None
        if self._stable_path is not None:
            self._stable_path.unlink(missing_ok=True)
        link.stop_reading()
        transmitter.stop()
        link.close()
        logger.info("simulated adapter on %s unplugged", link.address)

    def replug(self) -> str:
        """The adapter is back as a new pty (another device number, as when it
        re-enumerates); the stable name, if any, points at it. Returns what
        :meth:`start_pty` returned."""
        return self._serve_pty()

    def _serve_pty(self) -> str:
        path = self._serve(PtyLink(self._on_bytes, self._on_quiet, self.timing.quiet_gap))
        if self._stable_path is None:
            return path
        staged = self._stable_path.with_name(self._stable_path.name + ".new")
        staged.unlink(missing_ok=True)
        staged.symlink_to(path)
        os.replace(staged, self._stable_path)  # never a moment with a stale target
        return str(self._stable_path)

    def start_tcp(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port`` 0: any free port); returns ``socket://host:port``."""
        return self._serve(TcpLink(self._on_bytes, self._on_quiet, self.timing.quiet_gap, port))

    def _serve(self, link: Link) -> str:
        if self._link is not None:
            link.close()
            raise AlreadyServingError(f"already serving on {self._link.address}")
        self._decoder = self.protocol.request_decoder()
        self._start_clock()
        self._transmitter = Transmitter(link, self.timing.byte_time(self.protocol.default_baud))
        self._transmitter.start()
        self._link = link
        link.start()
        logger.info("simulated %s bus serving on %s", self.protocol.name, link.address)
        return link.address

    def _start_clock(self) -> None:
        if self._scheduler.started:
            return
        self._scheduler.start()
        self._scheduler.call_later(_UNSOLICITED_TICK, self._push_periodic)

    def stop(self) -> None:
        """Stop serving: every thread ends and every descriptor is closed. Idempotent."""
        link, transmitter = self._link, self._transmitter
        if link is not None:
            link.stop_reading()
        self._scheduler.stop()
        if transmitter is not None:
            transmitter.stop()
        if link is not None:
            link.close()
        self._link = self._transmitter = None
        if self._stable_path is not None:
            self._stable_path.unlink(missing_ok=True)
        # A fresh clock so the bus can serve again; pending scripted events are dropped.
        self._scheduler = self._world.scheduler = Scheduler()

    def __enter__(self) -> SimulatedBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- receiving
    def _on_bytes(self, data: bytes) -> None:
        if self.faults.echo and self._transmitter is not None:
            self._transmitter.send(Burst((data,)))
        self._decoder.feed(data)
        self._drain()

    def _on_quiet(self) -> None:
        self._decoder.line_quiet()
        self._drain()

    def _drain(self) -> None:
        for item in _frames(self._decoder):
            now = time.monotonic()
            if isinstance(item, Garbage):
                logger.debug("skipped %s: %s", item.data.hex(" "), item.reason)
                self.garbage.append((now, item))
                continue
            self.received.append((now, item))
            self._dispatch(item)

    def _dispatch(self, frame: Frame) -> None:
        if not isinstance(frame, Request):
            logger.debug("ignored %r: not a request", frame)
            return
        handler = self._handlers.get(frame.kind)
        if handler is None:
            logger.debug("ignored %r: boards do not implement %s", frame, frame.kind)
            return
        try:
            handler(frame)
        except Exception:  # a simulator bug must not kill the line for the next request
            logger.exception("simulated boards failed to handle %r", frame)

    # ----------------------------------------------------------------- handlers
    def _listening_board(self, request: Request) -> SimulatedBoard | None:
        """The addressed board when it is on the bus and powered."""
        board = self._boards.get(request.board)
        return None if board is None or board.faults.offline else board

    def _listening_lock(self, request: Request) -> tuple[SimulatedBoard, int] | None:
        board = self._listening_board(request)
        if board is None or not isinstance(request, _LockRequest):
            return None
        if not board.has_lock(request.lock):
            logger.debug("board %s has no lock %s: ignored", board.address, request.lock)
            return None
        return board, request.lock

    def _on_unlock(self, request: Request) -> None:
        target = self._listening_lock(request)
        if target is None:
            return
        board, lock = target
        board.door(lock).pulse()
        delay = self._dialect.unlock_reply_delay(self.timing)
        self._reply(board, lambda: self._dialect.unlock_reply(board, lock), delay)

    def _on_unlock_all(self, request: Request) -> None:
        board = self._listening_board(request)
        if board is None:
            return
        step = self.timing.unlock_all_step
        for index, door in enumerate(board.doors):  # one after another: power budget
            self._scheduler.call_later(index * step, door.pulse)
        last_pulse = (board.locks - 1) * step
        delay = last_pulse + self._dialect.unlock_reply_delay(self.timing)
        self._reply(board, lambda: self._dialect.unlock_all_reply(board), delay)

    def _on_query_lock(self, request: Request) -> None:
        target = self._listening_lock(request)
        if target is None:
            return
        board, lock = target
        delay = self.timing.query_reply_delay
        self._reply(board, lambda: self._dialect.lock_reply(board, lock), delay)

    def _on_query_all(self, request: Request) -> None:
        board = self._listening_board(request)
        if board is not None:
            delay = self.timing.query_reply_delay
            self._reply(board, lambda: self._dialect.board_reply(board), delay)

    def _on_bus_status(self, request: Request) -> None:
        for slot, board in enumerate(self._powered_boards(), start=1):
            delay = slot * self.timing.query_reply_delay  # in address order
            self._reply(board, _bind(self._dialect.bus_reply, board), delay)

    def _on_read_address(self, request: Request) -> None:
        # Meant for a bus with one board; several would collide on real hardware.
        for slot, board in enumerate(self._powered_boards(), start=1):
            delay = slot * self.timing.query_reply_delay
            self._reply(board, _bind(self._dialect.address_reply, board), delay)

    def _powered_boards(self) -> Iterator[SimulatedBoard]:
        return (board for board in self._boards.values() if not board.faults.offline)

    # ------------------------------------------------------------------ sending
    def _reply(self, board: SimulatedBoard, build: Callable[[], Frame], delay: float) -> None:
        """Send ``build()`` after ``delay``; the frame is built then, from that moment's state."""
        late = board.faults.late_reply
        total = late if late is not None else delay + board.faults.reply_delay
        self._scheduler.call_later(total, lambda: self._transmit(board, build()))

    def _transmit(self, board: SimulatedBoard, frame: Frame) -> None:
        transmitter = self._transmitter
        if not board.faults.answers or transmitter is None:
            logger.debug("board %s does not answer: %r dropped", board.address, frame)
            return
        transmitter.send(on_the_wire(frame.to_bytes(), board.faults))

    def _send_unsolicited(self, board: SimulatedBoard, lock: int) -> None:
        if self._transmitter is None:
            raise NotServingError("start_pty() or start_tcp() before sending frames")
        self._transmit(board, self._dialect.unsolicited(board, lock))

    def _push_periodic(self) -> None:
        now = time.monotonic()
        for board in self._boards.values():
            every = board.faults.unsolicited_every
            if every and now - self._last_push.get(board.address, 0.0) >= every:
                self._last_push[board.address] = now
                self._transmit(board, self._dialect.unsolicited(board, 1))
        self._scheduler.call_later(_UNSOLICITED_TICK, self._push_periodic)


def _bind(build: Callable[[SimulatedBoard], Frame], board: SimulatedBoard) -> Callable[[], Frame]:
    return lambda: build(board)


def _frames(decoder: StreamDecoder) -> Iterator[Frame | Garbage]:
    while (item := decoder.next_frame()) is not NEED_DATA:
        yield item


def _resolve_protocol(protocol: str | BoardProtocol) -> BoardProtocol:
    if not isinstance(protocol, str):
        return protocol
    try:
        return get_protocol(protocol)
    except (LookupError, ValueError, ProtocolError) as exc:
        raise SimulatorConfigError(f"unknown board protocol {protocol!r}") from exc
