"""Parcel services: announce, reserve, deposit, cancel, extensions, re-issue, return path,
and the periodic sweeps (reservation release, reminders, expiry).

Each function takes the caller's session and commits nothing; every state change goes
through :func:`locker_server.services.lifecycle.move`. Row locks are taken before any
audit entry is written (lock first, audit last), so writers never wait on each other in
opposite orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from locker_server.config import Settings
from locker_server.errors import Conflict, NotFound, PermissionDenied
from locker_server.models import (
    Cabinet,
    Carrier,
    Door,
    Parcel,
    ParcelState,
    Recipient,
    Site,
)
from locker_server.notifications import RecipientContact
from locker_server.services import allocation, credentials
from locker_server.services.cabinets import get_cabinet
from locker_server.services.context import SYSTEM, Caller, DomainDeps, Target, audit
from locker_server.services.errors import InvalidField
from locker_server.services.lifecycle import (
    CANCEL_NEEDS_OPERATOR,
    COLLECTABLE,
    HOLDS_DOOR,
    ensure_can_move,
    move,
    parcel_target,
    record_step,
)

S = ParcelState
#: Messages that carry (or point to) the old code: void them when new credentials go out.
VOIDED_BY_REISSUE = ("pickup_ready", "reminder")


@dataclass(frozen=True, slots=True)
class Announcement:
    carrier_id: int
    tracking_number: str
    recipient_id: int
    site_id: int | None = None
    size: str | None = None
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None


# --- loading ---------------------------------------------------------------------------------


def get_parcel(session: Session, parcel_id: int, *, lock: bool = False) -> Parcel:
    query = select(Parcel).where(Parcel.id == parcel_id)
    if lock:
        query = query.with_for_update()
    parcel = session.exec(query.execution_options(populate_existing=True)).first()
    if parcel is None:
        raise NotFound(f"parcel {parcel_id} not found")
    return parcel


def get_recipient(session: Session, recipient_id: int) -> Recipient:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id} not found")
    return recipient


def get_carrier(session: Session, carrier_id: int) -> Carrier:
    carrier = session.get(Carrier, carrier_id)
    if carrier is None:
        raise NotFound(f"carrier {carrier_id} not found")
    return carrier


# --- announce --------------------------------------------------------------------------------


def _check_recipient(recipient: Recipient) -> None:
    if not recipient.active:
        raise InvalidField("recipient_id", "the recipient is not active")
    if not recipient.consent_locker_delivery:
        # China (since March 2024): no locker delivery without the recipient's consent.
        raise InvalidField("recipient_id", "the recipient has not consented to locker delivery")


def _check_unique(session: Session, carrier_id: int, tracking_number: str) -> None:
    query = select(Parcel.id).where(
        Parcel.carrier_id == carrier_id, Parcel.tracking_number == tracking_number
    )
    if session.exec(query).first() is not None:
        raise Conflict(f"tracking number {tracking_number} is already registered for this carrier")


def _new_parcel(session: Session, spec: Announcement, now: datetime) -> Parcel:
    size = allocation.size_class_by_code(session, spec.size) if spec.size else None
    parcel = Parcel(
        carrier_id=spec.carrier_id,
        tracking_number=spec.tracking_number,
        recipient_id=spec.recipient_id,
        site_id=spec.site_id,
        size_class_id=size.id if size else None,
        length_mm=spec.length_mm,
        width_mm=spec.width_mm,
        height_mm=spec.height_mm,
        state=S.announced,
        created_at=now,
        updated_at=now,
    )
    allocation.required_rank(session, parcel)  # refuses dimensions no door can hold
    return parcel


def announce(session: Session, deps: DomainDeps, spec: Announcement, *, caller: Caller) -> Parcel:
    """Register a parcel for a consenting, active recipient (courier or carrier API)."""
    get_carrier(session, spec.carrier_id)
    _check_recipient(get_recipient(session, spec.recipient_id))
    if spec.site_id is not None and session.get(Site, spec.site_id) is None:
        raise NotFound(f"site {spec.site_id} not found")
    _check_unique(session, spec.carrier_id, spec.tracking_number)
    now = deps.clock()
    parcel = _new_parcel(session, spec, now)
    session.add(parcel)
    session.flush()
    record_step(session, parcel, None, S.announced, caller=caller, now=now)
    audit(session, deps, action="parcel.announced", caller=caller, target=parcel_target(parcel))
    return parcel


# --- reserve and deposit ---------------------------------------------------------------------


def reserve(
    session: Session, deps: DomainDeps, *, parcel_id: int, cabinet_id: int, caller: Caller
) -> Parcel:
    """Hold the smallest fitting free door of ``cabinet_id`` for the parcel for a limited time."""
    parcel = get_parcel(session, parcel_id, lock=True)
    ensure_can_move(parcel, S.reserved)
    cabinet = get_cabinet(session, cabinet_id)
    if parcel.site_id is not None and parcel.site_id != cabinet.site_id:
        raise InvalidField("cabinet_id", "the cabinet is not at the parcel's site")
    recipient = get_recipient(session, parcel.recipient_id)
    rank = allocation.required_rank(session, parcel)
    door = allocation.allocate_door(session, cabinet=cabinet, recipient=recipient, min_rank=rank)
    now = deps.clock()
    parcel.site_id, parcel.cabinet_id, parcel.door_id = cabinet.site_id, cabinet.id, door.id
    parcel.reserved_until = now + timedelta(minutes=deps.settings.reservation_minutes)
    move(session, deps, parcel, S.reserved, caller=caller, now=now)
    return parcel


def _door_of(session: Session, parcel: Parcel) -> Door:
    door = session.get(Door, parcel.door_id) if parcel.door_id is not None else None
    if door is None:
        raise Conflict(f"parcel {parcel.id} holds no door")
    return door


def contact_of(recipient: Recipient) -> RecipientContact:
    assert recipient.id is not None
    return RecipientContact(
        recipient_id=recipient.id,
        name=recipient.name,
        email=recipient.email,
        phone=recipient.phone,
        language=str(recipient.language),
    )


@dataclass(frozen=True, slots=True)
class _Place:
    site: Site
    cabinet: Cabinet
    door: Door


def _place_of(session: Session, parcel: Parcel) -> _Place:
    door = _door_of(session, parcel)
    cabinet = get_cabinet(session, door.cabinet_id)
    site = session.get(Site, cabinet.site_id)
    assert site is not None
    return _Place(site=site, cabinet=cabinet, door=door)


def _send_credentials(session: Session, deps: DomainDeps, parcel: Parcel, now: datetime) -> None:
    """Issue a new code and QR token and hand the plaintext to the notifier, and only to it."""
    assert parcel.id is not None
    assert parcel.pickup_deadline is not None
    place = _place_of(session, parcel)
    issued = credentials.issue_credentials(
        session,
        deps.pickup_hmac_key,
        parcel_id=parcel.id,
        cabinet_id=place.cabinet.id or 0,
        digits=deps.settings.pickup_code_digits,
        expires_at=parcel.pickup_deadline,
        now=now,
    )
    deps.notifier.pickup_ready(
        session,
        parcel_id=parcel.id,
        recipient=contact_of(get_recipient(session, parcel.recipient_id)),
        site_name=place.site.name,
        cabinet_name=place.cabinet.name,
        door_label=str(place.door.number),
        code=issued.code,
        qr_token=issued.qr_token,
        expires_at=parcel.pickup_deadline,
        site_timezone=place.site.timezone,
    )


def carrier_event(session: Session, deps: DomainDeps, parcel: Parcel, event_type: str) -> None:
    carrier = get_carrier(session, parcel.carrier_id)
    data = {
        "parcel_id": parcel.id,
        "tracking_number": parcel.tracking_number,
        "state": parcel.state,
    }
    deps.notifier.carrier_event(
        session,
        carrier_id=parcel.carrier_id,
        webhook_url=carrier.webhook_url,
        event_type=event_type,
        data=data,
        parcel_id=parcel.id,
    )


def record_deposit(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    door_number: int | None,
    parcel_id: int,
    caller: Caller,
    device_time: datetime | None = None,
) -> Parcel:
    """The door closed with the parcel inside: issue credentials, notify, tell the carrier.

    Used by the courier API and by the cabinet link (``device_time`` is the
    cabinet's clock when it saw the door close; the server's time is recorded too).
    """
    parcel = get_parcel(session, parcel_id, lock=True)
    ensure_can_move(parcel, S.deposited)
    door = _door_of(session, parcel)
    if parcel.cabinet_id != cabinet_id or (door_number is not None and door.number != door_number):
        raise Conflict(
            f"parcel {parcel_id} is reserved for door {door.number} of cabinet {parcel.cabinet_id}"
        )
    allocation.mark_occupied(session, door.id or 0)
    now = deps.clock()
    parcel.deposited_at = now
    parcel.pickup_deadline = now + timedelta(hours=deps.settings.pickup_hours)
    move(session, deps, parcel, S.deposited, caller=caller, now=now, device_time=device_time)
    _send_credentials(session, deps, parcel, now)
    move(session, deps, parcel, S.notified, caller=SYSTEM, now=now, reason="pickup notice queued")
    carrier_event(session, deps, parcel, "parcel.deposited")
    return parcel


# --- cancel and return path ------------------------------------------------------------------


def _leave_door(session: Session, deps: DomainDeps, parcel: Parcel, now: datetime) -> None:
    """After a final move: void any credentials and free the parcel's share of its door."""
    assert parcel.id is not None
    credentials.void_credentials(session, parcel.id, now=now)
    # A voided code must not reach the recipient later from the outbox.
    deps.notifier.cancel_pending(session, parcel_id=parcel.id)
    if parcel.door_id is not None:
        allocation.release_door(session, parcel.door_id)


