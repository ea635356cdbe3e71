"""``/api/v1/cabinets``: cabinets, their doors, door service state and remote opens.

A remote open is a signed command sent over the cabinet link
(:mod:`locker_server.services.commands`): 202 with the command to follow at
``/api/v1/cabinets/{cabinet_id}/commands/{command_id}``; 503 ``link_unavailable`` (the
command is recorded as failed) when this server runs no link; 409
``remote_open_disabled`` while the operator's kill switch is on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from locker_server.api.deps import (
    AuditDep,
    IdPath,
    KeysDep,
    LinkPublisherDep,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.api.routes._domain import READERS, STAFF, CallerDep, DomainDepsDep, site_scope
from locker_server.auth.principal import Principal
from locker_server.models import (
    Cabinet,
    CabinetCreate,
    CabinetLink,
    CabinetLinkPublic,
    CabinetPublic,
    CabinetUpdate,
    Door,
    DoorCreate,
    DoorPublic,
    DoorUpdate,
    LinkCommandPublic,
    RemoteOpenRequest,
    RemoteOpenSwitch,
    RemoteOpenSwitchPublic,
)
from locker_server.services import cabinets as cabinet_service
from locker_server.services import commands, layout
from locker_server.services.presence import links_of

router = APIRouter(prefix="/api/v1/cabinets", tags=["cabinets"])

Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
Reader = Annotated[Principal, Depends(require_roles(*READERS))]


class CabinetWithLinkPublic(CabinetPublic, CabinetLinkPublic):
    """A cabinet as the API shows it: its configuration and its link status."""


def _with_link(cabinet: Cabinet, link: CabinetLink | None) -> CabinetWithLinkPublic:
    public = CabinetPublic.model_validate(cabinet).model_dump()
    if link is not None:
        public |= {
            "online": link.online,
            "last_seen": link.last_seen,
            "connection": link.connection,
            "agent_version": link.agent_version,
        }
    return CabinetWithLinkPublic.model_validate(public)


def _cabinets_public(session: SessionDep, cabinets: list[Cabinet]) -> list[CabinetWithLinkPublic]:
    links = links_of(session, [cabinet.id for cabinet in cabinets if cabinet.id is not None])
    return [_with_link(cabinet, links.get(cabinet.id or 0)) for cabinet in cabinets]


def _doors_public(session: SessionDep, doors: list[Door]) -> list[DoorPublic]:
    codes = layout.size_codes(session)
    return [layout.door_public(door, codes[door.size_class_id]) for door in doors]


@router.get("")
def list_cabinets(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    site_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Page[CabinetWithLinkPublic]:
    """Cabinets the caller may see, with their link state (online, last seen, agent version)."""
    cabinets = list(layout.list_cabinets(session, site_ids=site_scope(principal), site_id=site_id))
    items = _cabinets_public(session, cabinets[page.offset : page.offset + page.limit])
    return Page(items=items, total=len(cabinets), limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_cabinet(
    body: CabinetCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> CabinetWithLinkPublic:
    """Add a cabinet to a site (operators, admins); its `code` is its machine id."""
    cabinet = layout.create_cabinet(
        session, deps, body, caller=caller, site_ids=site_scope(principal)
    )
    return _cabinets_public(session, [cabinet])[0]


@router.get("/{cabinet_id}")
def get_cabinet(
    cabinet_id: IdPath, session: SessionDep, principal: Reader
) -> CabinetWithLinkPublic:
    """One cabinet with its link state; outside the caller's scope it answers 404."""
    cabinet = cabinet_service.get_cabinet(session, cabinet_id, site_ids=site_scope(principal))
    return _cabinets_public(session, [cabinet])[0]


