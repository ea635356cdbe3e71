"""Alarms: raised from what cabinets report and from the server's own watch, cleared when
their condition ends, acknowledged by staff with a note.

Sources, each a plain call of :func:`raise_alarm` or :func:`clear_alarm`:

======================  ===========================================  =======================
kind                    raised by                                    cleared by
======================  ===========================================  =======================
the cabinet's kinds     an ``alarm`` event (``board_not_answering``,  the same kind (and door)
(``AlarmKind``, open)   ``camera_lost``, ``scanner_lost``, …)         with ``cleared: true``
``door_forced_open``    the door event ``forced_open``               — (acknowledged only)
``door_left_open``      the door event ``left_open``                 the door's ``closed``
``door_jammed``         the door event ``jammed``                    the door's ``opened``
``wrong_code_burst``    refused pickups at one cabinet reaching the  —
                        cabinet lockout threshold in its window
``cabinet_offline``     the cabinet's connection going offline       back online
``courier_code_burst``  wrong courier codes at one cabinet reaching  —
                        the courier desk's sign-in limit
======================  ===========================================  =======================

While an alarm is *open* (neither acknowledged nor cleared), raising the same kind at
the same cabinet and door counts up its ``repeats`` instead of adding a row (the unique
``open_key`` keeps that true between server processes). Only a new alarm is sent to
the site's operators. Each raise, repeat, clear and acknowledgement is an audit entry
carrying the site.

Lock order: the alarm row first, the audit head last (callers raise before they write
their own audit entry), so a transaction holding the head never waits for an alarm row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from locker_contract.bodies import AlarmKind
from locker_server.errors import Conflict, NotFound
from locker_server.models import Alarm, AlarmState, Cabinet, DoorEvent, PickupFailure, Site
from locker_server.models.alarms import MAX_DETAIL
from locker_server.models.links import LinkEvent
from locker_server.models.types import opening_minutes
from locker_server.notifications import AlarmNotice
from locker_server.services.cabinets import Scope, in_scope
from locker_server.services.context import Caller, DomainDeps, SitedCabinet, Target, audit

logger = logging.getLogger(__name__)

#: Tries of insert-or-count-up: another process may acknowledge the open alarm in between.
_UPSERT_TRIES = 3
_REFUSED_PICKUP = "pickup.refused"


class ServerAlarm(StrEnum):
    """Kinds the server raises itself (cabinets name theirs: ``AlarmKind``)."""

    door_forced_open = "door_forced_open"
    door_left_open = "door_left_open"
    door_jammed = "door_jammed"
    wrong_code_burst = AlarmKind.WRONG_CODE_BURST.value
    cabinet_offline = "cabinet_offline"
    access_out_of_hours = "access_out_of_hours"
    remote_open = "remote_open"
    courier_code_burst = "courier_code_burst"


@dataclass(frozen=True, slots=True)
class Place:
    """Where an alarm is: a cabinet (with its site) and maybe one of its doors."""

    cabinet: SitedCabinet
    door_number: int | None = None
    #: The door's id when known, for the audit entry's target.
    door_id: int | None = None

    @property
    def cabinet_id(self) -> int:
        assert self.cabinet.id is not None
        return self.cabinet.id

    def open_key(self, kind: str) -> str:
        door = "-" if self.door_number is None else str(self.door_number)
        return f"{self.cabinet_id}/{door}/{kind}"

    @property
    def target(self) -> Target:
        return Target.at_cabinet(self.cabinet, door_id=self.door_id)


@dataclass(frozen=True, slots=True)
class Raised:
    alarm: Alarm
    #: False: a repeat of an open alarm (counted up, nobody told again).
    new: bool


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    state: AlarmState | None = None
    site_id: int | None = None
    cabinet_id: int | None = None
    kind: str | None = None


# --- raise and clear ---------------------------------------------------------------------------


def raise_alarm(
    session: Session,
    deps: DomainDeps,
    *,
    place: Place,
    kind: str,
    caller: Caller,
    detail: str | None = None,
    seen_at: datetime | None = None,
    tell_operators: bool = True,
) -> Raised:
    """Raise ``kind`` at ``place``, or count up the open alarm of that kind there.
    ``seen_at``: when the cabinet saw it, by its clock (also the audit entry's device
    time); None: now, by the server's clock. ``tell_operators`` false: listed for
    security staff, not mailed (an operator's own deliberate act)."""
    at = seen_at or deps.clock()
    detail = detail[:MAX_DETAIL] if detail else None
    raised = _insert_or_repeat(session, place, kind, detail, at)
    alarm = raised.alarm
    audit(
        session, deps, action="alarm.raised", caller=caller, target=place.target,
        outcome="alarm", device_time=seen_at,
        details={
            "alarm_id": alarm.id, "kind": kind, "door_number": place.door_number,
            "repeats": alarm.repeats, "detail": detail,
        },
    )  # fmt: skip
    if raised.new and tell_operators:
        _tell_operators(session, deps, alarm)
    return raised


def clear_alarm(
    session: Session,
    deps: DomainDeps,
    *,
    place: Place,
    kind: str,
    caller: Caller,
    cleared_at: datetime | None = None,
) -> list[Alarm]:
    """End the not yet cleared alarms of ``kind`` at ``place``: its condition is over.
    An acknowledged one is marked cleared too; nothing to clear is not an error.
    ``cleared_at``: by the cabinet's clock, like ``seen_at`` of :func:`raise_alarm`."""
    alarms = _uncleared(session, place.cabinet_id, [kind], door_numbers=[place.door_number])
    _end(session, deps, alarms, place=place, caller=caller, cleared_at=cleared_at)
    return alarms


def _end(
    session: Session,
    deps: DomainDeps,
    alarms: Sequence[Alarm],
    *,
    place: Place,
    caller: Caller,
    cleared_at: datetime | None,
) -> None:
    at = cleared_at or deps.clock()
    for alarm in alarms:
        alarm.cleared_at, alarm.open_key = at, None
        session.add(alarm)
        audit(
            session, deps, action="alarm.cleared", caller=caller, target=place.target,
            device_time=cleared_at,
            details={"alarm_id": alarm.id, "kind": alarm.kind, "door_number": alarm.door_number},
        )  # fmt: skip


def _insert_or_repeat(
    session: Session, place: Place, kind: str, detail: str | None, at: datetime
) -> Raised:
    key = place.open_key(kind)
    row = {
        "kind": kind, "site_id": place.cabinet.site_id, "cabinet_id": place.cabinet_id,
        "door_number": place.door_number, "raised_at": at, "last_seen_at": at, "repeats": 0,
        "detail": detail, "open_key": key,
    }  # fmt: skip
    for _ in range(_UPSERT_TRIES):
        inserted = _insert_unless_open(session, row)
        if inserted is not None:
            alarm = session.get(Alarm, inserted)
            assert alarm is not None
            return Raised(alarm, new=True)
        alarm = _lock_open(session, key)
        if alarm is not None:  # else acknowledged or cleared since our insert: try again
            alarm.repeats += 1
            alarm.last_seen_at = max(alarm.last_seen_at, at)
            alarm.detail = detail or alarm.detail
            session.add(alarm)
            return Raised(alarm, new=False)
    raise Conflict(f"alarm {key} keeps changing; try again")


def _insert_unless_open(session: Session, row: dict[str, object]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING: the new id, or None when the key is open already
    (on PostgreSQL an uncommitted row of another process makes us wait for it first)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Alarm).values(row).on_conflict_do_nothing()
    return session.execute(statement.returning(col(Alarm.id))).scalar_one_or_none()


def _lock_open(session: Session, key: str) -> Alarm | None:
    query = select(Alarm).where(Alarm.open_key == key).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).first()


