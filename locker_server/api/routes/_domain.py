"""Shared plumbing of the domain routers (sites, cabinets, parcels, recipients, carriers,
couriers, pickups): the services' dependencies from ``app.state``, the audit caller of a
request, and the visibility rules.

Visibility: an object outside a principal's scope answers 404, exactly like an object
that does not exist, so ids cannot be enumerated across sites or carriers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from locker_server.api.deps import ClientContext, CurrentPrincipal
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.auth.users import alarm_contacts
from locker_server.errors import NotFound, PermissionDenied
from locker_server.models import Parcel
from locker_server.services import Caller, DomainDeps


def get_domain_deps(request: Request) -> DomainDeps:
    state = request.app.state
    return DomainDeps(
        settings=state.settings, keys=state.keys, audit=state.audit, notifier=state.notifier,
        staff=alarm_contacts,
    )  # fmt: skip


def get_caller(principal: CurrentPrincipal, client: ClientContext) -> Caller:
    return Caller(actor=principal.actor, channel=client.channel, source=client.source)


DomainDepsDep = Annotated[DomainDeps, Depends(get_domain_deps)]
CallerDep = Annotated[Caller, Depends(get_caller)]

#: Roles that manage the physical installation (admin always passes ``require_roles``).
STAFF = (Role.operator,)
#: Staff plus security staff, who read but change nothing.
READERS = (Role.operator, Role.security)
#: Carrier-bound principals: a courier user or a carrier's API key.
CARRIER_BOUND = frozenset({Role.courier, Role.carrier})


def site_scope(principal: Principal) -> frozenset[int] | None:
    return None if principal.role is Role.admin else principal.site_ids


def require_unscoped(principal: Principal) -> None:
    """Creating new top-level objects is for principals not limited to some sites."""
    if principal.role is not Role.admin and principal.site_ids is not None:
        raise PermissionDenied("a site-limited account cannot create sites")


def own_carrier(principal: Principal) -> int:
    if principal.carrier_id is None:
        raise PermissionDenied("this account is not bound to a carrier")
    return principal.carrier_id


def can_see_parcel(principal: Principal, parcel: Parcel) -> bool:
    if principal.role is Role.admin:
        return True
    if principal.role in CARRIER_BOUND:
        return parcel.carrier_id == principal.carrier_id
    if principal.role in (Role.operator, Role.security):
        if principal.site_ids is None:
            return True
        return parcel.site_id is not None and parcel.site_id in principal.site_ids
    return False


def ensure_parcel_visible(principal: Principal, parcel: Parcel) -> None:
    if not can_see_parcel(principal, parcel):
        raise NotFound(f"parcel {parcel.id} not found")
