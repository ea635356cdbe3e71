"""``/api/v1/couriers``: couriers of carriers; the courier code is write-only (kept hashed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from locker_server.api.deps import CurrentPrincipal, Page, PageDep, SessionDep, require_roles
from locker_server.api.paging import page_of
from locker_server.api.routes._domain import CARRIER_BOUND, CallerDep, DomainDepsDep
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.errors import PermissionDenied
from locker_server.models import CourierCreate, CourierPublic
from locker_server.services import directory
from locker_server.services.listing import paged

router = APIRouter(prefix="/api/v1/couriers", tags=["couriers"])

Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("")
def list_couriers(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    carrier_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Page[CourierPublic]:
    """Couriers (admins, operators); couriers and carrier keys see only their own carrier's."""
    if principal.role in CARRIER_BOUND:
        carrier_id = principal.carrier_id if principal.carrier_id is not None else -1
    elif principal.role not in (Role.admin, Role.operator):
        raise PermissionDenied(f"role {principal.role.value} may not read couriers")
    query = directory.couriers_query(carrier_id=carrier_id)
    rows, total = paged(session, query, limit=page.limit, offset=page.offset)
    return page_of(rows, total, page, CourierPublic.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_courier(
    body: CourierCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    _principal: Admin,
) -> CourierPublic:
    """Register a courier with the code they will type at cabinets (stored only hashed)."""
    return CourierPublic.model_validate(
        directory.create_courier(session, deps, body, caller=caller)
    )