def _uncleared(
    session: Session, cabinet_id: int, kinds: Sequence[str], *, door_numbers: Sequence[int | None]
) -> list[Alarm]:
    """The cabinet's alarms of ``kinds`` at ``door_numbers`` (None: the cabinet itself) not
    yet cleared, locked (after any door row: the services' lock order)."""
    numbers = [number for number in door_numbers if number is not None]
    at_doors = col(Alarm.door_number).in_(numbers)
    door = or_(at_doors, col(Alarm.door_number).is_(None)) if None in door_numbers else at_doors
    query = (
        select(Alarm)
        .where(Alarm.cabinet_id == cabinet_id, col(Alarm.kind).in_(kinds), door)
        .where(col(Alarm.cleared_at).is_(None))
        .order_by(col(Alarm.id))
        .with_for_update()
    )
    return list(session.exec(query.execution_options(populate_existing=True)).all())


def _tell_operators(session: Session, deps: DomainDeps, alarm: Alarm) -> None:
    if deps.staff is None:
        logger.warning("alarm %s: no staff directory wired, operators not told", alarm.id)
        return
    cabinet = session.get(Cabinet, alarm.cabinet_id)
    site = session.get(Site, alarm.site_id)
    assert cabinet is not None
    assert site is not None
    assert alarm.id is not None
    notice = AlarmNotice(
        alarm_id=alarm.id, kind=alarm.kind, site_name=site.name, cabinet_name=cabinet.name,
        cabinet_code=cabinet.code, door_number=alarm.door_number, raised_at=alarm.raised_at,
        detail=alarm.detail, site_timezone=site.timezone,
    )  # fmt: skip
    deps.notifier.alarm_raised(session, notice=notice, staff=deps.staff(session, alarm.site_id))


