"""The pickup desk: a credential presented at the cabinet → the door to open, or why not.

The kiosk (and :meth:`locker_agent.runtime.AgentRuntime.local_pickup`) hands over a
:class:`TypedCode` or a :class:`ScannedToken`. :meth:`PickupDesk.decide` checks it
against the offline allow-list and journals the verdict — the match, the consumed
entries and the ``pickup`` event, or the ``pickup.refused`` event — in ONE transaction
before any door moves, so the record never lags the act. A :class:`Granted` names the
door to open; :meth:`PickupDesk.open` opens it (once, never retried) and journals an
alarm when the door was not seen open; :meth:`PickupDesk.pickup` does both.

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
from locker_contract import CredentialKind, OfflinePickupData


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
    """Open ``door``: the parcels it holds for the credential (consumed and journaled).

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

    def pickup(
        self, credential: Credential | Unreadable, *, door: int | None = None
    ) -> PickupOutcome:
        """Decide, and open the granted door. ``door``: the door the person stands at."""
        decision = self.decide(credential, door=door)
        if isinstance(decision, Refused):
            return PickupOutcome(opened=False, door=door, reason=decision.reason)
        return self.open(decision)

    def decide(self, credential: Credential | Unreadable, *, door: int | None = None) -> Decision:
        """Match the credential; journal the ``pickup`` or ``pickup.refused`` event with it."""
        kind, code, qr = _check_arguments(credential)
        with self._journal.transaction() as tx:
            verdict = self._allow_list.check(code=code, qr=qr, door=door, now=self._server_now())
            if isinstance(verdict, Match):
                _append(tx, "pickup", verdict.door, self._pickup_data(verdict))
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
        """Open the granted door once; a door not seen open is journaled as an alarm."""
        result = self._doors.open_door(granted.door)
        opened = result.outcome is OpenOutcome.CONFIRMED
        if not opened:
            detail = f"{result.outcome.value} {result.detail}".strip()[:200]
            with self._journal.transaction() as tx:
                alarm = {"kind": "pickup_door_not_opened", "detail": detail}
                _append(tx, "alarm", granted.door, alarm)
            self._journaled()
        return PickupOutcome(
            opened,
            granted.door,
            granted.parcel_ids,
            result.outcome,
            None if opened else result.outcome.value,
        )

    def _pickup_data(self, match: Match) -> dict[str, Any]:
        mode = "online" if self._link_up() else "offline"
        data = {
            "mode": mode,
            "parcel_ids": list(match.parcel_ids),
            "credential": match.credential,
            "allow_list_version": match.allow_list_version,
        }
        if mode == "online" and not _contract_accepts(data):
            data["mode"] = "offline"  # the contract knows only cabinet-validated pickups
        return data


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


def _contract_accepts(data: dict[str, Any]) -> bool:
    try:
        OfflinePickupData.model_validate(data)
    except ValueError:
        return False
    return True
