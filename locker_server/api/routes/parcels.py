"""``/api/v1/parcels``: announce, list, and drive each parcel through its lifecycle.

Couriers and carrier API keys act only on their own carrier's parcels; operators and
security staff only on parcels at their sites. Anything else answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from locker_server.api.deps import (
    MAX_ID,
    IdPath,
    LinkPublisherDep,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.api.paging import page_of
from locker_server.api.routes._domain import (
    CARRIER_BOUND,
    STAFF,
    CallerDep,
    DomainDepsDep,
    ensure_parcel_visible,
    own_carrier,
    site_scope,
)
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.errors import NotFound
from locker_server.models import (
    DepositRequest,
    Door,
    ExtendRequest,
    Parcel,
    ParcelAnnounce,
    ParcelPublic,
    ParcelState,
    ParcelTransition,
    ParcelTransitionPublic,
    ReasonRequest,
    ReserveRequest,
    SizeClass,
)
from locker_server.services import cabinet_sync, parcels
from locker_server.services.cabinets import get_cabinet
from locker_server.services.context import DomainDeps
from locker_server.services.errors import InvalidField
from locker_server.services.listing import paged
from locker_server.services.outbound import Publisher

router = APIRouter(prefix="/api/v1/parcels", tags=["parcels"])

Handler = Annotated[Principal, Depends(require_roles(Role.operator, Role.courier, Role.carrier))]
Reader = Annotated[
    Principal, Depends(require_roles(Role.operator, Role.security, Role.courier, Role.carrier))
]
Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def parcel_public(session: Session, parcel: Parcel) -> ParcelPublic:
    size = session.get(SizeClass, parcel.size_class_id) if parcel.size_class_id else None
    door = session.get(Door, parcel.door_id) if parcel.door_id else None
    extra = {"size": size.code if size else None, "door_number": door.number if door else None}
    return ParcelPublic.model_validate(parcel.model_dump() | extra)


def _visible(session: Session, principal: Principal, parcel_id: int) -> Parcel:
    parcel = parcels.get_parcel(session, parcel_id)
    ensure_parcel_visible(principal, parcel)
    return parcel


def _announcement(body: ParcelAnnounce, principal: Principal) -> parcels.Announcement:
    carrier_id = body.carrier_id
    if principal.role in CARRIER_BOUND:
        if carrier_id is not None and carrier_id != own_carrier(principal):
            raise NotFound(f"carrier {carrier_id} not found")
        carrier_id = own_carrier(principal)
    if carrier_id is None:
        raise InvalidField("carrier_id", "name the carrier of the parcel")
    scope = site_scope(principal)
    if principal.role not in CARRIER_BOUND and scope is not None:
        if body.site_id is None:
            raise InvalidField("site_id", "a site-limited account must name one of its sites")
        if body.site_id not in scope:
            raise NotFound(f"site {body.site_id} not found")
    fields = body.model_dump(exclude={"carrier_id"})
    return parcels.Announcement(carrier_id=carrier_id, **fields)


@router.post("", status_code=status.HTTP_201_CREATED)
def announce_parcel(
    body: ParcelAnnounce,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
) -> ParcelPublic:
    """Register a parcel for a recipient who consented to locker delivery."""
    parcel = parcels.announce(session, deps, _announcement(body, principal), caller=caller)
    return parcel_public(session, parcel)


@router.get("")
def list_parcels(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    state: ParcelState | None = None,
    site_id: OptionalId = None,
    cabinet_id: OptionalId = None,
    recipient_id: OptionalId = None,
    tracking_number: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Exactly this number")
    ] = None,
    search: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="A part of the tracking number (any case)"),
    ] = None,
) -> Page[ParcelPublic]:
    """Parcels the caller may see, filtered and searched.

    Staff see their sites' parcels; couriers and carrier keys their carrier's.
    """
    query = select(Parcel).order_by(col(Parcel.id))
    if search:
        query = query.where(col(Parcel.tracking_number).icontains(search, autoescape=True))
    filters = {
        "state": state,
        "site_id": site_id,
        "cabinet_id": cabinet_id,
        "recipient_id": recipient_id,
        "tracking_number": tracking_number,
    }
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(Parcel, name) == value)
    rows, total = paged(session, _scoped(query, principal), limit=page.limit, offset=page.offset)
    return page_of(rows, total, page, lambda parcel: parcel_public(session, parcel))


def _scoped(query: SelectOfScalar[Parcel], principal: Principal) -> SelectOfScalar[Parcel]:
    if principal.role in CARRIER_BOUND:
        return query.where(Parcel.carrier_id == (principal.carrier_id or -1))
    scope = site_scope(principal)
    if scope is not None:
        return query.where(col(Parcel.site_id).in_(scope))
    return query


@router.get("/{parcel_id}")
def get_parcel(parcel_id: IdPath, session: SessionDep, principal: Reader) -> ParcelPublic:
    """One parcel; one the caller may not see answers 404 like an unknown one."""
    return parcel_public(session, _visible(session, principal, parcel_id))


@router.get("/{parcel_id}/history")
def parcel_history(
    parcel_id: IdPath, session: SessionDep, principal: Reader
) -> list[ParcelTransitionPublic]:
    """Every recorded transition of the parcel: from, to, who, when, why."""
    _visible(session, principal, parcel_id)
    rows = session.exec(
        select(ParcelTransition)
        .where(ParcelTransition.parcel_id == parcel_id)
        .order_by(col(ParcelTransition.id))
    ).all()
    return [ParcelTransitionPublic.model_validate(row) for row in rows]


@router.post("/{parcel_id}/reserve")
def reserve_parcel(
    parcel_id: IdPath,
    body: ReserveRequest,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
    publisher: LinkPublisherDep,
) -> ParcelPublic:
    """Hold the smallest fitting free door of the cabinet for a limited time."""
    _visible(session, principal, parcel_id)
    if principal.role not in CARRIER_BOUND:
        get_cabinet(session, body.cabinet_id, site_ids=site_scope(principal))
    parcel = parcels.reserve(
        session, deps, parcel_id=parcel_id, cabinet_id=body.cabinet_id, caller=caller
    )
    _tell_cabinet_its_reservations(session, deps, publisher, body.cabinet_id)
    return parcel_public(session, parcel)


def _tell_cabinet_its_reservations(
    session: Session, deps: DomainDeps, publisher: Publisher | None, cabinet_id: int
) -> None:
    """Commit, then send the cabinet its reserved doors now, so the courier can deposit
    there even if its link drops before they arrive. Without a link in this process, or
    if sending fails, the reservation stands and the cabinet gets it at its next connect
    (or with the courier's next request at its kiosk)."""
    session.commit()
    if publisher is not None:
        cabinet_sync.try_send_reservations(
            session, publisher, keys=deps.keys, cabinet_id=cabinet_id
        )


@router.post("/{parcel_id}/deposit")
def deposit_parcel(
    parcel_id: IdPath,
    body: DepositRequest,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
) -> ParcelPublic:
    """The courier closed the door with the parcel inside: the recipient is notified."""
    parcel = _visible(session, principal, parcel_id)
    parcel = parcels.record_deposit(
        session,
        deps,
        cabinet_id=parcel.cabinet_id or 0,
        door_number=body.door_number,
        parcel_id=parcel_id,
        caller=caller,
    )
    return parcel_public(session, parcel)


@router.post("/{parcel_id}/cancel")
def cancel_parcel(
    parcel_id: IdPath,
    body: ReasonRequest,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
    publisher: LinkPublisherDep,
) -> ParcelPublic:
    """Cancel before deposit; after deposit only operators (who take the parcel out)."""
    before = _visible(session, principal, parcel_id)
    held_door_at = before.cabinet_id if before.state == ParcelState.reserved else None
    parcel = parcels.cancel(
        session,
        deps,
        parcel_id=parcel_id,
        caller=caller,
        reason=body.reason,
        as_operator=principal.role in (Role.admin, Role.operator),
    )
    if held_door_at is not None:  # the cabinet must stop taking it offline
        _tell_cabinet_its_reservations(session, deps, publisher, held_door_at)
    return parcel_public(session, parcel)


@router.post("/{parcel_id}/extend")
def extend_parcel(
    parcel_id: IdPath,
    body: ExtendRequest,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> ParcelPublic:
    """The recipient's extension (asked through staff), within the extension rules."""
    _visible(session, principal, parcel_id)
    parcel = parcels.extend_for_recipient(
        session, deps, parcel_id=parcel_id, hours=body.hours, caller=caller
    )
    return parcel_public(session, parcel)


@router.post("/{parcel_id}/reissue")
def reissue_parcel_credentials(
    parcel_id: IdPath,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> ParcelPublic:
    """Void the pickup code and QR token and send new ones to the recipient."""
    _visible(session, principal, parcel_id)
    parcel = parcels.reissue_credentials(session, deps, parcel_id=parcel_id, caller=caller)
    return parcel_public(session, parcel)


@router.post("/{parcel_id}/collect-for-return")
def collect_parcel_for_return(
    parcel_id: IdPath,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
) -> ParcelPublic:
    """A courier takes an uncollected (expired) parcel out of its door to return it."""
    _visible(session, principal, parcel_id)
    parcel = parcels.collect_for_return(session, deps, parcel_id=parcel_id, caller=caller)
    return parcel_public(session, parcel)


@router.post("/{parcel_id}/return")
def return_parcel(
    parcel_id: IdPath,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Handler,
) -> ParcelPublic:
    """Record that the parcel went back to the carrier: the end of its life at the locker."""
    _visible(session, principal, parcel_id)
    parcel = parcels.mark_returned(session, deps, parcel_id=parcel_id, caller=caller)
    return parcel_public(session, parcel)
