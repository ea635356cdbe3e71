"""The installation's layout: sites, cabinets and doors; every change audited as ``config.*``.

Listing functions take ``site_ids`` (``None`` = every site) so a site-limited principal
only ever sees its own sites; objects outside the scope are reported as not found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from locker_server.errors import Conflict, NotFound
from locker_server.models import (
    Cabinet,
    CabinetCreate,
    CabinetUpdate,
    Door,
    DoorCreate,
    DoorPublic,
    DoorUpdate,
    ServiceState,
    Site,
    SiteCreate,
    SiteUpdate,
    SizeClass,
)
from locker_server.services.allocation import size_class_by_code
from locker_server.services.cabinets import Scope, get_cabinet, in_scope
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.errors import InvalidField


def _flush_unique(session: Session, what: str) -> None:
    """Flush now so a duplicate becomes a clear ``Conflict`` instead of a failed commit.

    The session is unusable afterwards; the ``Conflict`` ends the request, which rolls back.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} already exists") from exc


def _changes(update: Any) -> dict[str, Any]:
    changes: dict[str, Any] = update.model_dump(exclude_unset=True)
    return changes


# --- sites -----------------------------------------------------------------------------------


def get_site(session: Session, site_id: int, *, site_ids: Scope = None) -> Site:
    site = session.get(Site, site_id)
    if site is None or not in_scope(site_id, site_ids):
        raise NotFound(f"site {site_id} not found")
    return site


def list_sites(session: Session, *, site_ids: Scope = None) -> list[Site]:
    query = select(Site).order_by(col(Site.id))
    if site_ids is not None:
        query = query.where(col(Site.id).in_(site_ids))
    return list(session.exec(query).all())


def create_site(session: Session, deps: DomainDeps, body: SiteCreate, *, caller: Caller) -> Site:
    site = Site.model_validate(body)
    session.add(site)
    session.flush()
    audit(
        session, deps, action="config.site_created", caller=caller, target=Target(site_id=site.id)
    )
    return site


def update_site(
    session: Session,
    deps: DomainDeps,
    site_id: int,
    body: SiteUpdate,
    *,
    caller: Caller,
    site_ids: Scope = None,
) -> Site:
    site = get_site(session, site_id, site_ids=site_ids)
    changes = _changes(body)
    site.sqlmodel_update(changes)
    session.add(site)
    audit(
        session,
        deps,
        action="config.site_updated",
        caller=caller,
        target=Target(site_id=site_id),
        details={"fields": sorted(changes)},
    )
    return site


# --- cabinets --------------------------------------------------------------------------------


def list_cabinets(
    session: Session, *, site_ids: Scope = None, site_id: int | None = None
) -> list[Cabinet]:
    query = select(Cabinet).order_by(col(Cabinet.id))
    if site_ids is not None:
        query = query.where(col(Cabinet.site_id).in_(site_ids))
    if site_id is not None:
        query = query.where(Cabinet.site_id == site_id)
    return list(session.exec(query).all())


def create_cabinet(
    session: Session,
    deps: DomainDeps,
    body: CabinetCreate,
    *,
    caller: Caller,
    site_ids: Scope = None,
) -> Cabinet:
    get_site(session, body.site_id, site_ids=site_ids)
    cabinet = Cabinet.model_validate(body)
    session.add(cabinet)
    _flush_unique(session, f"a cabinet with code {body.code}")
    audit(
        session,
        deps,
        action="config.cabinet_created",
        caller=caller,
        target=Target(site_id=cabinet.site_id, cabinet_id=cabinet.id),
        details={"code": cabinet.code},
    )
    return cabinet


def update_cabinet(
    session: Session,
    deps: DomainDeps,
    cabinet_id: int,
    body: CabinetUpdate,
    *,
    caller: Caller,
    site_ids: Scope = None,
) -> Cabinet:
    cabinet = get_cabinet(session, cabinet_id, site_ids=site_ids)
    changes = _changes(body)
    cabinet.sqlmodel_update(changes)
    session.add(cabinet)
    audit(
        session,
        deps,
        action="config.cabinet_updated",
        caller=caller,
        target=Target(site_id=cabinet.site_id, cabinet_id=cabinet_id),
        reason=cabinet.maintenance_reason if "maintenance" in changes else None,
        details={"fields": sorted(changes)},
    )
    return cabinet


