"""The courier desk: what a courier at a cabinet's kiosk asks the server (``req``).

Signing in, the door for a scanned parcel, registering an unannounced parcel, a larger
door, a broken door, and collecting expired parcels for return. Each request is answered
by :func:`answer_request` with one contract :data:`~locker_contract.desk.Answer`, and
each is audited with the cabinet and its site: what was done, or why not.

Rules:

* **A cabinet acts only for itself and for couriers who signed in at it.** Sign-in hands
  out a :class:`~locker_contract.desk.CourierSession` whose token is a keyed hash over
  the cabinet's code, the courier and the expiry
  (:func:`~locker_server.services.credentials.courier_session_token`); every later
  request must carry a valid one. Reservations, registrations and returns are checked
  against the cabinet whose topic carried the request (the broker ACL vouches for it).
* **Nothing half-done.** Each operation runs in a savepoint; a refusal undoes it (a
  larger door that cannot be found leaves the old reservation as it was) and only the
  refusal's audit entry remains.
* **Guessing courier codes is slow.** After ``SIGN_IN_FAILURES_ALLOWED`` wrong codes at
  one cabinet within ``SIGN_IN_FAILURE_WINDOW``, that cabinet's sign-ins are refused
  (``too_many_attempts``) — a right code too, or the refusals would say which code is
  right — until the oldest of them is out of the window. Counted from the audit log's
  refused sign-ins, so every server process and restart sees the same count.
* **Never a code in the record.** The courier code is hashed as it arrives and appears
  in no audit entry, log line or reply.
* The deposit itself is not a request: the cabinet journals a ``deposit`` event once the
  door has opened and closed again, and ingest applies it through
  :func:`~locker_server.services.parcels.record_deposit`, exactly once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from locker_contract.desk import (
    Answer,
    CollectedForReturn,
    CourierSession,
    CourierSignIn,
    DepositLookup,
    Done,
    DoorBroken,
    DoorReserved,
    ExpiredList,
    ExpiredParcel,
    ExpiredParcels,
    LargerDoor,
    Operation,
    RefusalReason,
    RegisterParcel,
    Request,
    RequestRefused,
    SignedIn,
)
from locker_server.audit import Actor
from locker_server.audit.models import AuditEntry
from locker_server.errors import DomainError, NoDoorAvailable, NotFound
from locker_server.models import Cabinet, Courier, Door, Parcel, ParcelState, ServiceState
from locker_server.models.sites import SizeClass
from locker_server.services import alarms, allocation, directory, parcels
from locker_server.services.cabinets import cabinet_caller
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.credentials import courier_session_token
from locker_server.services.errors import InvalidField
from locker_server.services.lifecycle import move

S = ParcelState
#: How long a courier stays signed in at a cabinet without signing in again.
SESSION_MINUTES = 30
#: wrong courier codes one cabinet may see within the window before it refuses sign-ins
SIGN_IN_FAILURES_ALLOWED = 5
SIGN_IN_FAILURE_WINDOW = timedelta(minutes=10)
#: how a sign-in is audited (``courier_desk.<op>``)
_SIGN_IN_ACTION = "courier_desk.courier_sign_in"
R = RefusalReason
#: What the kiosk shows for each refusal (it may word its own, by ``reason``).
MESSAGES: dict[RefusalReason, str] = {
    R.BAD_CREDENTIAL: "Unknown courier code or badge.",
    R.SESSION_INVALID: "Your session has ended: please sign in again.",
    R.REQUEST_EXPIRED: "The request came too late: please try again.",
    R.NOT_ANNOUNCED: "This parcel is not announced: register it for its recipient.",
    R.ALREADY_REGISTERED: "This tracking number is already registered.",
    R.WRONG_CABINET: "This parcel is meant for another cabinet.",
    R.WRONG_STATE: "This parcel cannot be handled here now.",
    R.RECIPIENT_UNKNOWN: "No such recipient in the directory.",
    R.NO_CONSENT: "The recipient has not agreed to locker delivery: deliver it in person.",
    R.NO_FREE_DOOR: "No free door of that size: try a larger size or another cabinet.",
    R.UNKNOWN_SIZE: "Unknown door size.",
    R.UNKNOWN_DOOR: "This cabinet has no such door.",
    R.UNKNOWN_PARCEL: "No such parcel of your carrier here.",
    R.TOO_MANY_ATTEMPTS: "Too many wrong courier codes here: try again in a few minutes.",
}


class DeskRefusal(DomainError):
    """A request the desk will not carry out; ``reason`` goes back to the kiosk."""

    code = "desk_refused"

    def __init__(self, reason: RefusalReason, detail: str | None = None) -> None:
        super().__init__(detail or MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DeskOutcome:
    """The answer to send back, and whether the cabinet's reservations changed."""

    answer: Answer
    reservations_changed: bool = False


