"""``/api/v1/carriers``: carriers (admins manage them; couriers and API keys see their own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from locker_server.api.deps import (
    CurrentPrincipal,
    IdPath,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.api.paging import page_of
from locker_server.api.routes._domain import CARRIER_BOUND, CallerDep, DomainDepsDep
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.errors import NotFound, PermissionDenied
from locker_server.models import CarrierCreate, CarrierPublic, CarrierUpdate
from locker_server.services import directory
from locker_server.services.listing import paged

router = APIRouter(prefix="/api/v1/carriers", tags=["carriers"])

Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


def _visible_carrier(principal: Principal) -> int | None:
    """``None`` = every carrier; a carrier id for carrier-bound principals."""
    if principal.role in CARRIER_BOUND:
        return principal.carrier_id if principal.carrier_id is not None else -1
    if principal.role in (Role.admin, Role.operator):
        return None
    raise PermissionDenied(f"role {principal.role.value} may not read carriers")


@router.get("")
def list_carriers(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep
) -> Page[CarrierPublic]:
    """Carriers (a courier or carrier key sees only its own)."""
    query = directory.carriers_query(carrier_id=_visible_carrier(principal))
    rows, total = paged(session, query, limit=page.limit, offset=page.offset)
    return page_of(rows, total, page, CarrierPublic.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_carrier(
    body: CarrierCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Admin,
) -> CarrierPublic:
    """Add a carrier (admins, operators)."""
    return CarrierPublic.model_validate(
        directory.create_carrier(session, deps, body, caller=caller)
    )


@router.get("/{carrier_id}")
def get_carrier(
    carrier_id: IdPath, session: SessionDep, principal: CurrentPrincipal
) -> CarrierPublic:
    """One carrier; another carrier's answers 404 to couriers and carrier keys."""
    visible = _visible_carrier(principal)
    if visible is not None and visible != carrier_id:
        raise NotFound(f"carrier {carrier_id} not found")
    return CarrierPublic.model_validate(directory.get_carrier(session, carrier_id))


@router.patch("/{carrier_id}")
def update_carrier(
    carrier_id: IdPath,
    body: CarrierUpdate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Admin,
) -> CarrierPublic:
    """Rename a carrier or change its webhook URL (null clears it)."""
    carrier = directory.update_carrier(session, deps, carrier_id, body, caller=caller)
    return CarrierPublic.model_validate(carrier)