@router.patch("/{cabinet_id}")
def update_cabinet(
    cabinet_id: IdPath,
    body: CabinetUpdate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> CabinetWithLinkPublic:
    """Rename a cabinet, take it out of service or into maintenance (with a reason)."""
    cabinet = layout.update_cabinet(
        session, deps, cabinet_id, body, caller=caller, site_ids=site_scope(principal)
    )
    return _cabinets_public(session, [cabinet])[0]


@router.get("/{cabinet_id}/doors")
def list_doors(
    cabinet_id: IdPath, session: SessionDep, principal: Reader, page: PageDep
) -> Page[DoorPublic]:
    """The cabinet's doors: size, lock address, service state, reported state, occupancy."""
    doors = layout.list_doors(session, cabinet_id, site_ids=site_scope(principal))
    items = _doors_public(session, doors[page.offset : page.offset + page.limit])
    return Page(items=items, total=len(doors), limit=page.limit, offset=page.offset)


@router.post("/{cabinet_id}/doors", status_code=status.HTTP_201_CREATED)
def add_door(
    cabinet_id: IdPath,
    body: DoorCreate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> DoorPublic:
    """Add one door to a cabinet (operators, admins): number, size class, lock board and channel."""
    doors = layout.add_doors(
        session, deps, cabinet_id, [body], caller=caller, site_ids=site_scope(principal)
    )
    return _doors_public(session, doors)[0]


@router.patch("/{cabinet_id}/doors/{door_id}")
def update_door(
    cabinet_id: IdPath,
    door_id: IdPath,
    body: DoorUpdate,
    session: SessionDep,
    deps: DomainDepsDep,
    caller: CallerDep,
    principal: Staff,
) -> DoorPublic:
    """Take a door out of service (with a reason) or back in."""
    door = layout.update_door(
        session, deps, cabinet_id, door_id, body, caller=caller, site_ids=site_scope(principal)
    )
    return _doors_public(session, [door])[0]


@router.post("/{cabinet_id}/doors/{door_id}/open", status_code=status.HTTP_202_ACCEPTED)
def remote_open(
    cabinet_id: IdPath,
    door_id: IdPath,
    body: RemoteOpenRequest,
    session: SessionDep,
    publisher: LinkPublisherDep,
    keys: KeysDep,
    audit: AuditDep,
    caller: CallerDep,
    principal: Staff,
) -> LinkCommandPublic:
    """Send a signed open command to the cabinet; audited with the operator and reason."""
    door = layout.get_door(session, cabinet_id, door_id, site_ids=site_scope(principal))
    command = commands.issue_command(
        session,
        publisher,
        keys,
        cabinet_id=cabinet_id,
        action="open_door",
        door=door.number,
        reason=body.reason,
        caller=caller,
        audit=audit,
    )
    return LinkCommandPublic.model_validate(command)


@router.get("/{cabinet_id}/commands/{command_id}")
def get_command(
    cabinet_id: IdPath,
    command_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    session: SessionDep,
    principal: Reader,
) -> LinkCommandPublic:
    """Follow a command: created → sent → delivered → succeeded | failed | rejected | ..."""
    cabinet_service.get_cabinet(session, cabinet_id, site_ids=site_scope(principal))
    command = commands.get_command(session, cabinet_id=cabinet_id, command_id=command_id)
    return LinkCommandPublic.model_validate(command)


@router.put("/{cabinet_id}/remote-open")
def switch_remote_open(
    cabinet_id: IdPath,
    body: RemoteOpenSwitch,
    session: SessionDep,
    audit: AuditDep,
    caller: CallerDep,
    principal: Staff,
) -> RemoteOpenSwitchPublic:
    """The operator's kill switch for remote opening (pickup codes keep working)."""
    cabinet = cabinet_service.get_cabinet(session, cabinet_id, site_ids=site_scope(principal))
    control = commands.set_remote_open(
        session,
        audit,
        cabinet_id=cabinet_id,
        enabled=body.enabled,
        reason=body.reason,
        caller=caller,
    )
    return RemoteOpenSwitchPublic(
        cabinet_id=cabinet_id,
        remote_open_enabled=control.remote_open_enabled,
        site_remote_open_enabled=commands.site_remote_open_enabled(session, cabinet.site_id),
        remote_open_reason=control.remote_open_reason,
    )
