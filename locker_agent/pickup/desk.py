"""The pickup desk: a credential presented at the cabinet → the door to open, or why not.

The kiosk (and :meth:`locker_agent.runtime.AgentRuntime.local_pickup`) hands over a
:class:`TypedCode` or a :class:`ScannedToken`. :meth:`PickupDesk.decide` checks it
against the offline allow-list and journals the verdict in ONE transaction before any
door moves: a match consumes its entries and records a *pending pickup*
(:mod:`~locker_agent.pickup.pending`); a miss journals the ``pickup.refused`` event. A
:class:`Granted` names the door to open; :meth:`PickupDesk.open` opens it (once, never
retried); :meth:`PickupDesk.pickup` does both. The ``pickup`` event itself is journaled
only when that door, seen open, closes again (the runtime feeds the door events to
:attr:`PickupDesk.pending`); a door not seen open gives the entries back and journals
the ``pickup_door_not_opened`` alarm.

The presented code or token is never stored or logged, nor shown by a ``repr``. The
desk touches nothing but the journal itself: the doors, the server's clock and whether
the link is up are handed in, so a kiosk can be tested against fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from locker_agent.doors import OpenOutcome, OpenResult
from locker_agent.journal import Journal, JournalTx, to_contract_event
from locker_agent.pickup.allowlist import AllowList, LockoutStatus, Match, NoMatchReason
from locker_agent.pickup.pending import PendingPickups
from locker_contract import CredentialKind


@dataclass(frozen=True, slots=True)
class TypedCode:
    """A pickup code typed on the keypad."""

    code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ScannedToken:
    """A QR token read by the scanner."""

    token: str = field(repr=False)


Credential = TypedCode | ScannedToken


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Both a code and a token were given, or neither: nothing the allow-list can check.

    Only the keyword form of :meth:`~locker_agent.runtime.AgentRuntime.local_pickup` can
    say that; it is refused as ``no_credential`` and journaled under ``kind``.
    """

    kind: CredentialKind


@dataclass(frozen=True, slots=True)
class Granted:
    """Open ``door``: the parcels it holds for the credential (consumed; pending until
    the door has opened and closed again).

    ``more_doors``: other doors with parcels for the same credential, not yet claimed;
    each is claimed by deciding the same credential again with ``door=`` that door.
    """

    door: int
    parcel_ids: tuple[int, ...]
    more_doors: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    """Open nothing, because of ``reason`` (already journaled as ``pickup.refused``)."""

    reason: NoMatchReason
    door: int | None = None


Decision = Granted | Refused


@dataclass(frozen=True, slots=True)
class PickupOutcome:
    """What a whole pickup did. ``reason`` is set when nothing was opened."""

    opened: bool
    door: int | None = None
    parcel_ids: tuple[int, ...] = ()
    door_outcome: OpenOutcome | None = None
    reason: str | None = None


class DoorOpener(Protocol):
    """What the desk needs of the door layer (:class:`~locker_agent.doors.DoorController`)."""

    def open_door(self, door: int) -> OpenResult: ...


def presented(*, code: str | None, qr_token: str | None) -> Credential | Unreadable:
    """The credential given as keywords: exactly one of ``code`` and ``qr_token``."""
    if code is not None and qr_token is None:
        return TypedCode(code)
    if qr_token is not None and code is None:
        return ScannedToken(qr_token)
    return Unreadable("code" if code is not None else "qr")


class PickupDesk:
    """Decides pickups against the allow-list, journals them, opens the granted door."""

    def __init__(
        self,
        allow_list: AllowList,
        journal: Journal,
        doors: DoorOpener,
        *,
        server_now: Callable[[], datetime],
        link_up: Callable[[], bool],
        journaled: Callable[[], None] = lambda: None,
    ) -> None:
        """``server_now``: the server's clock as the cabinet knows it (entries expire by
        it); ``link_up``: whether the MQTT link is connected (the pickup's ``mode``);
        ``journaled``: called after each commit, so the runtime publishes it."""
        self._allow_list = allow_list
        self._journal = journal
        self._doors = doors
        self._server_now = server_now
        self._link_up = link_up
        self._journaled = journaled
        #: granted pickups waiting for their door; the runtime feeds it the door events
        self.pending = PendingPickups(allow_list)

    def pickup(
        self, credential: Credential | Unreadable, *, door: int | None = None
    ) -> PickupOutcome:
        """Decide, and open the granted door. ``door``: the door the person stands at."""
        decision = self.decide(credential, door=door)
        if isinstance(decision, Refused):
            return PickupOutcome(opened=False, door=door, reason=decision.reason)
        return self.open(decision)

    def decide(self, credential: Credential | Unreadable, *, door: int | None = None) -> Decision:
        """Match the credential: a match is consumed and recorded as a pending pickup, a
        miss journaled as ``pickup.refused`` (in the transaction of the check)."""
        kind, code, qr = _check_arguments(credential)
        with self._journal.transaction() as tx:
            verdict = self._allow_list.check(code=code, qr=qr, door=door, now=self._server_now())
            if isinstance(verdict, Match):
                self.pending.add(tx, verdict, link_up=self._link_up())
            else:
                _append(tx, "pickup.refused", door, {"reason": verdict.reason, "credential": kind})
        self._journaled()
        if isinstance(verdict, Match):
            return Granted(verdict.door, verdict.parcel_ids, verdict.more_doors)
        return Refused(verdict.reason, door)

    def lockout_status(self, *, door: int | None = None) -> LockoutStatus:
        """Attempts left before the lockout, and how long one in force still lasts."""
        return self._allow_list.lockout(door=door, now=self._server_now())

    def open(self, granted: Granted) -> PickupOutcome:
        """Open the granted door once. Seen open: the pickup waits for the close. Not
        seen open: its entries are given back and an alarm journaled."""
        result = self._doors.open_door(granted.door)
        opened = result.outcome is OpenOutcome.CONFIRMED
        with self._journal.transaction() as tx:
            if opened:  # the door event says so too; this covers a handler that failed
                self.pending.opened(tx, granted.door)
            else:
                detail = f"{result.outcome.value} {result.detail}".strip()
                self.pending.not_opened(tx, granted.door, granted.parcel_ids, detail)
        self._journaled()
        return PickupOutcome(
            opened,
            granted.door,
            granted.parcel_ids,
            result.outcome,
            None if opened else result.outcome.value,
        )


def _check_arguments(
    credential: Credential | Unreadable,
) -> tuple[CredentialKind, str | None, str | None]:
    """(kind journaled, code, qr) as :meth:`AllowList.check` takes them."""
    if isinstance(credential, TypedCode):
        return "code", credential.code, None
    if isinstance(credential, ScannedToken):
        return "qr", None, credential.token
    return credential.kind, None, None


def _append(tx: JournalTx, event_type: str, door: int | None, data: dict[str, Any]) -> None:
    """Journal an event, checked against the contract now so it can never block the outbox."""
    to_contract_event(tx.append(event_type, door=door, data=data))
