"""Door events reported by cabinets, and remote opens requested by operators.

A door's state is only ever what a cabinet reported: a ``jammed`` report (the lock was
driven but the sensor never saw the door open) leaves the last observed state alone,
and a report older than the one we hold is audited but does not overwrite it.

A move the cabinet did not observe as it happened (``observed`` false: it found the door
in another state after a gap, agent down or board not answering) sets the state it
found and is audited with ``observed: false``. It is a record only: nothing here (nor
the command lifecycle, nor deposits and pickups, which have their own events) takes a
door event as the confirmation of anything.

Lock order: door rows first (``FOR UPDATE``, ascending ids when several), the audit head
last — never a door while holding the head, which a concurrent request could be waiting for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from locker_server.errors import NotFound
from locker_server.models import Cabinet, Door, DoorCommand, DoorEvent, DoorState
from locker_server.services import alarms
from locker_server.services.cabinets import Scope, get_cabinet
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.layout import get_door

_STATE_AFTER = {
    DoorEvent.opened: DoorState.open,
    DoorEvent.forced_open: DoorState.open,
    DoorEvent.left_open: DoorState.open,
    DoorEvent.closed: DoorState.closed,
}
_OUTCOMES = {
    DoorEvent.forced_open: "alarm",
    DoorEvent.left_open: "alarm",
    DoorEvent.jammed: "failure",
}


def lock_doors_by_number(
    session: Session, cabinet_id: int, door_numbers: Iterable[int]
) -> dict[int, Door]:
    """The cabinet's doors with these numbers (by number), row-locked in door-id order.

    One lock order for several doors (ids ascending), taken before any audit entry: a
    caller holding the audit head never waits for a door. Numbers with no door are absent.
    """
    wanted = sorted(set(door_numbers))
    if not wanted:
        return {}
    query = (
        select(Door)
        .where(Door.cabinet_id == cabinet_id, col(Door.number).in_(wanted))
        .order_by(col(Door.id))
        .with_for_update()  # PostgreSQL locks rows in the ORDER BY order; SQLite ignores it
    )
    doors = session.exec(query.execution_options(populate_existing=True)).all()
    return {door.number: door for door in doors}


def _door_by_number(session: Session, cabinet_id: int, door_number: int) -> Door:
    door = lock_doors_by_number(session, cabinet_id, [door_number]).get(door_number)
    if door is None:
        raise NotFound(f"door {door_number} not found in cabinet {cabinet_id}")
    return door


def _is_newer(door: Door, observed_at: datetime) -> bool:
    return door.door_state_at is None or observed_at >= door.door_state_at


def record_door_event(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    door_number: int,
    event: DoorEvent,
    caller: Caller,
    device_time: datetime | None = None,
    observed: bool = True,
) -> Door:
    """Apply a door report from a cabinet and audit it as ``door.<event>``."""
    cabinet = get_cabinet(session, cabinet_id)
    door = _door_by_number(session, cabinet_id, door_number)
    apply_door_event(
        session, deps, cabinet=cabinet, door=door, event=event, caller=caller,
        device_time=device_time, observed=observed,
    )  # fmt: skip
    return door


def apply_door_event(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet: Cabinet,
    door: Door,
    event: DoorEvent,
    caller: Caller,
    device_time: datetime | None = None,
    observed: bool = True,
    alarm_book: alarms.DoorAlarmBook | None = None,
) -> bool:
    """``record_door_event`` for a cabinet and a door the caller has already loaded (and
    locked: :func:`lock_doors_by_number`); answers whether the door state changed.
    ``observed`` false: the cabinet found the door so after a gap (audited as such).
    Forced open, left open and jammed raise alarms (:mod:`locker_server.services.alarms`);
    ``alarm_book``: the alarms a run of door events may end, read once for the run.

    Several events for one door in one transaction each see the state the previous one
    left, so a batch ends where the same events applied one by one would.
    """
    observed_at = device_time or deps.clock()
    new_state = _STATE_AFTER.get(event)
    applied = new_state is not None and _is_newer(door, observed_at)
    if applied and new_state is not None:
        door.door_state, door.door_state_at = new_state, observed_at
        session.add(door)
    place = alarms.Place(cabinet, door_number=door.number, door_id=door.id)
    alarms.on_door_event(
        session, deps, place=place, event=event, caller=caller, seen_at=device_time,
        book=alarm_book,
    )  # fmt: skip  # before the audit entry: the alarm row is locked before the audit head
    audit(
        session,
        deps,
        action=f"door.{event.value}",
        caller=caller,
        target=Target(site_id=cabinet.site_id, cabinet_id=cabinet.id, door_id=door.id),
        outcome=_OUTCOMES.get(event, "success"),
        device_time=device_time,
        details={"door_number": door.number, "state_applied": applied}
        | ({} if observed else {"observed": False}),
    )
    return applied


def request_remote_open(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    door_id: int,
    reason: str,
    caller: Caller,
    site_ids: Scope = None,
) -> DoorCommand:
    """Queue an operator's remote open as a ``door_commands`` row (no cabinet link involved).

    The API's remote open no longer uses this queue: it sends a signed command over the
    cabinet link (:func:`locker_server.services.commands.issue_command`), which records its own
    lifecycle in ``link_commands``.
    """
    door = get_door(session, cabinet_id, door_id, site_ids=site_ids)
    cabinet = get_cabinet(session, cabinet_id)
    command = DoorCommand(
        door_id=door_id,
        kind="open",
        reason=reason,
        requested_by_type=caller.actor_type,
        requested_by_id=caller.actor_id,
        requested_at=deps.clock(),
    )
    session.add(command)
    session.flush()
    audit(
        session,
        deps,
        action="door.remote_open",
        caller=caller,
        target=Target(site_id=cabinet.site_id, cabinet_id=cabinet_id, door_id=door.id),
        outcome="requested",
        reason=reason,
        details={"command_id": command.id},
    )
    return command