@dataclass(frozen=True, slots=True)
class _Desk:
    """What every operation of one request shares."""

    session: Session
    deps: DomainDeps
    cabinet: Cabinet
    now: datetime


# --- the entry point --------------------------------------------------------------------------


def answer_request(
    session: Session, deps: DomainDeps, *, cabinet: Cabinet, request: Request
) -> DeskOutcome:
    """Carry out ``request`` from ``cabinet`` (in a savepoint) and audit it; refusals too."""
    desk = _Desk(session, deps, cabinet, deps.clock())
    operation = request.operation
    courier: Courier | None = None
    try:
        with session.begin_nested():
            _check_not_expired(desk, request)
            courier = None if isinstance(operation, CourierSignIn) else _courier_of(desk, operation)
            outcome = _carry_out(desk, operation, courier)
    except DomainError as exc:
        refusal = _as_refusal(exc)
        if refusal.reason in (R.BAD_CREDENTIAL, R.TOO_MANY_ATTEMPTS):
            _watch_wrong_codes(desk, refusal.reason)
        _audit(desk, request, courier, outcome="refused", reason=refusal.reason, target=None)
        return DeskOutcome(RequestRefused(reason=refusal.reason, message=refusal.message[:200]))
    signed_in = outcome.answer.courier_id if isinstance(outcome.answer, SignedIn) else None
    _audit(desk, request, courier, outcome="success", reason=None, target=_target(desk, outcome))
    if signed_in is not None:
        _audit_sign_in_as(desk, request, signed_in)
    return outcome


def _carry_out(desk: _Desk, operation: Operation, courier: Courier | None) -> DeskOutcome:
    if isinstance(operation, CourierSignIn):
        return DeskOutcome(_sign_in(desk, operation))
    assert courier is not None
    if isinstance(operation, DepositLookup):
        return _deposit_lookup(desk, courier, operation)
    if isinstance(operation, RegisterParcel):
        return _register(desk, courier, operation)
    if isinstance(operation, LargerDoor):
        return _larger_door(desk, courier, operation)
    if isinstance(operation, DoorBroken):
        return DeskOutcome(_door_broken(desk, courier, operation))
    if isinstance(operation, ExpiredParcels):
        return DeskOutcome(_expired_parcels(desk, courier))
    return _collected(desk, courier, operation)


def _check_not_expired(desk: _Desk, request: Request) -> None:
    if request.expires_at <= desk.now:
        raise DeskRefusal(R.REQUEST_EXPIRED)


def _as_refusal(exc: DomainError) -> DeskRefusal:
    """Domain errors of the parcel services, in the words the kiosk understands."""
    if isinstance(exc, DeskRefusal):
        return exc
    if isinstance(exc, NoDoorAvailable):
        return DeskRefusal(R.NO_FREE_DOOR)
    if isinstance(exc, InvalidField) and exc.fields[0]["field"] == "size":
        return DeskRefusal(R.UNKNOWN_SIZE)
    if isinstance(exc, NotFound):
        return DeskRefusal(R.UNKNOWN_PARCEL)
    return DeskRefusal(R.WRONG_STATE)


# --- signing in -------------------------------------------------------------------------------