def cancel(
    session: Session,
    deps: DomainDeps,
    *,
    parcel_id: int,
    caller: Caller,
    reason: str | None,
    as_operator: bool,
) -> Parcel:
    """Cancel before deposit (anyone allowed to manage the parcel) or after (operators only)."""
    parcel = get_parcel(session, parcel_id, lock=True)
    ensure_can_move(parcel, S.cancelled)
    if parcel.state in CANCEL_NEEDS_OPERATOR and not as_operator:
        raise PermissionDenied("only an operator may cancel a parcel that is in a locker")
    held = parcel.state in HOLDS_DOOR
    allocation.lock_doors(session, [parcel.door_id] if held else [])
    now = deps.clock()
    move(session, deps, parcel, S.cancelled, caller=caller, now=now, reason=reason)
    if held:
        _leave_door(session, deps, parcel, now)
    return parcel


def collect_for_return(
    session: Session, deps: DomainDeps, *, parcel_id: int, caller: Caller
) -> Parcel:
    """A courier takes an expired parcel out of its door to send it back."""
    parcel = get_parcel(session, parcel_id, lock=True)
    ensure_can_move(parcel, S.collected_for_return)
    allocation.lock_doors(session, [parcel.door_id])
    now = deps.clock()
    move(session, deps, parcel, S.collected_for_return, caller=caller, now=now)
    _leave_door(session, deps, parcel, now)
    carrier_event(session, deps, parcel, "parcel.collected_for_return")
    return parcel


