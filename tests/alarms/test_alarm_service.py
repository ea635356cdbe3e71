"""The alarm service: raised once and counted up while open, cleared when the condition
ends, acknowledged once with a note, audited with the site, mailed to the site's operators;
and the server's own sources (door events, presence, bursts of wrong codes)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from locker_contract.bodies import Presence
from locker_server.auth.roles import Role
from locker_server.db import session_scope
from locker_server.errors import Conflict
from locker_server.models import AlarmState, DoorEvent, Site
from locker_server.services import DomainDeps, alarms, presence
from locker_server.services.cabinets import cabinet_caller
from locker_server.services.doors import record_door_event
from locker_server.services.pickup import attempt_pickup
from tests.alarms.conftest import MakeStaff, alarm_mail, alarms_of
from tests.domain.conftest import KIOSK, OPERATOR, T0, FakeClock, World, audit_rows

CABINET = cabinet_caller("CAB-1")


def place(world: World, door: int | None = None) -> alarms.Place:
    return alarms.Place(alarms.CabinetAt(world.cabinet_id, world.site_id), door_number=door)


def raise_alarm(
    engine: Engine,
    deps: DomainDeps,
    world: World,
    kind: str = "board_not_answering",
    *,
    door: int | None = None,
    detail: str | None = None,
) -> tuple[int, bool]:
    with session_scope(engine) as session:
        raised = alarms.raise_alarm(
            session, deps, place=place(world, door), kind=kind, caller=CABINET, detail=detail
        )
        assert raised.alarm.id is not None
        return raised.alarm.id, raised.new


def clear_alarm(engine: Engine, deps: DomainDeps, world: World, kind: str) -> int:
    with session_scope(engine) as session:
        return len(alarms.clear_alarm(session, deps, place=place(world), kind=kind, caller=CABINET))


def acknowledge(engine: Engine, deps: DomainDeps, alarm_id: int, note: str = "checked") -> None:
    with session_scope(engine) as session:
        alarms.acknowledge(session, deps, alarm_id, note=note, user_id=7, caller=OPERATOR)


def test_a_repeat_of_an_open_alarm_counts_up_instead_of_adding_a_row(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    first = raise_alarm(engine, deps, world, detail="board 1 silent")
    later = clock.advance(minutes=2)
    again = raise_alarm(engine, deps, world, detail="board 1 still silent")
    at_a_door = raise_alarm(engine, deps, world, door=2)

    assert (first[1], again, at_a_door[1]) == (True, (first[0], False), True)
    cabinet_alarm, door_alarm = alarms_of(engine, world.cabinet_id)
    assert (cabinet_alarm.repeats, cabinet_alarm.raised_at, cabinet_alarm.last_seen_at) == (
        1,
        T0,
        later,
    )
    assert cabinet_alarm.detail == "board 1 still silent"
    assert (door_alarm.door_number, door_alarm.repeats, door_alarm.state) == (2, 0, "open")


def test_clearing_ends_the_open_alarm_and_the_same_trouble_later_is_a_new_alarm(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    first, _ = raise_alarm(engine, deps, world, "camera_lost")

    assert clear_alarm(engine, deps, world, "camera_lost") == 1
    assert clear_alarm(engine, deps, world, "camera_lost") == 0  # nothing left: no error
    second, new = raise_alarm(engine, deps, world, "camera_lost")

    assert new
    assert second != first
    states = [(a.id, a.state) for a in alarms_of(engine, world.cabinet_id)]
    assert states == [(first, AlarmState.cleared), (second, AlarmState.open)]


def test_after_an_acknowledgement_the_same_trouble_raises_a_new_alarm_and_clearing_ends_both(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    handled, _ = raise_alarm(engine, deps, world)
    acknowledge(engine, deps, handled, note="board being replaced")
    fresh, new = raise_alarm(engine, deps, world)

    assert new
    assert clear_alarm(engine, deps, world, "board_not_answering") == 2
    rows = alarms_of(engine, world.cabinet_id)
    assert [(a.id, a.state) for a in rows] == [
        (handled, AlarmState.acknowledged),
        (fresh, AlarmState.cleared),
    ]
    assert all(a.cleared_at is not None for a in rows)
    assert (rows[0].note, rows[0].acknowledged_by) == ("board being replaced", 7)


def test_acknowledging_an_alarm_twice_is_refused_with_a_clear_conflict(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    alarm_id, _ = raise_alarm(engine, deps, world)
    acknowledge(engine, deps, alarm_id, note="first look")

    with pytest.raises(Conflict) as refused:
        acknowledge(engine, deps, alarm_id, note="second look")

    assert refused.value.code == "alarm_already_acknowledged"
    [alarm] = alarms_of(engine, world.cabinet_id)
    assert alarm.note == "first look"


def test_raise_clear_and_acknowledge_are_audited_with_the_site(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    alarm_id, _ = raise_alarm(engine, deps, world, "scanner_lost", detail="no frames for 30 s")
    raise_alarm(engine, deps, world, "scanner_lost")
    clear_alarm(engine, deps, world, "scanner_lost")
    acknowledge(engine, deps, alarm_id, note="scanner cable reseated")

    raised = audit_rows(engine, "alarm.raised")
    assert [json.loads(e.details)["repeats"] for e in raised] == [0, 1]
    [cleared] = audit_rows(engine, "alarm.cleared")
    [acknowledged] = audit_rows(engine, "alarm.acknowledged")
    for entry in (*raised, cleared, acknowledged):
        assert (entry.site_id, entry.cabinet_id) == (world.site_id, world.cabinet_id)
        assert json.loads(entry.details)["alarm_id"] == alarm_id
    assert (raised[0].actor_type, raised[0].outcome) == ("cabinet", "alarm")
    assert (acknowledged.actor_id, acknowledged.reason) == ("7", "scanner cable reseated")


def test_a_new_alarm_is_mailed_to_the_sites_operators_and_a_repeat_to_nobody(
    engine: Engine, deps: DomainDeps, world: World, make_staff: MakeStaff
) -> None:
    with session_scope(engine) as session:
        elsewhere = Site(name="Warehouse")
        session.add(elsewhere)
        session.flush()
        assert elsewhere.id is not None
        other_site = elsewhere.id
    make_staff(Role.operator, email="all-sites@example.org")
    make_staff(Role.operator, email="this-site@example.org", sites=(world.site_id,))
    make_staff(Role.operator, email="other-site@example.org", sites=(other_site,))
    make_staff(Role.operator)  # no address
    make_staff(Role.operator, email="gone@example.org", active=False)
    make_staff(Role.security, email="security@example.org")

    raise_alarm(engine, deps, world, "door_forced_open", door=3)
    raise_alarm(engine, deps, world, "door_forced_open", door=3)

    mail = alarm_mail(engine)
    assert sorted(m.destination for m in mail) == ["all-sites@example.org", "this-site@example.org"]
    params = mail[0].params
    assert (params["kind"], params["site_name"], params["cabinet_name"]) == (
        "door_forced_open",
        "HQ",
        "Lobby",
    )
    assert (params["door_number"], params["raised_at"]) == (3, T0.isoformat())


# --- sources -----------------------------------------------------------------------------------


def report(engine: Engine, deps: DomainDeps, world: World, event: DoorEvent, door: int) -> None:
    with session_scope(engine) as session:
        record_door_event(
            session, deps, cabinet_id=world.cabinet_id, door_number=door, event=event,
            caller=CABINET,
        )  # fmt: skip


def test_forced_open_left_open_and_jammed_doors_raise_alarms_that_the_door_clears_itself(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    report(engine, deps, world, DoorEvent.forced_open, 1)
    report(engine, deps, world, DoorEvent.left_open, 1)
    report(engine, deps, world, DoorEvent.jammed, 2)
    clock.advance(minutes=1)
    report(engine, deps, world, DoorEvent.closed, 1)  # ends "left open", not "forced open"
    report(engine, deps, world, DoorEvent.opened, 2)  # the lock works again

    rows = alarms_of(engine, world.cabinet_id)
    assert [(a.kind, a.door_number, a.state) for a in rows] == [
        ("door_forced_open", 1, AlarmState.open),
        ("door_left_open", 1, AlarmState.cleared),
        ("door_jammed", 2, AlarmState.cleared),
    ]
    assert rows[1].cleared_at == clock.now
    assert audit_rows(engine, "alarm.raised")[0].door_id == world.door_ids[1]


def apply_presence(
    engine: Engine, deps: DomainDeps, world: World, status: str, connection: int
) -> None:
    body = Presence(status=status, connection=connection, agent_version="1.0")  # type: ignore[arg-type]
    with session_scope(engine) as session:
        presence.apply_presence(
            session, deps, cabinet_id=world.cabinet_id, site_id=world.site_id, presence=body,
            caller=CABINET, heard_at=deps.clock(), sent_at=deps.clock(),
        )  # fmt: skip


def test_a_cabinet_going_offline_raises_an_alarm_that_coming_back_online_clears(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    apply_presence(engine, deps, world, "online", 1)
    assert alarms_of(engine, world.cabinet_id) == []

    clock.advance(minutes=5)
    apply_presence(engine, deps, world, "offline", 1)
    [offline] = alarms_of(engine, world.cabinet_id)
    assert (offline.kind, offline.state, offline.raised_at) == (
        "cabinet_offline",
        AlarmState.open,
        clock.now,
    )

    back = clock.advance(minutes=3)
    apply_presence(engine, deps, world, "online", 2)
    [offline] = alarms_of(engine, world.cabinet_id)
    assert (offline.state, offline.cleared_at) == (AlarmState.cleared, back)


def wrong_code(engine: Engine, deps: DomainDeps, world: World) -> str:
    with session_scope(engine) as session:
        decision = attempt_pickup(
            session, deps, cabinet_id=world.cabinet_id, code="00000000", caller=KIOSK
        )
        return decision.outcome


def test_a_burst_of_wrong_codes_at_a_cabinet_raises_one_alarm_at_the_lockout_threshold(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    threshold = deps.lockout.cabinet_threshold
    for _ in range(threshold - 1):
        wrong_code(engine, deps, world)
        clock.advance(seconds=10)
    assert alarms_of(engine, world.cabinet_id) == []

    wrong_code(engine, deps, world)
    assert wrong_code(engine, deps, world) == "locked_out"  # still trying: counted up

    [burst] = alarms_of(engine, world.cabinet_id)
    assert (burst.kind, burst.repeats) == ("wrong_code_burst", 1)
    assert burst.detail == f"{threshold} refused pickups within 15 min"


def test_wrong_codes_spread_wider_than_the_lockout_window_raise_nothing(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock
) -> None:
    spacing = deps.lockout.window / (deps.lockout.cabinet_threshold - 1) + timedelta(seconds=1)
    for _ in range(deps.lockout.cabinet_threshold + 1):
        assert wrong_code(engine, deps, world) == "wrong_code"
        clock.advance(seconds=spacing.total_seconds())

    with Session(engine) as session:
        assert (
            alarms.refused_pickups_checked(
                session, world.cabinet_id, since=clock.now - deps.lockout.window
            )
            < deps.lockout.cabinet_threshold
        )
    assert alarms_of(engine, world.cabinet_id) == []