def _sign_in(desk: _Desk, operation: CourierSignIn) -> SignedIn:
    if _recent_wrong_codes(desk) >= SIGN_IN_FAILURES_ALLOWED:
        raise DeskRefusal(R.TOO_MANY_ATTEMPTS)
    courier = directory.authenticate_courier(
        desk.session, desk.deps.pickup_hmac_key, operation.secret.strip()
    )
    if courier is None or courier.id is None:
        raise DeskRefusal(R.BAD_CREDENTIAL)
    carrier = directory.get_carrier(desk.session, courier.carrier_id)
    expires_at = desk.now + timedelta(minutes=SESSION_MINUTES)
    return SignedIn(
        courier_id=courier.id,
        carrier_id=courier.carrier_id,
        carrier_name=carrier.name,
        display_name=courier.name,
        session=CourierSession(
            courier_id=courier.id, expires_at=expires_at, token=_token(desk, courier.id, expires_at)
        ),
    )


def _recent_wrong_codes(desk: _Desk) -> int:
    """Sign-ins refused at this cabinet for a wrong code within the window."""
    query = (
        select(func.count())
        .select_from(AuditEntry)
        .where(
            col(AuditEntry.cabinet_id) == desk.cabinet.id,
            col(AuditEntry.action) == _SIGN_IN_ACTION,
            col(AuditEntry.outcome) == "refused",
            col(AuditEntry.reason) == R.BAD_CREDENTIAL.value,
            col(AuditEntry.recorded_at) > desk.now - SIGN_IN_FAILURE_WINDOW,
        )
    )
    return int(desk.session.exec(query).one())