# --- door events and presence ------------------------------------------------------------------

#: Door events that raise an alarm, with what was seen.
_DOOR_ALARMS: dict[DoorEvent, tuple[ServerAlarm, str]] = {
    DoorEvent.forced_open: (ServerAlarm.door_forced_open, "door opened without a command"),
    DoorEvent.left_open: (ServerAlarm.door_left_open, "door left open"),
    DoorEvent.jammed: (ServerAlarm.door_jammed, "lock driven, door not seen opening"),
}
#: Door events that end an alarm's condition: closed ends "left open", opened ends "jammed".
_DOOR_CLEARS: dict[DoorEvent, ServerAlarm] = {
    DoorEvent.closed: ServerAlarm.door_left_open,
    DoorEvent.opened: ServerAlarm.door_jammed,
}


class DoorAlarmBook:
    """The not yet cleared alarms that door events can end, at some doors of one cabinet,
    read once for a run of door events (one statement instead of one per event)."""

    def __init__(self, alarms: Sequence[Alarm]) -> None:
        self._alarms = list(alarms)
        #: the cabinet's site, read at the run's first opening (its opening hours)
        self._site: Site | None = None

    def site(self, session: Session, site_id: int) -> Site | None:
        if self._site is None or self._site.id != site_id:
            self._site = session.get(Site, site_id)
        return self._site

    @classmethod
    def load(cls, session: Session, cabinet_id: int, door_numbers: Sequence[int]) -> DoorAlarmBook:
        if not door_numbers:
            return cls([])
        kinds = sorted(set(_DOOR_CLEARS.values()))
        return cls(_uncleared(session, cabinet_id, kinds, door_numbers=door_numbers))

    def take(self, door_number: int | None, kind: str) -> list[Alarm]:
        taken = [a for a in self._alarms if (a.door_number, a.kind) == (door_number, kind)]
        self._alarms = [alarm for alarm in self._alarms if alarm not in taken]
        return taken

    def add(self, alarm: Alarm) -> None:
        if alarm.kind in _DOOR_CLEARS.values() and alarm not in self._alarms:
            self._alarms.append(alarm)


def on_door_event(
    session: Session,
    deps: DomainDeps,
    *,
    place: Place,
    event: DoorEvent,
    caller: Caller,
    seen_at: datetime | None = None,
    book: DoorAlarmBook | None = None,
) -> None:
    """Raise or clear what a door event means (most door events mean nothing here).
    ``book``: a run's alarms read up front; without it they are read here."""
    if book is None:
        book = DoorAlarmBook.load(session, place.cabinet_id, _numbers(place, event))
    if event in (DoorEvent.opened, DoorEvent.forced_open):
        site = book.site(session, place.cabinet.site_id)
        _check_opening_hours(session, deps, place, site, caller=caller, at=seen_at or deps.clock())
    if event in _DOOR_ALARMS:
        kind, detail = _DOOR_ALARMS[event]
        raised = raise_alarm(
            session, deps, place=place, kind=kind, caller=caller, detail=detail, seen_at=seen_at
        )
        book.add(raised.alarm)
    elif event in _DOOR_CLEARS:
        ended = book.take(place.door_number, _DOOR_CLEARS[event])
        _end(session, deps, ended, place=place, caller=caller, cleared_at=seen_at)