def mark_returned(session: Session, deps: DomainDeps, *, parcel_id: int, caller: Caller) -> Parcel:
    parcel = get_parcel(session, parcel_id, lock=True)
    move(session, deps, parcel, S.returned, caller=caller, now=deps.clock())
    carrier_event(session, deps, parcel, "parcel.returned")
    return parcel


# --- extensions and re-issue -----------------------------------------------------------------


def _require_collectable(parcel: Parcel, what: str) -> None:
    if parcel.state not in COLLECTABLE:
        raise Conflict(f"{what} is possible only while the parcel waits in a locker")


@dataclass(frozen=True, slots=True)
class ExtensionOutlook:
    """Whether the recipient may extend now and, if not, why: ``not_waiting`` (not in a
    locker), ``none_allowed`` (the site allows no extension), ``used`` (already extended),
    ``too_early`` (possible from ``opens_at``). ``hours`` is one extension's length."""

    refusal: str | None
    hours: int
    opens_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def recipient_extension_outlook(parcel: Parcel, rules: Settings, now: datetime) -> ExtensionOutlook:
    """The recipient-extension rule, asked without extending (a page shows the button)."""
    hours = rules.max_extension_hours
    if parcel.state not in COLLECTABLE or parcel.pickup_deadline is None:
        return ExtensionOutlook("not_waiting", hours)
    if rules.max_extensions == 0:
        return ExtensionOutlook("none_allowed", hours)
    if parcel.extensions_used >= rules.max_extensions:
        return ExtensionOutlook("used", hours)
    opens_at = parcel.pickup_deadline - timedelta(hours=rules.extension_window_hours)
    if now < opens_at:
        return ExtensionOutlook("too_early", hours, opens_at)
    return ExtensionOutlook(None, hours)


