"""What the web console shows beyond the API's own views: the cabinet board, and the
names behind the ids of audit entries.

The audit log stores ids only (no personal data); the console resolves them when it
shows a page, with one query per kind of id on the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from locker_server.models import Cabinet, Door, Parcel, Recipient, Site
from locker_server.models.links import CabinetLink
from locker_server.services.cabinets import Scope


@dataclass(frozen=True, slots=True)
class DoorCard:
    id: int
    number: int
    door_state: str
    occupancy: str
    service_state: str


@dataclass(frozen=True, slots=True)
class CabinetCard:
    id: int
    code: str
    name: str
    site_name: str
    online: bool
    last_seen: datetime | None
    maintenance: bool
    in_service: bool
    doors: list[DoorCard] = field(default_factory=list)


def cabinet_board(session: Session, site_ids: Scope) -> list[CabinetCard]:
    """Every cabinet the caller may see, with its link and its doors, by site then code."""
    query = select(Cabinet, Site).join(Site, col(Site.id) == col(Cabinet.site_id))
    if site_ids is not None:
        query = query.where(col(Cabinet.site_id).in_(sorted(site_ids)))
    rows = session.exec(query.order_by(col(Site.name), col(Cabinet.code))).all()
    cabinet_ids = [cabinet.id for cabinet, _site in rows if cabinet.id is not None]
    links = {
        link.cabinet_id: link
        for link in session.exec(
            select(CabinetLink).where(col(CabinetLink.cabinet_id).in_(cabinet_ids))
        )
    }
    doors: dict[int, list[DoorCard]] = {}
    door_rows = session.exec(
        select(Door).where(col(Door.cabinet_id).in_(cabinet_ids)).order_by(col(Door.number))
    )
    for door in door_rows:
        doors.setdefault(door.cabinet_id, []).append(
            DoorCard(door.id or 0, door.number, door.door_state, door.occupancy, door.service_state)
        )
    return [_card(cabinet, site, links.get(cabinet.id or 0), doors) for cabinet, site in rows]


def _card(
    cabinet: Cabinet, site: Site, link: CabinetLink | None, doors: Mapping[int, list[DoorCard]]
) -> CabinetCard:
    assert cabinet.id is not None
    return CabinetCard(
        id=cabinet.id,
        code=cabinet.code,
        name=cabinet.name,
        site_name=site.name,
        online=bool(link and link.online),
        last_seen=link.last_seen if link else None,
        maintenance=cabinet.maintenance,
        in_service=cabinet.in_service,
        doors=doors.get(cabinet.id, []),
    )


@dataclass(frozen=True, slots=True)
class EntryNames:
    """Display names for the ids on a page of audit entries (missing: deleted since)."""

    sites: dict[int, str]
    cabinets: dict[int, str]
    doors: dict[int, str]
    parcels: dict[int, str]


def entry_names(session: Session, entries: Sequence[Mapping[str, Any]]) -> EntryNames:
    def ids(name: str) -> list[int]:
        return sorted({entry[name] for entry in entries if entry.get(name) is not None})

    sites = _names(session, Site, ids("site_id"), lambda site: site.name)
    cabinets = _names(session, Cabinet, ids("cabinet_id"), lambda cabinet: cabinet.code)
    door_rows = session.exec(
        select(Door, Cabinet)
        .join(Cabinet, col(Cabinet.id) == col(Door.cabinet_id))
        .where(col(Door.id).in_(ids("door_id")))
    ).all()
    doors = {door.id: f"{cabinet.code} #{door.number}" for door, cabinet in door_rows if door.id}
    parcels = _names(session, Parcel, ids("parcel_id"), lambda parcel: parcel.tracking_number)
    return EntryNames(sites=sites, cabinets=cabinets, doors=doors, parcels=parcels)


def _names(session: Session, table: Any, ids: Iterable[int], name_of: Any) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.exec(select(table).where(col(table.id).in_(wanted)))
    return {row.id: str(name_of(row)) for row in rows}


def sites_in_scope(session: Session, site_ids: Scope) -> list[Site]:
    query = select(Site).order_by(col(Site.name))
    if site_ids is not None:
        query = query.where(col(Site.id).in_(sorted(site_ids)))
    return list(session.exec(query))


def cabinets_in_scope(session: Session, site_ids: Scope) -> list[Cabinet]:
    query = select(Cabinet).order_by(col(Cabinet.code))
    if site_ids is not None:
        query = query.where(col(Cabinet.site_id).in_(sorted(site_ids)))
    return list(session.exec(query))


def door_id_of(session: Session, cabinet_id: int, number: int) -> int | None:
    door = session.exec(
        select(Door).where(Door.cabinet_id == cabinet_id, Door.number == number)
    ).first()
    return door.id if door else None


def parcel_id_of(session: Session, reference: str) -> int | None:
    """A parcel by tracking number, else by ``#id`` or a bare id."""
    parcel = session.exec(select(Parcel).where(Parcel.tracking_number == reference)).first()
    if parcel is not None:
        return parcel.id
    digits = reference.removeprefix("#")
    return int(digits) if digits.isdigit() and len(digits) < 10 else None


