"""The kiosk of one fleet cabinet: the agent's own pickup flow, without its threads.

A :class:`FleetKiosk` holds the real :class:`~locker_agent.kiosk.machine.KioskMachine`'s
state and the real :class:`~locker_agent.pickup.allowlist.AllowList` (in memory), and
carries out the machine's actions itself, on the cabinet's loop thread, as the agent's
kiosk service and pickup desk do:

* ``CheckCredential`` → :meth:`AllowList.check` against the server's clock; a miss is
  journaled as ``pickup.refused`` and answered with the lockout status;
* ``OpenDoor`` → the cabinet opens the door at once (a fleet has no boards) and the
  machine is told it was seen open;
* a granted door seen open, then closed (:meth:`FleetKiosk.door_closed`) → the
  ``pickup`` event (:class:`~locker_contract.OfflinePickupData`), as the agent's pending
  pickups journal it;
* ``JournalAlarm`` → an ``alarm`` event (a fleet kiosk has no readers, so none comes).

Left out: the camera and the scanner (a scanned text is handed in as it is), the web
page, the courier session (no courier desk), and the durable journal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from locker_agent.kiosk.machine import (
    CheckCredential,
    Decided,
    DoorClosed,
    DoorOpened,
    JournalAlarm,
    KioskAction,
    KioskInput,
    KioskMachine,
    OpenDoor,
    Phase,
    Tick,
)
from locker_agent.pickup import AllowList, Granted, Match, Refused, TypedCode
from locker_agent.pickup.allowlist import MemoryAllowListStore
from locker_contract import AllowListSync, CredentialKind, OfflinePickupData


class KioskHost(Protocol):
    """What the kiosk needs of its cabinet (:class:`simulators.fleet.FleetCabinet`)."""

    def journal_event(self, event_type: str, door: int | None, data: dict[str, Any]) -> None: ...

    def open_for_pickup(self, door: int) -> None:
        """Open ``door`` now (it is seen open at once)."""
        ...

    def server_now(self) -> datetime:
        """The server's clock as the cabinet knows it (allow-list entries expire by it)."""
        ...


class FleetKiosk:
    """One cabinet's kiosk; only the cabinet's loop thread touches it."""

    def __init__(
        self, machine: KioskMachine, pickup_key: bytes, host: KioskHost, now: float
    ) -> None:
        self.machine = machine
        self.allow_list = AllowList(pickup_key, MemoryAllowListStore())
        self.host = host
        self.state = machine.initial(now)
        #: door → granted matches whose ``pickup`` waits for the door to open and close
        self._pending: dict[int, list[Match]] = {}
        #: doors of pending matches seen open
        self._opened: set[int] = set()

    @property
    def screen(self) -> str:
        """The name of what the kiosk shows (the machine's phase)."""
        return self.machine.screen(self.state).phase.value

    def apply(self, sync: AllowListSync) -> bool:
        return self.allow_list.apply(sync)

    def feed(self, inputs: Iterable[KioskInput], now: float) -> None:
        """What a person did at ``now`` (monotonic seconds)."""
        self._run(Tick(now))
        for event in inputs:
            self._run(event)

    def tick(self, now: float) -> None:
        """The clock; an idle home screen needs none (:meth:`feed` brings the time along)."""
        if self.state.phase is not Phase.HOME:
            self._run(Tick(now))

    def door_closed(self, door: int, now: float) -> None:
        """The cabinet saw ``door`` close: the pickups it was opened for are done."""
        if door in self._opened:
            self._opened.discard(door)
            for match in self._pending.pop(door, []):
                self.host.journal_event("pickup", door, _pickup_data(match))
        self.feed([DoorClosed(door)], now)

    # ---------------------------------------------------------------- the machine
    def _run(self, event: KioskInput) -> None:
        """Step the machine, carrying out its actions and feeding their results back."""
        inputs: deque[KioskInput] = deque([event])
        while inputs:
            step = self.machine.step(self.state, inputs.popleft())
            self.state = step.state
            for action in step.actions:
                inputs.extend(self._carry_out(action))

    def _carry_out(self, action: KioskAction) -> list[KioskInput]:
        if isinstance(action, CheckCredential):
            return [self._check(action)]
        if isinstance(action, OpenDoor):
            return [self._open(action.granted)]
        if isinstance(action, JournalAlarm):
            data = {"kind": action.kind, "detail": action.detail, "cleared": action.cleared}
            self.host.journal_event("alarm", None, data)
        return []  # a courier action: a fleet kiosk has no courier desk, so none comes

    def _check(self, action: CheckCredential) -> Decided:
        credential = action.credential
        kind: CredentialKind = "code" if isinstance(credential, TypedCode) else "qr"
        code = credential.code if isinstance(credential, TypedCode) else None
        token = None if isinstance(credential, TypedCode) else credential.token
        now = self.host.server_now()
        verdict = self.allow_list.check(code=code, qr=token, door=action.door, now=now)
        if isinstance(verdict, Match):
            self._pending.setdefault(verdict.door, []).append(verdict)
            return Decided(Granted(verdict.door, verdict.parcel_ids, verdict.more_doors))
        refused = {"reason": verdict.reason, "credential": kind}
        self.host.journal_event("pickup.refused", action.door, refused)
        lockout = self.allow_list.lockout(door=action.door, now=now)
        return Decided(Refused(verdict.reason, action.door), lockout)

    def _open(self, granted: Granted) -> DoorOpened:
        self.host.open_for_pickup(granted.door)
        self._opened.add(granted.door)
        return DoorOpened(granted.door)


def _pickup_data(match: Match) -> dict[str, Any]:
    """The ``pickup`` event's data, built by the contract's own model."""
    data = OfflinePickupData(
        mode="offline",
        parcel_ids=list(match.parcel_ids),
        credential=match.credential,
        allow_list_version=match.allow_list_version,
    )
    return data.model_dump(mode="json")