def _check_recipient_extension(parcel: Parcel, deps: DomainDeps, hours: int, now: datetime) -> None:
    rules = deps.settings
    if hours > rules.max_extension_hours:
        raise InvalidField("hours", f"at most {rules.max_extension_hours} hours per extension")
    refusal = recipient_extension_outlook(parcel, rules, now).refusal
    if refusal in ("none_allowed", "used"):
        raise Conflict(f"the parcel was already extended {parcel.extensions_used} time(s)")
    if refusal == "too_early":
        window = rules.extension_window_hours
        raise InvalidField("hours", f"extensions are possible only in the last {window} hours")


def _push_deadline(
    session: Session,
    deps: DomainDeps,
    parcel: Parcel,
    hours: int,
    *,
    caller: Caller,
    now: datetime,
    reason: str,
    details: dict[str, object],
) -> None:
    assert parcel.id is not None
    assert parcel.pickup_deadline is not None
    parcel.pickup_deadline = parcel.pickup_deadline + timedelta(hours=hours)
    parcel.reminder_sent_at = None  # a new deadline earns a new reminder
    parcel.updated_at = now
    session.add(parcel)
    credentials.move_expiry(session, parcel.id, expires_at=parcel.pickup_deadline)
    record_step(session, parcel, parcel.state, parcel.state, caller=caller, now=now, reason=reason)
    audit(
        session,
        deps,
        action="parcel.extended",
        caller=caller,
        target=parcel_target(parcel),
        reason=reason,
        details={"hours": hours, **details},
    )


def extend_for_recipient(
    session: Session, deps: DomainDeps, *, parcel_id: int, hours: int, caller: Caller
) -> Parcel:
    """The recipient's own extension: only near the deadline, limited in count and length."""
    parcel = get_parcel(session, parcel_id, lock=True)
    _require_collectable(parcel, "an extension")
    now = deps.clock()
    _check_recipient_extension(parcel, deps, hours, now)
    parcel.extensions_used += 1
    _push_deadline(
        session,
        deps,
        parcel,
        hours,
        caller=caller,
        now=now,
        reason=f"extended by {hours} h",
        details={"site_wide": False},
    )
    return parcel


def extend_site(
    session: Session, deps: DomainDeps, *, site_id: int, hours: int, reason: str, caller: Caller
) -> list[int]:
    """Operator-wide extension (storm, building closure): every waiting parcel at the site.

    Audited once for the site and once per parcel; does not use up recipients' extensions.
    """
    if session.get(Site, site_id) is None:
        raise NotFound(f"site {site_id} not found")
    query = (
        select(Parcel)
        .where(Parcel.site_id == site_id, col(Parcel.state).in_(COLLECTABLE))
        .order_by(col(Parcel.id))
        .with_for_update()
    )
    parcels = list(session.exec(query).all())  # all locked before the first audit entry
    now = deps.clock()
    for parcel in parcels:
        _push_deadline(
            session,
            deps,
            parcel,
            hours,
            caller=caller,
            now=now,
            reason=reason,
            details={"site_wide": True},
        )
    ids = [parcel.id for parcel in parcels if parcel.id is not None]
    audit(
        session,
        deps,
        action="site.parcels_extended",
        caller=caller,
        target=Target(site_id=site_id),
        reason=reason,
        details={"hours": hours, "parcels": len(ids)},
    )
    return ids


