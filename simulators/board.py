"""Simulated lock-control boards and the doors behind them (the physics, no bytes).

A door is a latch plus a spring: an unlock pulse releases the latch and, unless the
door is jammed, the spring pushes it open a moment later; only a person closes it
again, and closing re-engages the latch. The board reports one feedback signal per
lock, "signal present" meaning the door is closed (normal polarity).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.errors import NotServingError, UnknownDoorError
from simulators.faults import BoardFaults, DoorFaults
from simulators.scheduler import Scheduler
from simulators.timing import Timing

logger = logging.getLogger(__name__)

#: Fewest status bytes an 8A/80 board sends in a query-all reply (8-channel capture).
MIN_STATUS_BYTES = 3


@dataclass(frozen=True, slots=True)
class DoorChange:
    """A door moved: ``is_open`` is its new physical state, ``at`` a monotonic time."""

    board: int
    lock: int
    is_open: bool
    at: float


DoorListener = Callable[[DoorChange], None]


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """One board on the simulated bus.

    ``locks`` ``None`` means as many as the protocol allows. ``status_bytes`` is the
    length of an 8A/80 query-all bitmap (``None``: one byte per 8 locks, at least 3).
    """

    address: int
    locks: int | None = None
    status_bytes: int | None = None
    open_doors: frozenset[int] = field(default_factory=frozenset)
    items: frozenset[int] = field(default_factory=frozenset)


class World:
    """What every door shares: one state lock, the clock, the timing, the listeners."""

    def __init__(self, timing: Timing, scheduler: Scheduler) -> None:
        self.timing = timing
        self.scheduler = scheduler
        self.state_lock = threading.RLock()
        self._listeners: list[DoorListener] = []

    def subscribe(self, listener: DoorListener) -> Callable[[], None]:
        """Call ``listener`` on every physical door change; returns an unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, change: DoorChange | None) -> None:
        if change is None:
            return
        logger.debug("door %s/%s is now %s", change.board, change.lock, _word(change.is_open))
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                logger.exception("door-change listener %r failed", listener)


def _word(is_open: bool) -> str:
    return "open" if is_open else "closed"


class SimulatedDoor:
    """One locker door: latch, spring, item sensor and a count of unlock pulses."""

    def __init__(self, board: int, lock: int, world: World) -> None:
        self.board = board
        self.lock = lock
        self.faults = DoorFaults()
        self._world = world
        self._is_open = False
        self._latched = True
        self._item_inside = False
        self._unlock_pulses = 0

    def __repr__(self) -> str:
        return f"<SimulatedDoor {self.board}/{self.lock} {_word(self._is_open)}>"

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def latched(self) -> bool:
        return self._latched

    @property
    def item_inside(self) -> bool:
        return self._item_inside

    @property
    def unlock_pulses(self) -> int:
        """How many unlock commands reached this door's latch."""
        return self._unlock_pulses

    def force_open(self) -> None:
        """The door is opened without any command (break-in, broken latch)."""
        with self._world.state_lock:
            self._latched = False
            change = self._move(is_open=True)
        self._world.publish(change)

    def close(self) -> None:
        """A person pushes the door shut; the latch catches."""
        with self._world.state_lock:
            self._latched = True
            change = self._move(is_open=False)
        self._world.publish(change)

    def put_item(self) -> None:
        self._item_inside = True

    def remove_item(self) -> None:
        self._item_inside = False

    def pulse(self) -> None:
        """An unlock pulse reaches the latch: release it, let the spring act."""
        timing = self._world.timing
        with self._world.state_lock:
            self._unlock_pulses += 1
            if self._is_open:
                return
            self._latched = False
            if self.faults.jammed:
                self._world.scheduler.call_later(timing.pulse_duration, self._relatch)
                return
            delay = self.faults.slow_open
            spring = timing.spring_delay if delay is None else delay
            self._world.scheduler.call_later(spring, self._spring_open)

    def _spring_open(self) -> None:
        with self._world.state_lock:
            # Closed by hand (latch caught) before the spring acted: stays shut.
            change = None if self._latched else self._move(is_open=True)
        self._world.publish(change)

    def _relatch(self) -> None:
        with self._world.state_lock:
            if not self._is_open:
                self._latched = True

    def _move(self, *, is_open: bool) -> DoorChange | None:
        if self._is_open == is_open:
            return None
        self._is_open = is_open
        return DoorChange(self.board, self.lock, is_open, time.monotonic())


class SimulatedBoard:
    """One lock-control board: an address, its doors and its faults."""

    def __init__(self, config: BoardConfig, locks: int, world: World) -> None:
        self.address = config.address
        self.faults = BoardFaults()
        self.status_bytes = config.status_bytes or max(MIN_STATUS_BYTES, math.ceil(locks / 8))
        self._doors = {n: SimulatedDoor(config.address, n, world) for n in range(1, locks + 1)}
        self._unsolicited_sender: Callable[[SimulatedBoard, int], None] | None = None
        self._apply_initial_state(config)

    def __repr__(self) -> str:
        return f"<SimulatedBoard {self.address} with {len(self._doors)} locks>"

    def _apply_initial_state(self, config: BoardConfig) -> None:
        for lock in config.open_doors:
            self.door(lock).force_open()
        for lock in config.items:
            self.door(lock).put_item()

    @property
    def locks(self) -> int:
        return len(self._doors)

    @property
    def doors(self) -> tuple[SimulatedDoor, ...]:
        return tuple(self._doors.values())

    def door(self, lock: int) -> SimulatedDoor:
        try:
            return self._doors[lock]
        except KeyError:
            raise UnknownDoorError(f"board {self.address} has no lock {lock}") from None

    def has_lock(self, lock: int) -> bool:
        return lock in self._doors

    def feedback(self) -> dict[int, bool]:
        """Feedback signal per lock as the board reports it (present = closed)."""
        inverted = self.faults.inverted_polarity
        return {n: (not door.is_open) != inverted for n, door in self._doors.items()}

    def items(self) -> dict[int, bool]:
        """Item-sensor bit per lock (Kerong infrared sensors)."""
        return {n: door.item_inside for n, door in self._doors.items()}

    def send_unsolicited(self, lock: int = 1) -> None:
        """Push an unrequested frame onto the bus now (needs a serving bus)."""
        if self._unsolicited_sender is None:
            raise NotServingError(f"board {self.address} is not on a bus")
        self._unsolicited_sender(self, lock)

    def attach(self, unsolicited_sender: Callable[[SimulatedBoard, int], None]) -> None:
        """Called by the bus: where :meth:`send_unsolicited` frames go."""
        self._unsolicited_sender = unsolicited_sender
