"""What cabinets report becomes alarms: an ``alarm`` event raises (``cleared`` ends it), a
forced-open door raises, a burst of refused pickups raises, in a door-event run as well
as alone; a re-delivered event counts nothing twice.

These drive ``Ingest`` directly with real ``evt`` payloads (no broker: the MQTT path is
covered by ``test_event_ingest``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_contract.bodies import Event
from locker_contract.types import new_message_id
from locker_server.link.ingest import Ingest
from locker_server.models import Alarm, AlarmState, Door
from locker_server.services import DomainDeps
from tests.link_bridge.conftest import CabinetWorld, as_utc, audit_entries
from tests.link_bridge.test_door_event_batches import T0, Acks, door_event, evt


def alarms_of(engine: Engine, cabinet_id: int) -> list[Alarm]:
    with Session(engine) as session:
        query = select(Alarm).where(Alarm.cabinet_id == cabinet_id).order_by(col(Alarm.id))
        return list(session.exec(query).all())


def cabinet_alarm(seq: int, kind: str, *, cleared: bool = False, door: int | None = None) -> Event:
    data: dict[str, object] = {"kind": kind, "detail": f"seen at step {seq}"}
    if cleared:
        data["cleared"] = True
    return Event(
        event_id=new_message_id(), seq=seq, type="alarm", device_time=T0 + timedelta(minutes=seq),
        door=door, data=data,
    )  # fmt: skip


def refused_pickup(seq: int, minutes: float) -> Event:
    return Event(
        event_id=new_message_id(), seq=seq, type="pickup.refused",
        device_time=T0 + timedelta(minutes=minutes), door=None,
        data={"reason": "wrong_code", "credential": "code"},
    )  # fmt: skip


def test_an_alarm_event_raises_an_alarm_with_its_context_and_a_cleared_one_ends_it(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    ingest = Ingest(engine, deps)
    raised = cabinet_alarm(1, "board_not_answering")
    again = cabinet_alarm(2, "board_not_answering")

    ingest(evt(cabinet, [raised, again]), Acks())
    ingest(evt(cabinet, [raised]), Acks())  # redelivered: already stored, counts nothing
    [alarm] = alarms_of(engine, cabinet.cabinet_id)
    assert (alarm.kind, alarm.site_id, alarm.door_number) == (
        "board_not_answering",
        cabinet.site_id,
        None,
    )
    assert (alarm.repeats, alarm.detail, alarm.state) == (1, "seen at step 2", AlarmState.open)
    assert as_utc(alarm.raised_at) == raised.device_time

    ingest(evt(cabinet, [cabinet_alarm(3, "board_not_answering", cleared=True)]), Acks())

    [alarm] = alarms_of(engine, cabinet.cabinet_id)
    assert alarm.state == AlarmState.cleared
    assert as_utc(alarm.cleared_at) == T0 + timedelta(minutes=3)
    # The report itself is audited as before, beside the alarm's own entries.
    assert [e.outcome for e in audit_entries(engine, "cabinet.alarm", cabinet.cabinet_id)] == [
        "alarm",
        "alarm",
        "cleared",
    ]
    assert len(audit_entries(engine, "alarm.cleared", cabinet.cabinet_id)) == 1


def test_a_cleared_report_ends_only_the_alarm_of_its_own_door(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    ingest = Ingest(engine, deps)
    ingest(
        evt(cabinet, [cabinet_alarm(1, "door_unobserved", door=1),
                      cabinet_alarm(2, "door_unobserved", door=2)]),
        Acks(),
    )  # fmt: skip
    ingest(evt(cabinet, [cabinet_alarm(3, "door_unobserved", door=2, cleared=True)]), Acks())

    states = [(a.door_number, a.state) for a in alarms_of(engine, cabinet.cabinet_id)]
    assert states == [(1, AlarmState.open), (2, AlarmState.cleared)]


def test_a_forced_open_door_in_a_run_of_door_events_raises_an_alarm_for_that_door(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    run = [
        door_event("door.opened", 1, 1),
        door_event("door.forced_open", 2, 2),
        door_event("door.left_open", 3, 3),
        door_event("door.closed", 3, 4),
    ]

    Ingest(engine, deps)(evt(cabinet, run), Acks())

    rows = alarms_of(engine, cabinet.cabinet_id)
    assert [(a.kind, a.door_number, a.state) for a in rows] == [
        ("door_forced_open", 2, AlarmState.open),
        ("door_left_open", 3, AlarmState.cleared),
    ]
    [raised, _left_open] = audit_entries(engine, "alarm.raised", cabinet.cabinet_id)
    assert (raised.site_id, raised.door_id) == (cabinet.site_id, _door_id(engine, cabinet, 2))


def _door_id(engine: Engine, cabinet: CabinetWorld, number: int) -> int | None:
    with Session(engine) as session:
        query = select(Door.id).where(Door.cabinet_id == cabinet.cabinet_id, Door.number == number)
        return session.exec(query).one()


def test_a_burst_of_refused_pickups_reported_by_a_cabinet_raises_a_wrong_code_alarm(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    threshold = deps.lockout.cabinet_threshold
    ingest = Ingest(engine, deps)
    # One long before (outside the window), then a burst a minute apart, sent in two messages.
    early = refused_pickup(1, -60)
    burst = [refused_pickup(2 + n, n) for n in range(threshold)]
    ingest(evt(cabinet, [early, *burst[:-1]]), Acks())
    assert alarms_of(engine, cabinet.cabinet_id) == []

    ingest(evt(cabinet, burst[-1:]), Acks())

    [alarm] = alarms_of(engine, cabinet.cabinet_id)
    assert (alarm.kind, alarm.door_number) == ("wrong_code_burst", None)
    assert alarm.detail == f"{threshold} refused pickups within 15 min"
    assert as_utc(alarm.raised_at) == burst[-1].device_time