def reissue_credentials(
    session: Session, deps: DomainDeps, *, parcel_id: int, caller: Caller
) -> Parcel:
    """Void the parcel's codes and send new ones (lost message, suspected leak)."""
    parcel = get_parcel(session, parcel_id, lock=True)
    _require_collectable(parcel, "re-issuing credentials")
    assert parcel.id is not None
    now = deps.clock()
    credentials.void_credentials(session, parcel.id, now=now)
    deps.notifier.cancel_pending(session, parcel_id=parcel.id, events=VOIDED_BY_REISSUE)
    _send_credentials(session, deps, parcel, now)
    audit(
        session,
        deps,
        action="parcel.credentials_reissued",
        caller=caller,
        target=parcel_target(parcel),
    )
    return parcel


# --- sweeps ----------------------------------------------------------------------------------


def _due(session: Session, *conditions: object) -> list[Parcel]:
    query = select(Parcel).where(*conditions).order_by(col(Parcel.id)).with_for_update()  # type: ignore[arg-type]
    return list(session.exec(query).all())


def release_expired_reservations(session: Session, deps: DomainDeps, *, now: datetime) -> int:
    """Reservations not used in time go back to ``announced`` and free their doors."""
    parcels = _due(session, Parcel.state == S.reserved, col(Parcel.reserved_until) <= now)
    allocation.lock_doors(session, [parcel.door_id for parcel in parcels])
    for parcel in parcels:
        door_id = parcel.door_id
        move(
            session, deps, parcel, S.announced, caller=SYSTEM, now=now, reason="reservation expired"
        )
        parcel.cabinet_id = parcel.door_id = parcel.reserved_until = None
        session.add(parcel)
        if door_id is not None:
            allocation.release_door(session, door_id)
    return len(parcels)


def expire_overdue(session: Session, deps: DomainDeps, *, now: datetime) -> int:
    """Parcels past their pickup deadline become ``expired`` (they stay in the door)."""
    parcels = _due(session, col(Parcel.state).in_(COLLECTABLE), col(Parcel.pickup_deadline) <= now)
    for parcel in parcels:
        move(session, deps, parcel, S.expired, caller=SYSTEM, now=now, reason="pickup deadline")
        place = _place_of(session, parcel)
        deps.notifier.expired(
            session,
            parcel_id=parcel.id or 0,
            recipient=contact_of(get_recipient(session, parcel.recipient_id)),
            site_name=place.site.name,
            cabinet_name=place.cabinet.name,
            expired_at=now,
            door_label=str(place.door.number),
            site_timezone=place.site.timezone,
        )
        carrier_event(session, deps, parcel, "parcel.expired")
    return len(parcels)


def send_due_reminders(session: Session, deps: DomainDeps, *, now: datetime) -> int:
    """One reminder per deadline, ``reminder_hours_before_expiry`` before it."""
    ahead = now + timedelta(hours=deps.settings.reminder_hours_before_expiry)
    parcels = _due(
        session,
        col(Parcel.state).in_(COLLECTABLE),
        col(Parcel.reminder_sent_at).is_(None),
        col(Parcel.pickup_deadline) <= ahead,
        col(Parcel.pickup_deadline) > now,
    )
    for parcel in parcels:
        _remind(session, deps, parcel, now)
    return len(parcels)


def _remind(session: Session, deps: DomainDeps, parcel: Parcel, now: datetime) -> None:
    assert parcel.pickup_deadline is not None
    place = _place_of(session, parcel)
    deps.notifier.reminder(
        session,
        parcel_id=parcel.id or 0,
        recipient=contact_of(get_recipient(session, parcel.recipient_id)),
        site_name=place.site.name,
        cabinet_name=place.cabinet.name,
        expires_at=parcel.pickup_deadline,
        door_label=str(place.door.number),
        site_timezone=place.site.timezone,
    )
    parcel.reminder_sent_at = now
    session.add(parcel)
    audit(
        session,
        deps,
        action="parcel.reminder_sent",
        caller=SYSTEM,
        target=parcel_target(parcel),
        outcome="success",
    )
