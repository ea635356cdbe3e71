"""Opening hours: a door opened outside its site's daily hours (in the site's time zone)
raises ``access_out_of_hours``; remote opens are listed as alarms for security staff and
not mailed."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.auth.roles import Role
from locker_server.db import session_scope
from locker_server.models import DoorEvent, Site, SiteCreate
from locker_server.services import DomainDeps, alarms
from locker_server.services.cabinets import cabinet_caller
from locker_server.services.doors import record_door_event
from tests.alarms.conftest import MakeStaff, alarm_mail, alarms_of
from tests.domain.conftest import FakeClock, World

CABINET = cabinet_caller("CAB-1")


@pytest.mark.parametrize(
    ("hours", "minute", "open_"),
    [
        ("07:00-20:00", 7 * 60, True),
        ("07:00-20:00", 20 * 60 - 1, True),
        ("07:00-20:00", 20 * 60, False),
        ("07:00-20:00", 3 * 60, False),
        ("22:00-06:00", 23 * 60, True),  # spans midnight
        ("22:00-06:00", 5 * 60 + 59, True),
        ("22:00-06:00", 12 * 60, False),
    ],
)
def test_is_open_at(hours: str, minute: int, open_: bool) -> None:
    assert alarms.is_open_at(hours, minute) is open_


@pytest.mark.parametrize("hours", ["7-20", "07:00-24:00", "07:00-07:00", "07:60-20:00", ""])
def test_opening_hours_that_are_not_hours_are_refused(hours: str) -> None:
    with pytest.raises(ValueError, match=r"opening|same"):
        SiteCreate(name="HQ", opening_hours=hours)


def _set_hours(engine: Engine, world: World, hours: str | None, timezone: str) -> None:
    with Session(engine) as session:
        site = session.get(Site, world.site_id)
        assert site is not None
        site.opening_hours, site.timezone = hours, timezone
        session.add(site)
        session.commit()


def _open_door(engine: Engine, deps: DomainDeps, world: World) -> None:
    with session_scope(engine) as session:
        record_door_event(
            session, deps, cabinet_id=world.cabinet_id, door_number=1,
            event=DoorEvent.opened, caller=CABINET,
        )  # fmt: skip


def test_a_door_opened_outside_the_sites_hours_raises_an_alarm_in_local_time(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock, make_staff: MakeStaff
) -> None:
    make_staff(Role.operator, email="ops@example.org")
    # The test clock says 09:00 UTC: 17:00 in Shanghai, inside 07:00-20:00 there.
    _set_hours(engine, world, "07:00-20:00", "Asia/Shanghai")
    _open_door(engine, deps, world)
    assert [a.kind for a in alarms_of(engine, world.cabinet_id)] == []
    clock.advance(minutes=4 * 60)  # 21:00 in Shanghai
    _open_door(engine, deps, world)
    (alarm,) = alarms_of(engine, world.cabinet_id)
    assert (alarm.kind, alarm.door_number) == ("access_out_of_hours", 1)
    assert alarm.detail is not None
    assert "21:00 local" in alarm.detail
    assert len(alarm_mail(engine)) == 1  # operators are told


def test_a_site_without_opening_hours_is_always_open(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    _set_hours(engine, world, None, "UTC")
    clock.advance(minutes=15 * 60)  # 00:00 UTC
    _open_door(engine, deps, world)
    assert alarms_of(engine, world.cabinet_id) == []


def test_a_remote_open_is_an_alarm_for_review_and_not_mailed(
    engine: Engine, deps: DomainDeps, world: World, make_staff: MakeStaff
) -> None:
    make_staff(Role.operator, email="ops@example.org")
    with session_scope(engine) as session:
        place = alarms.Place(alarms.CabinetAt(world.cabinet_id, world.site_id), door_number=2)
        alarms.remote_open_issued(session, deps, place=place, caller=CABINET, reason="parcel stuck")
    (alarm,) = alarms_of(engine, world.cabinet_id)
    assert (alarm.kind, alarm.detail) == ("remote_open", "remote open: parcel stuck")
    assert alarm_mail(engine) == []
