"""Pickup at a cabinet: check a code or QR token, enforce the lockout, open the door.

The caller (kiosk, cabinet link, API) always learns one of three things: granted (with
the door to open), refused (the same answer whether the code is unknown or wrong), or
locked out. The audit entry ``pickup.attempt`` records the internal outcome:
``granted``, ``wrong_code``, ``locked_out`` or ``expired``. Refusals are *returned*, not
raised, because the failure counter and the audit entry must be committed even though
the attempt failed; :meth:`PickupDecision.raise_if_refused` turns them into errors after
the caller has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from locker_server.errors import LockedOut, PickupRefused
from locker_server.models import (
    Cabinet,
    CredentialKind,
    Door,
    Parcel,
    ParcelState,
    PickupCredential,
)
from locker_server.services import alarms, allocation, credentials
from locker_server.services.cabinets import get_cabinet
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.errors import InvalidField
from locker_server.services.lifecycle import COLLECTABLE, move
from locker_server.services.parcels import carrier_event, get_parcel

REFUSED_MESSAGE = "pickup refused: check the code and try again"
LOCKED_MESSAGE = "too many failed attempts: pickup is locked for a while, try again later"
EXPIRED_MESSAGE = "the pickup period of this parcel is over; please contact the site operator"


@dataclass(frozen=True, slots=True)
class PickupDecision:
    outcome: str  # granted | wrong_code | locked_out | expired
    cabinet_id: int
    door_numbers: tuple[int, ...] = ()
    parcel_ids: tuple[int, ...] = ()
    #: When locked out: seconds after which the lock has surely ended (one lockout window;
    #: attempts refused while locked are not counted, so waiting that long always helps).
    retry_after: int | None = None

    @property
    def granted(self) -> bool:
        return self.outcome == "granted"

    def raise_if_refused(self) -> None:
        if self.outcome == "locked_out":
            raise LockedOut(LOCKED_MESSAGE, retry_after=self.retry_after)
        if self.outcome == "expired":
            raise PickupRefused(EXPIRED_MESSAGE)
        if not self.granted:
            raise PickupRefused(REFUSED_MESSAGE)


def _presented(code: str | None, qr_token: str | None) -> tuple[CredentialKind, str]:
    if (code is None) == (qr_token is None):
        raise InvalidField("code", "give exactly one of code or qr_token")
    if code is not None:
        return CredentialKind.code, code.strip()
    assert qr_token is not None
    return CredentialKind.qr, qr_token.strip()


def _lock_parcel_of(session: Session, found: PickupCredential | None) -> Parcel | None:
    """Lock the credential's parcel, then re-read the credential: a concurrent pickup with
    the same code may have spent it while we were matching (single use under concurrency)."""
    if found is None:
        return None
    parcel = get_parcel(session, found.parcel_id, lock=True)
    session.refresh(found)
    return parcel


def _unspent(credential: PickupCredential, parcel: Parcel) -> bool:
    unused = credential.used_at is None and credential.voided_at is None
    return unused and (parcel.state in COLLECTABLE or parcel.state == ParcelState.expired)


def _expired(credential: PickupCredential, parcel: Parcel, now: datetime) -> bool:
    return parcel.state == ParcelState.expired or now >= credential.expires_at


def _collect_door(
    session: Session, deps: DomainDeps, parcel: Parcel, caller: Caller, now: datetime
) -> list[Parcel]:
    """Every collectable parcel of the same recipient in the same door, all locked."""
    query = (
        select(Parcel)
        .where(
            Parcel.door_id == parcel.door_id,
            Parcel.recipient_id == parcel.recipient_id,
            col(Parcel.state).in_(COLLECTABLE),
        )
        .order_by(col(Parcel.id))
        .with_for_update()
    )
    parcels = list(session.exec(query).all())
    allocation.lock_doors(session, [parcel.door_id])  # row locks first, audit entries after
    for item in parcels:
        item.picked_up_at = now
        move(session, deps, item, ParcelState.picked_up, caller=caller, now=now)
        credentials.void_credentials(session, item.id or 0, now=now)
        deps.notifier.cancel_pending(session, parcel_id=item.id or 0)
        allocation.release_door(session, item.door_id or 0)
        carrier_event(session, deps, item, "parcel.picked_up")
    return parcels


def _audit_attempt(
    session: Session,
    deps: DomainDeps,
    decision: PickupDecision,
    caller: Caller,
    cabinet: Cabinet,
    door_id: int | None = None,
    parcel: Parcel | None = None,
    door_number: int | None = None,
) -> None:
    # Refusals know no parcel, but they happened at this cabinet, so at its site.
    target = Target.at_cabinet(
        cabinet,
        door_id=door_id,
        parcel_id=parcel.id if parcel else None,
        recipient_id=parcel.recipient_id if parcel else None,
    )
    outcome = decision.outcome
    audit(
        session,
        deps,
        action="pickup.attempt",
        caller=caller,
        target=target,
        outcome=outcome,
        details={"door_number": door_number} if door_number is not None else {},
    )


def attempt_pickup(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    code: str | None = None,
    qr_token: str | None = None,
    door_number: int | None = None,
    caller: Caller,
    now: datetime | None = None,
) -> PickupDecision:
    """Check a code or QR token at ``cabinet_id``; on success mark the parcel(s) picked up.

    ``door_number`` is given when the attempt is made at one door (a keypad per door);
    failures then count against that door as well as the cabinet.
    """
    now = now or deps.clock()
    kind, value = _presented(code, qr_token)
    cabinet = get_cabinet(session, cabinet_id)
    if credentials.is_locked_out(
        session, deps.lockout, cabinet_id=cabinet_id, door_number=door_number, now=now
    ):
        retry_after = int(deps.lockout.window.total_seconds())
        decision = PickupDecision("locked_out", cabinet_id, retry_after=retry_after)
        _watch_burst(session, deps, cabinet, caller, now)
        _audit_attempt(session, deps, decision, caller, cabinet, door_number=door_number)
        return decision
    found = credentials.match_credential(
        session, deps.pickup_hmac_key, cabinet_id=cabinet_id, kind=kind, value=value
    )
    parcel = _lock_parcel_of(session, found)
    door = session.get(Door, parcel.door_id) if parcel and parcel.door_id else None
    if (
        found is None
        or parcel is None
        or door is None
        or (door_number is not None and door.number != door_number)
        or not _unspent(found, parcel)
    ):
        return _refuse(session, deps, cabinet, door_number, caller, now)
    if _expired(found, parcel, now):
        decision = PickupDecision("expired", cabinet_id)
        _audit_attempt(session, deps, decision, caller, cabinet, door.id, parcel, door_number)
        return decision
    found.used_at = now
    session.add(found)
    parcels = _collect_door(session, deps, parcel, caller, now)
    decision = PickupDecision(
        "granted", cabinet_id, (door.number,), tuple(p.id for p in parcels if p.id is not None)
    )
    _audit_attempt(session, deps, decision, caller, cabinet, door.id, parcel, door_number)
    return decision


def _refuse(
    session: Session,
    deps: DomainDeps,
    cabinet: Cabinet,
    door_number: int | None,
    caller: Caller,
    now: datetime,
) -> PickupDecision:
    cabinet_id = cabinet.id or 0
    credentials.record_failure(session, cabinet_id=cabinet_id, door_number=door_number, now=now)
    _watch_burst(session, deps, cabinet, caller, now)
    decision = PickupDecision("wrong_code", cabinet_id)
    _audit_attempt(session, deps, decision, caller, cabinet, door_number=door_number)
    return decision


def _watch_burst(
    session: Session, deps: DomainDeps, cabinet: Cabinet, caller: Caller, now: datetime
) -> None:
    """Raise the wrong-code-burst alarm at the cabinet lockout threshold (before the
    attempt's audit entry: alarm row first, audit head last)."""
    assert cabinet.id is not None
    since = now - deps.lockout.window
    refused = alarms.refused_pickups_checked(session, cabinet.id, since=since)
    alarms.watch_refused_pickups(session, deps, cabinet=cabinet, refused=refused, caller=caller)
