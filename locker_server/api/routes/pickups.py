"""``/api/v1/pickups``: a pickup attempt at a cabinet (the cabinet itself, or staff).

A refused attempt still leaves its trace: the failure counter and the ``pickup.attempt``
audit entry are committed before the refusal is raised (otherwise the request's
rollback would erase them and the lockout could never trigger).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from locker_server.api.deps import SessionDep, require_roles
from locker_server.api.routes._domain import CallerDep, DomainDepsDep, site_scope
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.errors import NotFound
from locker_server.models import PickupAttempt, PickupGranted
from locker_server.services.cabinets import get_cabinet
from locker_server.services.pickup import attempt_pickup

router = APIRouter(prefix="/api/v1/pickups", tags=["pickups"])

PickupStation = Annotated[Principal, Depends(require_roles(Role.cabinet, Role.operator))]


def _check_station(session: SessionDep, principal: Principal, cabinet_id: int) -> None:
    if principal.kind == "cabinet":
        if principal.id != cabinet_id:  # a cabinet checks codes for itself only
            raise NotFound(f"cabinet {cabinet_id} not found")
        return
    get_cabinet(session, cabinet_id, site_ids=site_scope(principal))


@router.post("")
def attempt(
    body: PickupAttempt,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: PickupStation,
) -> PickupGranted:
    """Check a code or QR token; answer the door(s) to open. Refusals look alike."""
    _check_station(session, principal, body.cabinet_id)
    decision = attempt_pickup(
        session,
        deps,
        cabinet_id=body.cabinet_id,
        code=body.code,
        qr_token=body.qr_token,
        door_number=body.door_number,
        caller=caller,
    )
    session.commit()
    decision.raise_if_refused()
    return PickupGranted(
        cabinet_id=decision.cabinet_id,
        door_numbers=list(decision.door_numbers),
        parcel_ids=list(decision.parcel_ids),
    )
