"""``/api/v1/sites``: sites, and the operator-wide extension of every waiting parcel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from locker_server.api.deps import IdPath, Page, PageDep, SessionDep, require_roles
from locker_server.api.paging import slice_page
from locker_server.api.routes._domain import (
    READERS,
    STAFF,
    CallerDep,
    DomainDepsDep,
    require_unscoped,
    site_scope,
)
from locker_server.auth.principal import Principal
from locker_server.models import SiteCreate, SiteExtendRequest, SitePublic, SiteUpdate
from locker_server.services import layout
from locker_server.services.parcels import extend_site

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])

Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
Reader = Annotated[Principal, Depends(require_roles(*READERS))]


@router.get("")
def list_sites(session: SessionDep, principal: Reader, page: PageDep) -> Page[SitePublic]:
    """Sites the caller may see (operators, security staff; a site-limited account: its own)."""
    sites = layout.list_sites(session, site_ids=site_scope(principal))
    return slice_page(sites, page, SitePublic.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_site(
    body: SiteCreate, session: SessionDep, deps: DomainDepsDep, caller: CallerDep, principal: Staff
) -> SitePublic:
    """Add a site (operators not limited to sites, admins). Audited as `config.site_created`."""
    require_unscoped(principal)
    return SitePublic.model_validate(layout.create_site(session, deps, body, caller=caller))


@router.get("/{site_id}")
def get_site(site_id: IdPath, session: SessionDep, principal: Reader) -> SitePublic:
    """One site; a site outside the caller's scope answers 404 like an unknown one."""
    site = layout.get_site(session, site_id, site_ids=site_scope(principal))
    return SitePublic.model_validate(site)


@router.patch("/{site_id}")
def update_site(
    site_id: IdPath,
    body: SiteUpdate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> SitePublic:
    """Change name, time zone or address (operators, admins); only the fields sent change."""
    site = layout.update_site(
        session, deps, site_id, body, caller=caller, site_ids=site_scope(principal)
    )
    return SitePublic.model_validate(site)


@router.post("/{site_id}/extend-parcels")
def extend_site_parcels(
    site_id: IdPath,
    body: SiteExtendRequest,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> dict[str, list[int]]:
    """Storm, building closure: push the deadline of every waiting parcel at the site."""
    layout.get_site(session, site_id, site_ids=site_scope(principal))
    ids = extend_site(
        session, deps, site_id=site_id, hours=body.hours, reason=body.reason, caller=caller
    )
    return {"extended_parcel_ids": ids}