def _watch_wrong_codes(desk: _Desk, reason: RefusalReason) -> None:
    """Tell operators when this cabinet's wrong courier codes reach the limit (the one
    just refused included; each refusal while locked counts the alarm up). Outside the
    refused operation's savepoint, and before its audit entry: the alarm row first."""
    wrong = _recent_wrong_codes(desk) + (reason == R.BAD_CREDENTIAL)
    if wrong < SIGN_IN_FAILURES_ALLOWED:
        return
    minutes = int(SIGN_IN_FAILURE_WINDOW.total_seconds() // 60)
    alarms.raise_alarm(
        desk.session, desk.deps, place=alarms.Place(desk.cabinet),
        kind=alarms.ServerAlarm.courier_code_burst, caller=cabinet_caller(desk.cabinet.code),
        detail=f"{wrong} wrong courier codes within {minutes} min",
    )  # fmt: skip


def _token(desk: _Desk, courier_id: int, expires_at: datetime) -> str:
    return courier_session_token(
        desk.deps.pickup_hmac_key,
        cabinet_code=desk.cabinet.code,
        courier_id=courier_id,
        expires_at=expires_at,
    )


def _courier_of(desk: _Desk, operation: Any) -> Courier:
    """The courier whose session ``operation`` carries, if it is valid at this cabinet."""
    proof: CourierSession = operation.session
    expected = _token(desk, proof.courier_id, proof.expires_at)
    if proof.expires_at <= desk.now or not hmac.compare_digest(expected, proof.token):
        raise DeskRefusal(R.SESSION_INVALID)
    courier = desk.session.get(Courier, proof.courier_id)
    if courier is None or not courier.active:
        raise DeskRefusal(R.SESSION_INVALID)
    return courier


def _as_caller(desk: _Desk, courier: Courier) -> Caller:
    """The courier acting at this cabinet, as the audit log names them."""
    actor = Actor(type="courier", id=str(courier.id))
    return Caller(actor=actor, channel="cabinet", source=desk.cabinet.code)


# --- deposits ---------------------------------------------------------------------------------


def _parcel_by_tracking(desk: _Desk, courier: Courier, tracking_number: str) -> Parcel | None:
    query = select(Parcel).where(
        Parcel.carrier_id == courier.carrier_id, Parcel.tracking_number == tracking_number
    )
    return desk.session.exec(query).first()


def _deposit_lookup(desk: _Desk, courier: Courier, operation: DepositLookup) -> DeskOutcome:
    parcel = _parcel_by_tracking(desk, courier, operation.tracking_number)
    if parcel is None or parcel.id is None:
        raise DeskRefusal(R.NOT_ANNOUNCED)
    if parcel.state == S.reserved:
        if parcel.cabinet_id != desk.cabinet.id:
            raise DeskRefusal(R.WRONG_CABINET)
        return DeskOutcome(_door_reserved(desk, parcel))
    if parcel.state != S.announced:
        raise DeskRefusal(R.WRONG_STATE)
    if parcel.site_id is not None and parcel.site_id != desk.cabinet.site_id:
        raise DeskRefusal(R.WRONG_CABINET)
    if operation.size is not None:
        _set_size(desk, parcel, operation.size)
    return DeskOutcome(_reserve(desk, courier, parcel.id), reservations_changed=True)


def _set_size(desk: _Desk, parcel: Parcel, size: str) -> None:
    parcel.size_class_id = allocation.size_class_by_code(desk.session, size).id
    desk.session.add(parcel)
    desk.session.flush()


def _reserve(desk: _Desk, courier: Courier, parcel_id: int) -> DoorReserved:
    assert desk.cabinet.id is not None
    parcel = parcels.reserve(
        desk.session,
        desk.deps,
        parcel_id=parcel_id,
        cabinet_id=desk.cabinet.id,
        caller=_as_caller(desk, courier),
    )
    return _door_reserved(desk, parcel)


def _door_reserved(desk: _Desk, parcel: Parcel) -> DoorReserved:
    door = desk.session.get(Door, parcel.door_id) if parcel.door_id is not None else None
    assert door is not None
    assert parcel.id is not None
    assert parcel.reserved_until is not None
    size = desk.session.get(SizeClass, door.size_class_id)
    assert size is not None
    return DoorReserved(
        parcel_id=parcel.id, door=door.number, size=size.code, reserved_until=parcel.reserved_until
    )


def _register(desk: _Desk, courier: Courier, operation: RegisterParcel) -> DeskOutcome:
    key = operation.recipient
    recipient = directory.find_recipient(desk.session, kind=key.kind, value=key.value)
    if recipient is None or recipient.id is None or not recipient.active:
        raise DeskRefusal(R.RECIPIENT_UNKNOWN)
    if not recipient.consent_locker_delivery:
        raise DeskRefusal(R.NO_CONSENT)
    if _parcel_by_tracking(desk, courier, operation.tracking_number) is not None:
        raise DeskRefusal(R.ALREADY_REGISTERED)
    spec = parcels.Announcement(
        carrier_id=courier.carrier_id,
        tracking_number=operation.tracking_number,
        recipient_id=recipient.id,
        site_id=desk.cabinet.site_id,
        size=operation.size,
    )
    parcel = parcels.announce(desk.session, desk.deps, spec, caller=_as_caller(desk, courier))
    assert parcel.id is not None
    return DeskOutcome(_reserve(desk, courier, parcel.id), reservations_changed=True)


def _own_parcel(desk: _Desk, courier: Courier, parcel_id: int, state: ParcelState) -> Parcel:
    """The courier's carrier's parcel at this cabinet, locked, in ``state``."""
    try:
        parcel = parcels.get_parcel(desk.session, parcel_id, lock=True)
    except NotFound:
        raise DeskRefusal(R.UNKNOWN_PARCEL) from None
    if parcel.carrier_id != courier.carrier_id or parcel.cabinet_id != desk.cabinet.id:
        raise DeskRefusal(R.UNKNOWN_PARCEL)
    if parcel.state != state:
        raise DeskRefusal(R.WRONG_STATE)
    return parcel


def _larger_door(desk: _Desk, courier: Courier, operation: LargerDoor) -> DeskOutcome:
    """Release the parcel's door and reserve one of ``size``; if none is free the savepoint
    is rolled back, so the parcel keeps the door it had."""
    parcel = _own_parcel(desk, courier, operation.parcel_id, S.reserved)
    old_door = parcel.door_id
    allocation.lock_doors(desk.session, [old_door])
    caller = _as_caller(desk, courier)
    reason = f"larger door ({operation.size}) requested"
    move(desk.session, desk.deps, parcel, S.announced, caller=caller, now=desk.now, reason=reason)
    parcel.cabinet_id = parcel.door_id = parcel.reserved_until = None
    if old_door is not None:
        allocation.release_door(desk.session, old_door)
    _set_size(desk, parcel, operation.size)
    assert parcel.id is not None
    return DeskOutcome(_reserve(desk, courier, parcel.id), reservations_changed=True)


# --- doors and returns ------------------------------------------------------------------------


def _door_broken(desk: _Desk, courier: Courier, operation: DoorBroken) -> Done:
    query = select(Door).where(Door.cabinet_id == desk.cabinet.id, Door.number == operation.door)
    door = desk.session.exec(query.with_for_update()).first()
    if door is None:
        raise DeskRefusal(R.UNKNOWN_DOOR)
    door.service_state = ServiceState.out_of_service
    door.service_reason = f"reported by courier {courier.id}: {operation.reason}"[:255]
    desk.session.add(door)
    return Done()


def _expired_parcels(desk: _Desk, courier: Courier) -> ExpiredList:
    query = (
        select(Parcel, Door.number)
        .join(Door, col(Door.id) == col(Parcel.door_id))
        .where(
            Parcel.cabinet_id == desk.cabinet.id,
            Parcel.carrier_id == courier.carrier_id,
            Parcel.state == S.expired,
        )
        .order_by(col(Door.number), col(Parcel.id))
        .limit(200)
    )
    found = [
        ExpiredParcel(parcel_id=parcel.id or 0, door=number, tracking_number=parcel.tracking_number)
        for parcel, number in desk.session.exec(query).all()
    ]
    return ExpiredList(parcels=found)


def _collected(desk: _Desk, courier: Courier, operation: CollectedForReturn) -> DeskOutcome:
    _own_parcel(desk, courier, operation.parcel_id, S.expired)
    parcels.collect_for_return(
        desk.session, desk.deps, parcel_id=operation.parcel_id, caller=_as_caller(desk, courier)
    )
    return DeskOutcome(Done())


# --- audit ------------------------------------------------------------------------------------


def _target(desk: _Desk, outcome: DeskOutcome) -> Target | None:
    answer = outcome.answer
    if isinstance(answer, DoorReserved):
        return Target.at_cabinet(desk.cabinet, parcel_id=answer.parcel_id)
    return None


def _audit(
    desk: _Desk,
    request: Request,
    courier: Courier | None,
    *,
    outcome: str,
    reason: RefusalReason | None,
    target: Target | None,
) -> None:
    """``courier_desk.<op>``: who asked at which cabinet (and site), and what came of it."""
    operation = request.operation
    details: dict[str, Any] = {"request_id": request.request_id}
    if isinstance(operation, CourierSignIn):
        details["credential"] = operation.credential  # how, never the code itself
    elif courier is None:  # refused before the session was checked, or by it
        details["claimed_courier_id"] = getattr(operation, "session").courier_id  # noqa: B009
    for name in ("tracking_number", "parcel_id", "door", "size"):
        if hasattr(operation, name):
            details[name] = getattr(operation, name)
    audit(
        desk.session,
        desk.deps,
        action=f"courier_desk.{operation.op}",
        caller=cabinet_caller(desk.cabinet.code) if courier is None else _as_caller(desk, courier),
        target=target or Target.at_cabinet(desk.cabinet),
        outcome=outcome,
        reason=None if reason is None else reason.value,
        details=details,
    )


def _audit_sign_in_as(desk: _Desk, request: Request, courier_id: int) -> None:
    """Name the courier who signed in (the request's own entry is the cabinet's)."""
    actor = Actor(type="courier", id=str(courier_id))
    audit(
        desk.session,
        desk.deps,
        action="courier.signed_in",
        caller=Caller(actor=actor, channel="cabinet", source=desk.cabinet.code),
        target=Target.at_cabinet(desk.cabinet),
        details={"request_id": request.request_id},
    )