# --- doors -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoorRange:
    first_number: int
    last_number: int
    size: str
    board: int
    first_lock: int
    accessible_height: bool = False


def door_public(door: Door, size_code: str) -> DoorPublic:
    return DoorPublic.model_validate(door.model_dump() | {"size": size_code})


def size_codes(session: Session) -> dict[int, str]:
    return {size.id: size.code for size in session.exec(select(SizeClass)).all() if size.id}


def get_door(session: Session, cabinet_id: int, door_id: int, *, site_ids: Scope = None) -> Door:
    get_cabinet(session, cabinet_id, site_ids=site_ids)
    door = session.get(Door, door_id)
    if door is None or door.cabinet_id != cabinet_id:
        raise NotFound(f"door {door_id} not found in cabinet {cabinet_id}")
    return door


def list_doors(session: Session, cabinet_id: int, *, site_ids: Scope = None) -> list[Door]:
    get_cabinet(session, cabinet_id, site_ids=site_ids)
    query = select(Door).where(Door.cabinet_id == cabinet_id).order_by(col(Door.number))
    return list(session.exec(query).all())


def _new_doors(session: Session, cabinet: Cabinet, bodies: Iterable[DoorCreate]) -> list[Door]:
    doors = [
        Door(
            cabinet_id=cabinet.id or 0,
            number=body.number,
            size_class_id=size_class_by_code(session, body.size).id or 0,
            board=body.board,
            lock=body.lock,
            accessible_height=body.accessible_height,
        )
        for body in bodies
    ]
    session.add_all(doors)
    _flush_unique(session, f"a door with one of these numbers in cabinet {cabinet.id}")
    return doors


def add_doors(
    session: Session,
    deps: DomainDeps,
    cabinet_id: int,
    bodies: list[DoorCreate],
    *,
    caller: Caller,
    site_ids: Scope = None,
) -> list[Door]:
    cabinet = get_cabinet(session, cabinet_id, site_ids=site_ids)
    doors = _new_doors(session, cabinet, bodies)
    for door in doors:
        audit(
            session,
            deps,
            action="config.door_created",
            caller=caller,
            target=Target(site_id=cabinet.site_id, cabinet_id=cabinet.id, door_id=door.id),
            details={"number": door.number},
        )
    return doors


def door_range(spec: DoorRange) -> list[DoorCreate]:
    if spec.last_number < spec.first_number:
        raise InvalidField("to", "the last door number is below the first")
    count = spec.last_number - spec.first_number + 1
    return [
        DoorCreate(
            number=spec.first_number + offset,
            size=spec.size,
            board=spec.board,
            lock=spec.first_lock + offset,
            accessible_height=spec.accessible_height,
        )
        for offset in range(count)
    ]


def update_door(
    session: Session,
    deps: DomainDeps,
    cabinet_id: int,
    door_id: int,
    body: DoorUpdate,
    *,
    caller: Caller,
    site_ids: Scope = None,
) -> Door:
    door = get_door(session, cabinet_id, door_id, site_ids=site_ids)
    changes = _changes(body)
    if changes.get("service_state") == ServiceState.out_of_service and not changes.get(
        "service_reason"
    ):
        raise InvalidField("service_reason", "say why the door is taken out of service")
    if changes.get("service_state") == ServiceState.in_service:
        changes["service_reason"] = None
    door.sqlmodel_update(changes)
    session.add(door)
    cabinet = get_cabinet(session, cabinet_id)
    audit(
        session,
        deps,
        action="config.door_updated",
        caller=caller,
        target=Target(site_id=cabinet.site_id, cabinet_id=cabinet_id, door_id=door_id),
        reason=door.service_reason,
        details={"fields": sorted(changes)},
    )
    return door
