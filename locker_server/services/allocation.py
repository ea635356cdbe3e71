"""Door allocation: the smallest free in-service door that fits, safe under concurrency.

Rules (docs/server.md "Allocation"):

* The parcel needs the smallest size class whose inner dimensions hold it (any
  orientation), or at least the size the courier asked for, whichever is larger.
* A recipient's several parcels may share a door that recipient already holds in the
  same cabinet (if it is large enough); two recipients never share a door.
* Accessible-height doors are kept for recipients who need them, and such recipients
  get only accessible-height doors: the door has to be reachable for them, and giving
  those doors to others would leave nothing when they need one.
* Concurrency: a door is claimed with a conditional ``UPDATE ... WHERE occupancy =
  'empty'`` whose row count tells whether we won; on PostgreSQL the candidate is first
  picked with ``SELECT ... FOR UPDATE SKIP LOCKED`` so parallel couriers do not queue
  behind the same row. Two requests can never both win the same door.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CursorResult, case, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from locker_server.errors import NoDoorAvailable
from locker_server.models import (
    Cabinet,
    Door,
    Occupancy,
    Parcel,
    Recipient,
    ServiceState,
    SizeClass,
)
from locker_server.services.errors import InvalidField
from locker_server.services.lifecycle import INSIDE_DOOR


def size_classes(session: Session) -> list[SizeClass]:
    return list(session.exec(select(SizeClass).order_by(col(SizeClass.rank))).all())


def size_class_by_code(session: Session, code: str, *, field: str = "size") -> SizeClass:
    found = session.exec(select(SizeClass).where(SizeClass.code == code)).first()
    if found is None:
        known = ", ".join(size.code for size in size_classes(session))
        raise InvalidField(field, f"unknown size class {code!r} (known: {known})")
    return found


def fits(size: SizeClass, dimensions: Sequence[int]) -> bool:
    """Whether a box of ``dimensions`` (mm) fits the size class in some orientation."""
    inner = sorted((size.inner_height_mm, size.inner_width_mm, size.inner_depth_mm))
    return all(need <= room for need, room in zip(sorted(dimensions), inner, strict=True))


def smallest_fitting_rank(classes: Sequence[SizeClass], dimensions: Sequence[int]) -> int:
    for size in classes:
        if fits(size, dimensions):
            return size.rank
    raise InvalidField("length_mm", "the parcel fits no door size")


def required_rank(session: Session, parcel: Parcel) -> int:
    """The smallest size rank the parcel needs (its dimensions, its requested size, or both)."""
    classes = size_classes(session)
    rank = classes[0].rank if classes else 1
    dims = (parcel.length_mm, parcel.width_mm, parcel.height_mm)
    if all(value is not None for value in dims):
        rank = smallest_fitting_rank(classes, [value for value in dims if value is not None])
    requested = session.get(SizeClass, parcel.size_class_id) if parcel.size_class_id else None
    return max(rank, requested.rank) if requested is not None else rank


def _usable_doors(cabinet_id: int, min_rank: int) -> SelectOfScalar[Any]:
    return (
        select(Door.id)
        .join(SizeClass, col(SizeClass.id) == col(Door.size_class_id))
        .where(
            Door.cabinet_id == cabinet_id,
            Door.service_state == ServiceState.in_service,
            col(SizeClass.rank) >= min_rank,
        )
    )


def _shared_door_id(session: Session, cabinet_id: int, recipient_id: int, rank: int) -> int | None:
    query = _usable_doors(cabinet_id, rank).where(
        Door.occupant_recipient_id == recipient_id, col(Door.held_parcels) > 0
    )
    door_id: int | None = session.exec(query.order_by(col(SizeClass.rank)).limit(1)).first()
    return door_id


def _next_free_door_id(
    session: Session, cabinet_id: int, recipient: Recipient, rank: int, tried: set[int]
) -> int | None:
    query = (
        _usable_doors(cabinet_id, rank)
        .where(
            Door.occupancy == Occupancy.empty,
            Door.accessible_height == recipient.accessibility_need,
            col(Door.id).not_in(tried),
        )
        .order_by(col(SizeClass.rank), col(Door.number))
        .limit(1)
        .with_for_update(skip_locked=True, of=Door)  # ignored by SQLite, which has no row locks
    )
    door_id: int | None = session.exec(query).first()
    return door_id


def _claim_empty(session: Session, door_id: int, recipient_id: int) -> bool:
    result = session.execute(
        update(Door)
        .where(col(Door.id) == door_id, col(Door.occupancy) == Occupancy.empty)
        .values(occupancy=Occupancy.reserved, occupant_recipient_id=recipient_id, held_parcels=1)
        .execution_options(synchronize_session=False)
    )
    return _one_row(result)


def _claim_shared(session: Session, door_id: int, recipient_id: int) -> bool:
    result = session.execute(
        update(Door)
        .where(
            col(Door.id) == door_id,
            col(Door.occupant_recipient_id) == recipient_id,
            col(Door.held_parcels) > 0,
        )
        .values(held_parcels=col(Door.held_parcels) + 1)
        .execution_options(synchronize_session=False)
    )
    return _one_row(result)


def _one_row(result: object) -> bool:
    assert isinstance(result, CursorResult)
    return bool(result.rowcount == 1)


def _fresh_door(session: Session, door_id: int) -> Door:
    door = session.get(Door, door_id, populate_existing=True)
    assert door is not None
    return door


def allocate_door(
    session: Session, *, cabinet: Cabinet, recipient: Recipient, min_rank: int
) -> Door:
    """Claim a door of ``cabinet`` for one parcel of ``recipient``; ``NoDoorAvailable`` if none."""
    if not cabinet.in_service or cabinet.maintenance:
        raise NoDoorAvailable(f"cabinet {cabinet.id} is not in service")
    assert cabinet.id is not None
    assert recipient.id is not None
    shared = _shared_door_id(session, cabinet.id, recipient.id, min_rank)
    if shared is not None and _claim_shared(session, shared, recipient.id):
        return _fresh_door(session, shared)
    tried: set[int] = set()
    while (
        door_id := _next_free_door_id(session, cabinet.id, recipient, min_rank, tried)
    ) is not None:
        if _claim_empty(session, door_id, recipient.id):
            return _fresh_door(session, door_id)
        tried.add(door_id)  # someone else won this one between our read and our update
    raise NoDoorAvailable(f"no free door of a fitting size in cabinet {cabinet.id}")


def lock_doors(session: Session, door_ids: Sequence[int | None]) -> None:
    """Take the row locks of doors about to be released, before any audit entry is written.

    Services lock rows first and append to the audit chain last; holding the audit head
    while waiting for a door could deadlock against a pickup at the same door.
    """
    wanted = sorted({door_id for door_id in door_ids if door_id is not None})
    if wanted:
        session.exec(select(Door.id).where(col(Door.id).in_(wanted)).with_for_update()).all()


def mark_occupied(session: Session, door_id: int) -> None:
    session.execute(
        update(Door)
        .where(col(Door.id) == door_id)
        .values(occupancy=Occupancy.occupied)
        .execution_options(synchronize_session=False)
    )


def release_door(session: Session, door_id: int) -> None:
    """One parcel no longer holds the door; the last one to leave empties it."""
    last = col(Door.held_parcels) <= 1
    session.execute(
        update(Door)
        .where(col(Door.id) == door_id, col(Door.held_parcels) > 0)
        .values(
            held_parcels=col(Door.held_parcels) - 1,
            occupancy=case((last, Occupancy.empty.value), else_=col(Door.occupancy)),
            occupant_recipient_id=case((last, None), else_=col(Door.occupant_recipient_id)),
        )
        .execution_options(synchronize_session=False)
    )
    _settle_occupancy(session, door_id)


def _settle_occupancy(session: Session, door_id: int) -> None:
    """A shared door stays ``occupied`` only while a parcel is actually inside it."""
    door = _fresh_door(session, door_id)
    if door.held_parcels == 0:
        return
    inside = session.exec(
        select(Parcel.id).where(Parcel.door_id == door_id, col(Parcel.state).in_(INSIDE_DOOR))
    ).first()
    door.occupancy = Occupancy.occupied if inside is not None else Occupancy.reserved
    session.add(door)