@dataclass(frozen=True, slots=True)
class ParcelRow:
    id: int
    tracking_number: str
    state: str
    site_name: str | None
    place: str | None
    pickup_deadline: datetime | None


def find_parcels(
    session: Session,
    site_ids: Scope,
    *,
    text: str | None,
    state: str | None,
    limit: int,
) -> list[ParcelRow]:
    """Newest parcels first: a part of the tracking number, or of the recipient's name or
    e-mail address, and a state; only the caller's sites."""
    query = select(Parcel).order_by(col(Parcel.id).desc()).limit(limit)
    if site_ids is not None:
        query = query.where(col(Parcel.site_id).in_(sorted(site_ids)))
    if state:
        query = query.where(Parcel.state == state)
    if text:
        recipients = select(Recipient.id).where(
            or_(
                col(Recipient.name).icontains(text, autoescape=True),
                col(Recipient.email).icontains(text, autoescape=True),
            )
        )
        query = query.where(
            or_(
                col(Parcel.tracking_number).icontains(text, autoescape=True),
                col(Parcel.recipient_id).in_(recipients),
            )
        )
    parcels = list(session.exec(query))
    names = entry_names(
        session,
        [{"site_id": p.site_id, "cabinet_id": p.cabinet_id, "door_id": p.door_id} for p in parcels],
    )
    return [
        ParcelRow(
            id=parcel.id or 0,
            tracking_number=parcel.tracking_number,
            state=parcel.state,
            site_name=names.sites.get(parcel.site_id or 0),
            place=names.doors.get(parcel.door_id or 0)
            or names.cabinets.get(parcel.cabinet_id or 0),
            pickup_deadline=parcel.pickup_deadline,
        )
        for parcel in parcels
    ]


def _place(names: EntryNames, parcel: Parcel) -> str | None:
    return names.doors.get(parcel.door_id or 0) or names.cabinets.get(parcel.cabinet_id or 0)


def visible_parcel(session: Session, site_ids: Scope, parcel_id: int) -> Parcel | None:
    """The parcel if the caller's sites include it (else ``None``, like an unknown id)."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        return None
    if site_ids is not None and (parcel.site_id is None or parcel.site_id not in site_ids):
        return None
    return parcel


def visible_door(session: Session, site_ids: Scope, door_id: int) -> tuple[Door, Cabinet] | None:
    row = session.exec(
        select(Door, Cabinet)
        .join(Cabinet, col(Cabinet.id) == col(Door.cabinet_id))
        .where(Door.id == door_id)
    ).first()
    if row is None:
        return None
    door, cabinet = row
    if site_ids is not None and cabinet.site_id not in site_ids:
        return None
    return door, cabinet
