"""The kiosk driver: runs the pure pickup flow against the real desk, doors and readers.

One worker thread owns the :class:`~locker_agent.kiosk.machine.KioskMachine` state;
everything else reaches it through :meth:`KioskService.send`, the one thread-safe entry
point (the web page's keys, the readers' scans, the door layer's events). The worker
steps the machine and carries out its actions:

* ``CheckCredential`` → :meth:`PickupDesk.decide` (which journals the verdict) and, for
  a refusal, the lockout status → fed back as ``Decided``;
* ``OpenDoor`` → :meth:`PickupDesk.open` on a separate door thread (it waits for the
  door sensor), one door at a time → fed back as ``DoorOpened`` / ``DoorNotOpened``;
* ``JournalAlarm`` → an ``alarm`` event (a reader lost, or back).

A courier session (only with :class:`~locker_agent.kiosk.courier_desk.CourierHooks`):

* ``AskDesk`` → :meth:`CourierDesk.ask` on a separate desk thread (the server may take
  seconds) → ``DeskAnswered`` / ``DeskUnreachable``; an unreachable server for a deposit
  lookup first asks the hooks' ``offline_reservation`` (the cabinet's own reservations);
* ``OpenCourierDoor`` → the door controller's ``open_door`` on the door thread (one
  unlock, never retried) → ``DoorOpened`` / ``DoorNotOpened``;
* ``RecordDeposit`` → the hooks' ``record_deposit`` (journals the ``deposit``);
* ``CourierAlarm`` → an ``alarm`` event for the door (a reservation left unused).

Door closes come from the door controller's events. The desk records a granted pickup as
pending; the runtime journals the ``pickup`` when that door, seen open, closes again, and
the doors' opening and closing, so the kiosk journals neither.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Final, Protocol

from locker_agent.config import AgentSettings, KioskSection
from locker_agent.doors import DoorEvent, DoorEventKind, EventHandler, OpenOutcome, OpenResult
from locker_agent.errors import CourierDeskUnreachable
from locker_agent.journal import Journal, to_contract_event
from locker_agent.kiosk.courier import (
    AskDesk,
    CourierAlarm,
    CourierRules,
    DeskAnswered,
    DeskUnreachable,
    OpenCourierDoor,
    RecordDeposit,
)
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.kiosk.machine import (
    CheckCredential,
    Decided,
    DoorClosed,
    DoorNotOpened,
    DoorOpened,
    JournalAlarm,
    KioskAction,
    KioskInput,
    KioskMachine,
    KioskRules,
    LinkChanged,
    OpenDoor,
    Screen,
    Tick,
)
from locker_agent.kiosk.readers import CameraSource, ScannerSource, ScanSource
from locker_agent.pickup import Granted, PickupDesk, Refused
from locker_contract.desk import DepositLookup

logger = logging.getLogger(__name__)

#: how often the clock ticks into the machine when nothing else happens (seconds)
TICK: Final = 0.25


class KioskDoors(Protocol):
    """What the kiosk needs of the door controller: its events, and for a courier's door
    (which no pickup desk grants) one unlock confirmed by the sensor."""

    def subscribe(self, handler: EventHandler) -> Callable[[], None]: ...

    def open_door(self, door: int) -> OpenResult: ...


class KioskService:
    """Runs the kiosk: ``start``, ``send`` inputs from any thread, read ``screen``, ``stop``."""

    def __init__(
        self,
        desk: PickupDesk,
        doors: KioskDoors,
        journal: Journal,
        *,
        rules: KioskRules,
        courier: CourierHooks | None = None,
        link_up: Callable[[], bool],
        journaled: Callable[[], None] = lambda: None,
        sources: Sequence[ScanSource] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``courier``: the courier desk and deposit record; None (until the runtime has a
        courier desk): the home screen shows no courier key."""
        self._desk = desk
        self._courier = courier
        if courier is None:
            rules = replace(rules, courier=None)
        elif rules.courier is None:
            rules = replace(rules, courier=CourierRules())
        self._doors = doors
        self._journal = journal
        self._link_up = link_up
        self._journaled = journaled
        self._sources = list(sources)
        self._clock = clock
        self._machine = KioskMachine(rules)
        self._state = self._machine.initial(clock())
        self._inputs: queue.SimpleQueue[KioskInput | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._door_thread = ThreadPoolExecutor(1, thread_name_prefix="kiosk-door")
        self._desk_thread = ThreadPoolExecutor(1, thread_name_prefix="kiosk-courier-desk")
        self._changed = threading.Condition()
        self._screen = self._machine.screen(self._state)
        self._version = 0
        self._unsubscribe: Callable[[], None] = lambda: None

    @property
    def machine(self) -> KioskMachine:
        return self._machine

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> KioskService:
        self._unsubscribe = self._doors.subscribe(self._on_door_event)
        self._spawn("kiosk", self._work)
        for source in self._sources:
            self._spawn(f"kiosk-{source.name}", self._reader(source))
        return self

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _reader(self, source: ScanSource) -> Callable[[], None]:
        def run() -> None:
            try:
                source.run(self.send, self._stopping)
            except Exception:
                logger.exception("kiosk %s reader stopped", source.name)

        return run

    def stop(self) -> None:
        """Stop reading and taking input; a door being opened is waited for, never cut."""
        self._stopping.set()
        self._unsubscribe()
        for source in self._sources:
            source.stop()
        self._inputs.put(None)
        self._door_thread.shutdown(wait=True)
        self._desk_thread.shutdown(wait=False, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout=5)

    # -- the one way in ---------------------------------------------------------------

    def send(self, event: KioskInput) -> None:
        """Hand the kiosk an input (thread-safe; handled in order on the kiosk thread)."""
        if not self._stopping.is_set():
            self._inputs.put(event)

    def screen(self) -> tuple[int, Screen]:
        """The screen now and its version (it grows by one on each change)."""
        with self._changed:
            return self._version, self._screen

    def wait_for_screen(self, after: int, timeout: float) -> tuple[int, Screen]:
        """The screen once its version is past ``after``, or as it is after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout)
            return self._version, self._screen

    # -- the kiosk thread -------------------------------------------------------------

    def _work(self) -> None:
        link = True
        while True:
            try:
                event = self._inputs.get(timeout=TICK)
            except queue.Empty:
                event = Tick(self._clock())
            if event is None:
                return
            now_up = self._link_up()
            batch: list[KioskInput] = [Tick(self._clock()), event]
            if now_up != link:
                link = now_up
                batch.insert(0, LinkChanged(now_up))
            try:
                self._handle(batch)
            except Exception:
                logger.exception("kiosk step failed; continuing")

    def _handle(self, pending: list[KioskInput]) -> None:
        while pending:
            self._state, actions = self._machine.step(self._state, pending.pop(0))
            for action in actions:
                answer = self._carry_out(action)
                if answer is not None:
                    pending.append(answer)
        self._publish()

    def _publish(self) -> None:
        screen = self._machine.screen(self._state)
        with self._changed:
            if screen != self._screen:
                self._screen = screen
                self._version += 1
                self._changed.notify_all()

    def _carry_out(self, action: KioskAction) -> KioskInput | None:
        if isinstance(action, CheckCredential):
            return self._check(action)
        if isinstance(action, OpenDoor):
            self._door_thread.submit(self._open, action.granted)
        elif isinstance(action, JournalAlarm):
            self._journal_alarm(action)
        else:
            self._carry_out_courier(action)
        return None

    def _carry_out_courier(
        self, action: AskDesk | OpenCourierDoor | RecordDeposit | CourierAlarm
    ) -> None:
        courier = self._courier
        if courier is None:
            logger.error("courier action without a courier desk: %s", type(action).__name__)
            return
        if isinstance(action, AskDesk):
            self._desk_thread.submit(self._ask_desk, courier, action)
        elif isinstance(action, OpenCourierDoor):
            self._door_thread.submit(self._open_for_courier, action.door)
        elif isinstance(action, RecordDeposit):
            self._record_deposit(courier, action)
        else:
            self._journal_alarm(JournalAlarm(action.kind, action.detail), door=action.door)

    def _ask_desk(self, courier: CourierHooks, action: AskDesk) -> None:
        operation = action.operation
        try:
            self.send(DeskAnswered(action.serial, courier.desk.ask(operation)))
            return
        except CourierDeskUnreachable as exc:
            logger.warning("courier desk unreachable for %s: %s", operation.op, exc)
        except Exception:
            logger.exception("courier desk failed on %s", operation.op)
        if isinstance(operation, DepositLookup):
            # an announced parcel reserved here may still go in: the cabinet's copy says
            reserved = courier.offline_reservation(operation.tracking_number)
            if reserved is not None:
                self.send(DeskAnswered(action.serial, reserved, offline=True))
                return
        self.send(DeskUnreachable(action.serial))

    def _open_for_courier(self, door: int) -> None:
        try:
            result = self._doors.open_door(door)
        except Exception:
            # whether the unlock went out is not known: say so, never try again
            logger.exception("door %d: opening for a courier failed", door)
            self.send(DoorNotOpened(door, OpenOutcome.OUTCOME_UNKNOWN))
            return
        if result.outcome is OpenOutcome.CONFIRMED:
            self.send(DoorOpened(door))
        else:
            self.send(DoorNotOpened(door, result.outcome))

    def _record_deposit(self, courier: CourierHooks, deposit: RecordDeposit) -> None:
        try:
            courier.record_deposit(deposit)
        except Exception:
            # the runtime's door.closed event is still in the journal; the server sees a
            # door closed after a reservation and no deposit: an operator looks
            logger.exception(
                "door %d: the deposit of parcel %d was not recorded",
                deposit.door,
                deposit.parcel_id,
            )

    def _check(self, action: CheckCredential) -> Decided:
        try:
            decision = self._desk.decide(action.credential, door=action.door)
        except Exception:
            # the journal is the record: a pickup that cannot be recorded is not granted
            logger.exception("pickup check failed")
            return Decided(Refused("no_list", action.door))
        if isinstance(decision, Granted):
            return Decided(decision)
        return Decided(decision, self._desk.lockout_status(door=action.door))

    def _open(self, granted: Granted) -> None:
        try:
            outcome = self._desk.open(granted)
        except Exception:
            # whether the unlock went out is not known: say so, never try again
            logger.exception("door %d: opening failed", granted.door)
            self.send(DoorNotOpened(granted.door, OpenOutcome.OUTCOME_UNKNOWN))
            return
        if outcome.opened:
            self.send(DoorOpened(granted.door))
        else:
            kind = outcome.door_outcome or OpenOutcome.OUTCOME_UNKNOWN
            self.send(DoorNotOpened(granted.door, kind))

    def _journal_alarm(self, alarm: JournalAlarm, door: int | None = None) -> None:
        data: dict[str, object] = {"kind": alarm.kind}
        if alarm.detail:
            data["detail"] = alarm.detail
        if alarm.cleared:
            data["cleared"] = True
        with self._journal.transaction() as tx:
            to_contract_event(tx.append("alarm", door=door, data=data))
        self._journaled()

    # -- door events (poller thread) ------------------------------------------------------

    def _on_door_event(self, event: DoorEvent) -> None:
        if event.kind is DoorEventKind.CLOSED:
            self.send(DoorClosed(event.door, event.occupied))


def kiosk_rules(section: KioskSection) -> KioskRules:
    """The flow's rules from ``[kiosk]``."""
    return KioskRules(
        idle_timeout=section.idle_timeout,
        default_language=section.language,
        help_contact=section.help_contact,
    )


def scan_sources(settings: AgentSettings) -> list[ScanSource]:
    """The readers ``[camera]`` and ``[scanner]`` describe (none when both are absent)."""
    sources: list[ScanSource] = []
    if settings.camera is not None:
        sources.append(CameraSource(settings.camera))
    if settings.scanner is not None:
        sources.append(ScannerSource(settings.scanner.scanner_settings()))
    return sources