def _check_opening_hours(
    session: Session,
    deps: DomainDeps,
    place: Place,
    site: Site | None,
    *,
    caller: Caller,
    at: datetime,
) -> None:
    """A door opened outside its site's opening hours (in the site's time zone) raises
    ``access_out_of_hours``; a site without opening hours is always open."""
    if site is None or site.opening_hours is None:
        return
    local = at.astimezone(ZoneInfo(site.timezone))
    if is_open_at(site.opening_hours, local.hour * 60 + local.minute):
        return
    detail = f"door opened at {local:%H:%M} local time; open {site.opening_hours}"
    raise_alarm(
        session, deps, place=place, kind=ServerAlarm.access_out_of_hours, caller=caller,
        detail=detail, seen_at=at,
    )  # fmt: skip


def is_open_at(opening_hours: str, minute_of_day: int) -> bool:
    """Whether ``minute_of_day`` (0-1439, local) falls inside ``"HH:MM-HH:MM"``."""
    start, end = opening_minutes(opening_hours)
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end  # spans midnight


def remote_open_issued(
    session: Session, deps: DomainDeps, *, place: Place, caller: Caller, reason: str | None
) -> None:
    """A remote open is an alarm for security staff to review (not mailed: the operator
    did it on purpose, with a reason, and it is audited as the command)."""
    raise_alarm(
        session, deps, place=place, kind=ServerAlarm.remote_open, caller=caller,
        detail=f"remote open: {reason}" if reason else "remote open", tell_operators=False,
    )  # fmt: skip


def _numbers(place: Place, event: DoorEvent) -> list[int]:
    """Doors whose alarms the event may end (none: nothing needs reading)."""
    if event not in _DOOR_CLEARS or place.door_number is None:
        return []
    return [place.door_number]


@dataclass(frozen=True, slots=True)
class CabinetAt:
    """A cabinet known by its id and site (when the row itself is not at hand)."""

    id: int
    site_id: int


def on_presence(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet: CabinetAt,
    online: bool,
    connection: int,
    caller: Caller,
    reported_at: datetime | None = None,
) -> None:
    """A cabinet that went offline raises ``cabinet_offline``; back online clears it.
    ``reported_at``: the cabinet's time of a presence replayed by the broker (None: now)."""
    place = Place(cabinet)
    if online:
        clear_alarm(
            session, deps, place=place, kind=ServerAlarm.cabinet_offline, caller=caller,
            cleared_at=reported_at,
        )  # fmt: skip
        return
    raise_alarm(
        session, deps, place=place, kind=ServerAlarm.cabinet_offline, caller=caller,
        detail=f"connection {connection} ended", seen_at=reported_at,
    )  # fmt: skip


# --- a burst of refused pickups ----------------------------------------------------------------


