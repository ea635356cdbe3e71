"""Door controller of one cabinet: polls the boards, opens doors, emits door events.

Rules it keeps (background in docs/protocols.md and docs/hardware.md):

* "relay pulsed" is not "door opened": after ONE unlock it queries THAT lock (the first
  query queued right behind the unlock, then one ``confirm_poll_interval`` after each
  read ends, so waiting polls of the other boards still get the line) until a query sent
  after the unlock sees the door open → ``open_confirmed``, or ``confirm_window`` ends →
  ``jammed``. The unlock reply's own status byte is never taken as the door state: some
  boards send a fixed success code there (the CSDN board specification in
  docs/protocols.md), so it proves only that the board heard us;
* an unanswered unlock is ``open_outcome_unknown`` until the polls tell; it may become
  ``open_confirmed`` by the sensor, never by a resend. It never resends an unlock;
* the relay fires even when the sensor already says open (a broken input may say so);
* doors open one after another; each door has a rolling-minute open budget;
* a door that opens without a command → ``forced_open``; one open too long →
  ``left_open`` (once per opening); a door whose board does not answer is ``unknown``;
* a door read for the first time after a gap (the controller's first poll, or its
  board answering again) is ``found`` in the state read, never ``opened`` or
  ``closed``: nobody saw it move, and whoever keeps the record compares;
* a door with a wired item sensor (``CabinetLayout.item_sensors``) carries the sensor's
  reading (``occupied``) on the events of the board reply that moved it: a ``closed``
  says what the compartment held in the very reply that showed the door shut, never
  what an earlier reply said before it opened. Without a sensor, or a reply without
  item bits, ``occupied`` is None: nothing was read, so nothing is said;
* a board that does not answer for ``board_alarm_after`` (a serial port that fails: at
  once) raises ONE :class:`BoardAlarm` for the bus, cleared when every board answers
  again; while the port is gone an open is refused at once (``board_unavailable``),
  never queued.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from locker_agent.boards import BoardClient, BoardReading, DoorState, UnlockAck
from locker_agent.errors import (
    AgentError,
    BoardError,
    ConfigError,
    PortUnavailable,
    TransportError,
)
from locker_agent.layout import CabinetLayout, DoorAddress
from locker_agent.serial_link import Priority

logger = logging.getLogger(__name__)


class DoorEventKind(enum.StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    FORCED_OPEN = "forced_open"
    LEFT_OPEN = "left_open"
    JAMMED = "jammed"
    OPEN_CONFIRMED = "open_confirmed"
    OPEN_OUTCOME_UNKNOWN = "open_outcome_unknown"
    OPEN_REFUSED = "open_refused"
    #: the door's board stopped answering: its state is no longer known
    UNKNOWN = "unknown"
    #: the door's state read after a gap (first poll, board back): not a move we saw
    FOUND = "found"


@dataclass(frozen=True, slots=True)
class DoorEvent:
    kind: DoorEventKind
    door: int
    address: DoorAddress
    monotonic: float
    wall: datetime
    detail: str = ""
    #: the state read, for ``found`` events
    state: DoorState | None = None
    #: the item sensor in the board reply this event came from (True: something inside);
    #: None for a door without a wired sensor, or an event no reply carried
    occupied: bool | None = None


@dataclass(frozen=True, slots=True)
class DoorObservation:
    """What the newest reading of one door said."""

    state: DoorState
    #: the item sensor, for a door with one wired; None: no sensor or not read
    occupied: bool | None = None


@dataclass(frozen=True, slots=True)
class BoardAlarm:
    """Boards of the bus stopped answering (``raised``), or all answer again."""

    raised: bool
    #: the boards not answering when it was raised (empty when cleared)
    boards: tuple[int, ...]
    detail: str
    wall: datetime


class OpenOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    JAMMED = "jammed"
    OUTCOME_UNKNOWN = "outcome_unknown"
    RATE_LIMITED = "rate_limited"
    #: the serial port is gone: refused at once, no unlock sent, nothing queued
    BOARD_UNAVAILABLE = "board_unavailable"


@dataclass(frozen=True, slots=True)
class OpenResult:
    """What became of one ``open_door`` call."""

    door: int
    address: DoorAddress
    outcome: OpenOutcome
    #: the board answered the unlock (an acknowledgement, not proof of opening)
    acknowledged: bool
    #: the unlock frame put on the line, or None when nothing was sent
    frame: bytes | None
    requested_at: float
    confirmed_at: float | None = None
    detail: str = ""
    #: the sensor already said open before the unlock (broken wire? wrong polarity?)
    already_open: bool = False

    @property
    def seconds_to_open(self) -> float | None:
        return None if self.confirmed_at is None else self.confirmed_at - self.requested_at


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    poll_interval: float = 0.15
    confirm_window: float = 3.0
    #: after an unlock, its lock is read again this long after each read ends, until the
    #: door is seen open or the confirm window ends (polls waiting take the line between)
    confirm_poll_interval: float = 0.015
    left_open_after: float = 120.0
    max_opens_per_door: int = 6
    rate_window: float = 60.0
    #: a board that did not answer is polled again after this long, so it cannot
    #: slow down the polls of the boards that do answer
    unanswered_poll_interval: float = 1.0
    #: a board unanswered this long raises the bus's "board not answering" alarm (a
    #: failing serial port raises it at once)
    board_alarm_after: float = 5.0

    def __post_init__(self) -> None:
        timings = (self.poll_interval, self.confirm_window, self.left_open_after)
        if self.board_alarm_after <= 0:
            raise ConfigError("the board alarm delay must be positive")
        if min(*timings, self.confirm_poll_interval) <= 0:
            raise ConfigError("poll intervals, confirm window and left-open limit must be positive")
        if self.max_opens_per_door < 1 or self.rate_window <= 0:
            raise ConfigError("the open rate limit needs at least one open per positive window")


EventHandler = Callable[[DoorEvent], None]
AlarmHandler = Callable[[BoardAlarm], None]


@dataclass(slots=True)
class _Track:
    """What the controller knows about one door (guarded by the controller's lock)."""

    address: DoorAddress
    state: DoorState = DoorState.UNKNOWN
    last_known: DoorState | None = None
    opened_at: float | None = None
    left_open_reported: bool = False
    #: openings observed before this monotonic time are attributed to our command
    command_until: float = 0.0
    #: sent_at of the latest query that saw the door open
    open_seen_sent_at: float = float("-inf")
    #: not read since the controller started or since its board stopped answering
    gap: bool = True
    #: the item sensor in the newest reading (doors with a wired sensor; else None)
    occupied: bool | None = None


class DoorController:
    """Polls every board of a cabinet and opens its doors one at a time."""

    def __init__(
        self,
        layout: CabinetLayout,
        client: BoardClient,
        settings: ControllerSettings | None = None,
    ) -> None:
        self.layout = layout
        self.client = client
        self.settings = settings or ControllerSettings()
        self._tracks = {door: _Track(address) for door, address in layout.doors.items()}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._polled_boards: set[int] = set()
        #: sent_at of the newest reading applied per board: the poller and an opener
        #: both read boards, and an older reading must never overwrite a newer one
        self._applied_sent_at: dict[int, float] = {}
        self._open_serial = threading.Lock()
        self._opens: dict[int, deque[float]] = {door: deque() for door in layout.doors}
        self._handlers: list[EventHandler] = []
        self._alarm_handlers: list[AlarmHandler] = []
        #: board → when it first went unanswered since it last answered (monotonic)
        self._silent_since: dict[int, float] = {}
        self._board_alarm_raised = False
        self._stop = threading.Event()
        #: set to end the pause between poll cycles at once (on stop)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> DoorController:
        self._thread = threading.Thread(target=self._poll_forever, name="door-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def __enter__(self) -> DoorController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` for every door event (in the poller or caller thread)."""
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def subscribe_board_alarms(self, handler: AlarmHandler) -> Callable[[], None]:
        """Call ``handler`` when boards stop answering and when all answer again."""
        with self._lock:
            self._alarm_handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._alarm_handlers:
                    self._alarm_handlers.remove(handler)

        return unsubscribe

    def state(self, door: int) -> DoorState:
        self.layout.address_of(door)
        with self._lock:
            return self._tracks[door].state

    def states(self) -> dict[int, DoorState]:
        with self._lock:
            return {door: track.state for door, track in self._tracks.items()}

    def occupied(self, door: int) -> bool | None:
        """The door's item sensor in the newest reading; None: no sensor wired, or the
        door is not observed now."""
        self.layout.address_of(door)
        with self._lock:
            return self._tracks[door].occupied

    def observations(self) -> dict[int, DoorObservation]:
        """State and item sensor of every door, from the newest readings (taken together,
        so they never mix two moments)."""
        with self._lock:
            return {
                door: DoorObservation(track.state, track.occupied)
                for door, track in self._tracks.items()
            }

    def wait_first_poll(self, timeout: float) -> bool:
        """Block until every board has been polled once (answered or not)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._polled_boards >= set(self.layout.boards), timeout
            )

    # -- opening ---------------------------------------------------------------

    def open_door(self, door: int) -> OpenResult:
        """Send ONE unlock to ``door`` and confirm by its sensor. Never resends."""
        address = self.layout.address_of(door)
        with self._open_serial:
            requested_at = time.monotonic()
            if not self.client.link.available:
                return self._refuse_unavailable(door, address, requested_at)
            refusal = self._refuse_if_over_budget(door, address, requested_at)
            if refusal is not None:
                return refusal
            return self._unlock_and_confirm(door, address, requested_at)

    def _refuse_if_over_budget(
        self, door: int, address: DoorAddress, now: float
    ) -> OpenResult | None:
        opens = self._opens[door]
        while opens and now - opens[0] >= self.settings.rate_window:
            opens.popleft()
        if len(opens) < self.settings.max_opens_per_door:
            opens.append(now)
            return None
        retry_after = self.settings.rate_window - (now - opens[0])
        detail = (
            f"door {door} opened {len(opens)} times in {self.settings.rate_window:.0f} s; "
            f"try again in {retry_after:.0f} s"
        )
        logger.warning("refused to open: %s", detail)
        self._emit([self._event(DoorEventKind.OPEN_REFUSED, door, detail)])
        return OpenResult(door, address, OpenOutcome.RATE_LIMITED, False, None, now, detail=detail)

    def _refuse_unavailable(self, door: int, address: DoorAddress, now: float) -> OpenResult:
        """The port is gone: say so now rather than queue an unlock that could fire when
        it comes back, with nobody at the door."""
        detail = "serial port unavailable: no unlock sent"
        logger.warning("refused to open door %d (%s): %s", door, address, detail)
        return OpenResult(
            door, address, OpenOutcome.BOARD_UNAVAILABLE, False, None, now, detail=detail
        )

    def _unlock_and_confirm(
        self, door: int, address: DoorAddress, requested_at: float
    ) -> OpenResult:
        frame = self.client.unlock_frame(address.board, address.lock)
        with self._lock:
            track = self._tracks[door]
            already_open = track.state is DoorState.OPEN
            command_until, track.command_until = track.command_until, float("inf")
        before = time.monotonic()
        unlock = self.client.submit_open_lock(address.board, address.lock)
        # queued behind the unlock and ahead of every poll: the first look at the door,
        # sent as soon as the unlock is answered (or has timed out)
        first_read = self.client.submit_observe_lock(address.board, address.lock, Priority.CONFIRM)
        awaited = self._await_unlock(door, address, unlock, before)
        if awaited is None:  # the port went away before the unlock was written
            with self._lock:
                track.command_until = command_until  # an opening now would not be ours
            return self._refuse_unavailable(door, address, requested_at)
        acknowledged, sent_after, problem = awaited
        deadline = time.monotonic() + self.settings.confirm_window
        confirmed_at = self._confirm_open(door, address, sent_after, deadline, first_read)
        with self._lock:
            # a door that springs late (just after the window) is still ours, not forced
            track.command_until = time.monotonic() + self.settings.confirm_window
        outcome = self._outcome(acknowledged, confirmed_at)
        detail = self._detail(outcome, problem, already_open)
        self._report_open(door, outcome, detail)
        return OpenResult(
            door,
            address,
            outcome,
            acknowledged,
            frame,
            requested_at,
            confirmed_at,
            detail,
            already_open,
        )

    def _await_unlock(
        self, door: int, address: DoorAddress, unlock: Future[UnlockAck], before: float
    ) -> tuple[bool, float, str] | None:
        """The relay fired once. Returns (acknowledged, time the unlock was written or
        ``before`` if unknown, problem), or None when the unlock was never written."""
        try:
            ack = unlock.result()
        except PortUnavailable:
            return None
        except (BoardError, TransportError) as exc:
            logger.warning("unlock of door %d (%s) unanswered: %s", door, address, exc)
            self._emit([self._event(DoorEventKind.OPEN_OUTCOME_UNKNOWN, door, str(exc))])
            return False, before, str(exc)
        return True, ack.sent_at, ""

    def _confirm_open(
        self,
        door: int,
        address: DoorAddress,
        sent_after: float,
        deadline: float,
        pending: Future[BoardReading],
    ) -> float | None:
        """Read the door's lock at the confirmation cadence until a reading of a query
        sent after the unlock (ours or a routine poll's) shows ``door`` open (→ when), or
        ``deadline`` passes (→ None; a read still in flight then is left to finish).
        ``pending`` is the first read, already queued. Every read goes ahead of the polls,
        but the next one is queued only ``confirm_poll_interval`` after the last one
        ended: a poll waiting meanwhile takes the line first, so no board is starved."""
        while not self._stop.is_set():
            pending.add_done_callback(self._notify_changed)
            if self._wait_open_seen(door, sent_after, deadline, pending.done):
                return time.monotonic()
            self._apply_confirmation(address, pending)
            pause_until = time.monotonic() + self.settings.confirm_poll_interval
            seen = self._wait_open_seen(door, sent_after, min(pause_until, deadline))
            if seen or time.monotonic() >= deadline:
                return time.monotonic() if seen else None
            pending = self.client.submit_observe_lock(address.board, address.lock, Priority.CONFIRM)
        # stopping: say only what was seen within the window, never "jammed" early
        return time.monotonic() if self._wait_open_seen(door, sent_after, deadline) else None

    def _apply_confirmation(self, address: DoorAddress, pending: Future[BoardReading]) -> None:
        """Apply a finished confirmation read; an unanswered one makes the board's doors
        unknown, as an unanswered poll does (an unlock may have moved them since)."""
        if not pending.done():
            return
        try:
            reading = pending.result()
        except AgentError as exc:
            logger.debug("confirmation read of %s failed: %s", address, exc)
            self._apply_unknown(address.board)
            return
        self._apply(reading)

    def _notify_changed(self, _: object) -> None:
        with self._changed:
            self._changed.notify_all()

    def _wait_open_seen(
        self,
        door: int,
        sent_after: float,
        until: float,
        or_when: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Wait until ``door`` was seen open by a query sent at or after ``sent_after``
        (→ True), or ``or_when()`` holds, or ``until`` passes (→ False)."""
        track = self._tracks[door]
        with self._changed:
            self._changed.wait_for(
                lambda: track.open_seen_sent_at >= sent_after or or_when(),
                max(0.0, until - time.monotonic()),
            )
            return track.open_seen_sent_at >= sent_after

    @staticmethod
    def _outcome(acknowledged: bool, confirmed_at: float | None) -> OpenOutcome:
        if confirmed_at is not None:
            return OpenOutcome.CONFIRMED
        return OpenOutcome.JAMMED if acknowledged else OpenOutcome.OUTCOME_UNKNOWN

    def _detail(self, outcome: OpenOutcome, problem: str, already_open: bool) -> str:
        notes = []
        if problem:
            notes.append(f"unlock unanswered ({problem})")
        if already_open:
            notes.append("the sensor already said open before the unlock")
        if outcome is OpenOutcome.JAMMED:
            notes.append(f"not seen open within {self.settings.confirm_window} s")
        return "; ".join(notes)

    def _report_open(self, door: int, outcome: OpenOutcome, detail: str) -> None:
        kinds = {
            OpenOutcome.CONFIRMED: DoorEventKind.OPEN_CONFIRMED,
            OpenOutcome.JAMMED: DoorEventKind.JAMMED,
        }
        if outcome in kinds:
            self._emit([self._event(kinds[outcome], door, detail)])
        logger.info("door %d open: %s %s", door, outcome.value, detail)

    # -- polling ---------------------------------------------------------------

    def _poll_forever(self) -> None:
        next_due = dict.fromkeys(self.layout.boards, 0.0)
        while not self._stop.is_set():
            cycle_started = time.monotonic()
            for board in self.layout.boards:
                if self._stop.is_set():
                    return
                if time.monotonic() >= next_due[board]:
                    answered = self._poll_board(board)
                    backoff = 0.0 if answered else self.settings.unanswered_poll_interval
                    next_due[board] = time.monotonic() + backoff
            pause = cycle_started + self.settings.poll_interval - time.monotonic()
            self._wake.wait(max(0.0, pause))
            self._wake.clear()

    def _poll_board(self, board: int) -> bool:
        locks = tuple(sorted(self.layout.doors_on(board)))
        try:
            reading = self.client.read_board(board, locks)
        except AgentError as exc:  # BoardError, TransportError: the board is not observed
            logger.debug("board %d not read: %s", board, exc)
            self._apply_unknown(board)
            self._note_unanswered(board, exc)
            return False
        self._note_answered(board)
        self._apply(reading)
        return True

    def _note_unanswered(self, board: int, exc: AgentError) -> None:
        """Raise the bus's alarm once: at once for a failing port, else after a board
        has gone unanswered for ``board_alarm_after``."""
        now = time.monotonic()
        with self._lock:
            since = self._silent_since.setdefault(board, now)
            port_failed = isinstance(exc, TransportError)
            due = port_failed or now - since >= self.settings.board_alarm_after
            if not due or self._board_alarm_raised:
                return
            self._board_alarm_raised = True
            silent = tuple(sorted(self._silent_since))
        if port_failed:
            detail = f"serial port {self.client.link.url} failed: {exc}"
        else:
            listed = ", ".join(str(b) for b in silent)
            detail = f"board {listed} not answering for {now - since:.1f} s: {exc}"
        logger.warning("board not answering: %s", detail)
        self._emit_alarm(BoardAlarm(True, silent, detail, datetime.now(UTC)))

    def _note_answered(self, board: int) -> None:
        with self._lock:
            self._silent_since.pop(board, None)
            if not self._board_alarm_raised or self._silent_since:
                return
            self._board_alarm_raised = False
        logger.warning("every board answers again")
        self._emit_alarm(BoardAlarm(False, (), "every board answers again", datetime.now(UTC)))

    def _apply(self, reading: BoardReading) -> None:
        events: list[DoorEvent] = []
        with self._changed:
            if reading.sent_at < self._applied_sent_at.get(reading.board, float("-inf")):
                return  # a newer reading of this board is already applied
            self._applied_sent_at[reading.board] = reading.sent_at
            doors = self.layout.doors_on(reading.board)
            for lock, state in reading.doors.items():
                door = doors[lock]
                occupied = self._occupied(door, lock, reading)
                events.extend(self._observe(door, state, occupied, reading))
            self._polled_boards.add(reading.board)
            self._changed.notify_all()
        self._emit(events)

    def _occupied(self, door: int, lock: int, reading: BoardReading) -> bool | None:
        """The door's item sensor as ``reading`` saw it; None where no sensor is wired
        (the bit of an unwired input means nothing) or the reply has no item bits."""
        if not self.layout.has_item_sensor(door) or reading.items is None:
            return None
        return reading.items.get(lock)

    def _observe(
        self, door: int, state: DoorState, occupied: bool | None, reading: BoardReading
    ) -> list[DoorEvent]:
        """Apply one door's reading; its events carry ``occupied`` from the same reply."""
        track = self._tracks[door]
        # across a gap nothing was seen: the state read is "found", never a move
        previous = None if track.gap else track.last_known
        events: list[DoorEvent] = []

        def event(kind: DoorEventKind, detail: str = "", found: DoorState | None = None) -> None:
            events.append(self._event(kind, door, detail, found, occupied))

        if track.gap:
            event(DoorEventKind.FOUND, "read after a gap", state)
        track.state = track.last_known = state
        track.occupied = occupied
        track.gap = False
        if state is DoorState.OPEN:
            track.open_seen_sent_at = reading.sent_at
            if previous is not DoorState.OPEN:
                track.opened_at, track.left_open_reported = reading.answered_at, False
            if previous is DoorState.CLOSED:
                event(DoorEventKind.OPENED)
                if reading.answered_at > track.command_until:
                    event(DoorEventKind.FORCED_OPEN, "opened without a command")
            left_open = self._left_open_detail(track, reading.answered_at)
            if left_open is not None:
                event(DoorEventKind.LEFT_OPEN, left_open)
        elif previous is DoorState.OPEN:
            event(DoorEventKind.CLOSED)
        return events

    def _left_open_detail(self, track: _Track, now: float) -> str | None:
        """Once per opening, when the door has stood open too long: what to say."""
        if track.opened_at is None or track.left_open_reported:
            return None
        if now - track.opened_at < self.settings.left_open_after:
            return None
        track.left_open_reported = True
        return f"open for {now - track.opened_at:.1f} s"

    def _apply_unknown(self, board: int) -> None:
        events: list[DoorEvent] = []
        with self._changed:
            for door in self.layout.doors_on(board).values():
                track = self._tracks[door]
                if track.state is not DoorState.UNKNOWN:
                    events.append(self._event(DoorEventKind.UNKNOWN, door, "board not answering"))
                track.state = DoorState.UNKNOWN
                track.occupied = None  # not observed now: say nothing of the compartment
                track.gap = True
            self._polled_boards.add(board)
            self._changed.notify_all()
        self._emit(events)

    # -- events ----------------------------------------------------------------

    def _event(
        self,
        kind: DoorEventKind,
        door: int,
        detail: str = "",
        state: DoorState | None = None,
        occupied: bool | None = None,
    ) -> DoorEvent:
        address = self.layout.doors.get(door, DoorAddress(0, 0))
        now, wall = time.monotonic(), datetime.now(UTC)
        return DoorEvent(kind, door, address, now, wall, detail, state, occupied)

    def _emit(self, events: list[DoorEvent]) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for event in events:
            logger.info("door %d: %s %s", event.door, event.kind.value, event.detail)
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    logger.exception("door event handler failed on %s", event.kind.value)

    def _emit_alarm(self, alarm: BoardAlarm) -> None:
        with self._lock:
            handlers = list(self._alarm_handlers)
        for handler in handlers:
            try:
                handler(alarm)
            except Exception:
                logger.exception("board alarm handler failed")
