"""One background thread that runs the simulated world's timed events in order.

Door springs, re-latching latches, delayed replies and scripted people all become
callbacks on this scheduler, so the whole simulation costs one thread however many
doors move at once, and :meth:`Scheduler.stop` ends it deterministically.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: Longest the thread sleeps before re-checking whether it was asked to stop.
_IDLE_WAIT = 0.2


@dataclass(order=True, slots=True)
class _Event:
    when: float
    sequence: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class ScheduledCall:
    """Handle of a scheduled callback; :meth:`cancel` prevents it from running."""

    __slots__ = ("_event",)

    def __init__(self, event: _Event) -> None:
        self._event = event

    @property
    def when(self) -> float:
        return self._event.when

    def cancel(self) -> None:
        self._event.cancelled = True


class Scheduler:
    """Runs callbacks at monotonic times on a single daemon thread."""

    def __init__(self, name: str = "locker-sim-scheduler") -> None:
        self._queue: list[_Event] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        with self._condition:
            self._stopping = True
            self._queue.clear()
            self._condition.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def call_later(self, delay: float, action: Callable[[], None]) -> ScheduledCall:
        return self.call_at(time.monotonic() + max(0.0, delay), action)

    def call_at(self, when: float, action: Callable[[], None]) -> ScheduledCall:
        event = _Event(when, next(self._counter), action)
        with self._condition:
            if not self._stopping:
                heapq.heappush(self._queue, event)
                self._condition.notify()
        return ScheduledCall(event)

    def _run(self) -> None:
        while (event := self._next_due()) is not None:
            if event.cancelled:
                continue
            try:
                event.action()
            except Exception:
                logger.exception("simulated event %r failed", event.action)

    def _next_due(self) -> _Event | None:
        """Block until the earliest event is due; None once stopping."""
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._queue and self._queue[0].when <= now:
                    return heapq.heappop(self._queue)
                wait = self._queue[0].when - now if self._queue else _IDLE_WAIT
                self._condition.wait(min(wait, _IDLE_WAIT))
            return None