def watch_refused_pickups(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet: SitedCabinet,
    refused: int,
    caller: Caller,
    seen_at: datetime | None = None,
) -> Raised | None:
    """``refused`` attempts at ``cabinet`` within the lockout window (counting the one
    just refused): at the cabinet lockout threshold they are a burst of wrong codes."""
    policy = deps.lockout
    if refused < policy.cabinet_threshold:
        return None
    minutes = int(policy.window.total_seconds() // 60)
    return raise_alarm(
        session, deps, place=Place(cabinet), kind=ServerAlarm.wrong_code_burst, caller=caller,
        detail=f"{refused} refused pickups within {minutes} min", seen_at=seen_at,
    )  # fmt: skip


def refused_pickups_reported(
    session: Session, cabinet_id: int, *, since: datetime, until: datetime
) -> int:
    """Refused pickups the cabinet reported (``pickup.refused`` events) in ``(since,
    until]`` by its clock: an offline cabinet's burst still counts when it arrives late."""
    query = select(func.count()).where(
        LinkEvent.cabinet_id == cabinet_id,
        LinkEvent.type == _REFUSED_PICKUP,
        col(LinkEvent.device_time) > since,
        col(LinkEvent.device_time) <= until,
    )
    return int(session.exec(query).one())


def refused_pickups_checked(session: Session, cabinet_id: int, *, since: datetime) -> int:
    """Wrong codes the server's own check refused at the cabinet since ``since`` (the
    lockout's failure rows; attempts refused while locked out are not among them)."""
    query = select(func.count()).where(
        PickupFailure.cabinet_id == cabinet_id, col(PickupFailure.at) > since
    )
    return int(session.exec(query).one())


# --- reading and acknowledging -----------------------------------------------------------------


def get_alarm(session: Session, alarm_id: int, *, site_ids: Scope = None) -> Alarm:
    """The alarm; ``NotFound`` if there is none or it is outside ``site_ids``."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None or not in_scope(alarm.site_id, site_ids):
        raise NotFound(f"alarm {alarm_id} not found")
    return alarm


def list_alarms(
    session: Session, where: AlarmFilter, *, site_ids: Scope, limit: int, offset: int
) -> tuple[Sequence[Alarm], int]:
    """A page of the alarms matching ``where`` within ``site_ids``, newest first."""
    conditions = _conditions(where, site_ids)
    total = session.exec(select(func.count()).select_from(Alarm).where(*conditions)).one()
    query = (
        select(Alarm)
        .where(*conditions)
        .order_by(col(Alarm.raised_at).desc(), col(Alarm.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return session.exec(query).all(), int(total)


def _conditions(where: AlarmFilter, site_ids: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if site_ids is not None:
        conditions.append(col(Alarm.site_id).in_(site_ids))
    if where.site_id is not None:
        conditions.append(col(Alarm.site_id) == where.site_id)
    if where.cabinet_id is not None:
        conditions.append(col(Alarm.cabinet_id) == where.cabinet_id)
    if where.kind is not None:
        conditions.append(col(Alarm.kind) == where.kind)
    if where.state is not None:
        conditions.extend(_in_state(where.state))
    return conditions


def _in_state(state: AlarmState) -> list[ColumnElement[bool]]:
    acknowledged = col(Alarm.acknowledged_at).is_not(None)
    if state is AlarmState.acknowledged:
        return [acknowledged]
    cleared = col(Alarm.cleared_at).is_not(None)
    return [~acknowledged, cleared if state is AlarmState.cleared else ~cleared]


def acknowledge(
    session: Session,
    deps: DomainDeps,
    alarm_id: int,
    *,
    note: str,
    user_id: int,
    caller: Caller,
    site_ids: Scope = None,
) -> Alarm:
    """Mark the alarm handled, with the note; a second acknowledgement is a ``Conflict``."""
    alarm = _lock(session, alarm_id, site_ids)
    if alarm.acknowledged_at is not None:
        raise Conflict(
            f"alarm {alarm_id} was already acknowledged", code="alarm_already_acknowledged"
        )
    alarm.acknowledged_at, alarm.acknowledged_by = deps.clock(), user_id
    alarm.note, alarm.open_key = note, None
    session.add(alarm)
    cabinet = session.get(Cabinet, alarm.cabinet_id)
    assert cabinet is not None
    audit(
        session, deps, action="alarm.acknowledged", caller=caller,
        target=Target.at_cabinet(cabinet), reason=note,
        details={"alarm_id": alarm.id, "kind": alarm.kind, "door_number": alarm.door_number},
    )  # fmt: skip
    return alarm


def _lock(session: Session, alarm_id: int, site_ids: Scope) -> Alarm:
    query = select(Alarm).where(Alarm.id == alarm_id).with_for_update()
    alarm = session.exec(query.execution_options(populate_existing=True)).first()
    if alarm is None or not in_scope(alarm.site_id, site_ids):
        raise NotFound(f"alarm {alarm_id} not found")
    return alarm
