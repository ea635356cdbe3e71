"""A run of door events shares one transaction: same outcome as one by one, a fraction of the
statements, still exactly once, still rows first and the audit head last.

These drive ``Ingest`` directly with real ``evt`` payloads (no broker: what is tested here
is the database side; the MQTT path is covered by ``test_event_ingest``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import event as sa_event
from sqlmodel import Session, col, select

import locker_server.link.ingest as ingest_module
from locker_contract import topics
from locker_contract.bodies import Event, EventAckMessage, EventBatch
from locker_contract.envelope import decode, encode, new_envelope
from locker_contract.types import new_message_id
from locker_server.audit import Actor, AuditEvent, AuditLog
from locker_server.audit.models import AuditCheckpoint, AuditEntry
from locker_server.db import session_scope
from locker_server.link.bridge import InboundMessage
from locker_server.link.ingest import Ingest
from locker_server.models import Door, DoorState
from locker_server.models.links import LinkEvent
from locker_server.services import DomainDeps
from locker_server.services.doors import lock_doors_by_number
from tests.link_bridge.conftest import CabinetWorld
from tests.waiting import wait_until

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
STATES = {"door.opened": DoorState.open, "door.closed": DoorState.closed}


class Acks:
    """The bridge's publisher as the cabinet would see it: the ids of every ``evt/ack``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        assert topic.endswith("/evt/ack")
        with self._lock:
            self.batches.append(list(decode(payload, EventAckMessage).body.event_ids))


def door_event(kind: str, door: int | None, seq: int) -> Event:
    return Event(
        event_id=new_message_id(),
        seq=seq,
        type=kind,
        device_time=T0 + timedelta(milliseconds=seq),
        door=door,
        data={},
    )


def opened_and_closed(count: int, doors: int = 3) -> list[Event]:
    """Doors 1..doors opened and closed in turn, one event per millisecond of cabinet clock."""
    kinds = ("door.opened", "door.closed")
    return [door_event(kinds[(n // doors) % 2], 1 + n % doors, n + 1) for n in range(count)]


def evt(cabinet: CabinetWorld, events: list[Event]) -> InboundMessage:
    payload = encode(new_envelope(cabinet.code, EventBatch(events=events)))
    return InboundMessage(
        topic=topics.evt(cabinet.code), payload=payload, retained=False, qos=1, mid=1
    )


def door_entries(engine: Engine, cabinet_id: int) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(
            AuditEntry.cabinet_id == cabinet_id, col(AuditEntry.action).startswith("door.")
        )
        return list(session.exec(query.order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]


def door_states(engine: Engine, cabinet_id: int) -> dict[int, str]:
    with Session(engine) as session:
        doors = session.exec(select(Door).where(Door.cabinet_id == cabinet_id)).all()
        return {door.number: door.door_state for door in doors}


def chain_is_intact(engine: Engine, deps: DomainDeps) -> bool:
    assert isinstance(deps.audit, AuditLog)
    with Session(engine) as session:
        return deps.audit.verify(session).ok


def stored_ids(engine: Engine, cabinet_id: int) -> list[str]:
    with Session(engine) as session:
        query = select(LinkEvent.event_id).where(LinkEvent.cabinet_id == cabinet_id)
        return list(session.exec(query).all())


def test_a_message_of_door_events_drives_every_door_and_chains_every_entry_in_order(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    events = opened_and_closed(100)
    acks = Acks()

    Ingest(engine, deps)(evt(cabinet, events), acks)

    assert acks.batches == [[e.event_id for e in events]]
    last_per_door = {e.door: STATES[e.type] for e in events}
    assert door_states(engine, cabinet.cabinet_id) == last_per_door
    entries = door_entries(engine, cabinet.cabinet_id)
    assert [json.loads(e.details)["door_number"] for e in entries] == [e.door for e in events]
    assert [e.action for e in entries] == [e.type for e in events]
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 100))
    assert all(json.loads(e.details)["state_applied"] for e in entries)
    assert chain_is_intact(engine, deps)


def test_a_message_of_100_door_events_costs_a_few_statements_not_hundreds(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    ingest = Ingest(engine, deps)
    ingest(evt(cabinet, opened_and_closed(1)), Acks())  # warm-up: link row, caches
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        ingest(evt(cabinet, opened_and_closed(100)), Acks())
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)

    # One by one this was ~9 per event (900); batched: claim, doors, head, entries, doors' updates.
    assert len(statements) <= 12, "\n".join(s[:70] for s in statements)
    assert len(door_entries(engine, cabinet.cabinet_id)) == 101


def test_events_already_stored_are_skipped_within_a_batch_and_the_new_one_applied(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    first, second, third = opened_and_closed(3)
    ingest, acks = Ingest(engine, deps), Acks()

    ingest(evt(cabinet, [first, second]), acks)
    ingest(evt(cabinet, [first, second, third]), acks)  # two old ones, a new one

    assert acks.batches[1] == [first.event_id, second.event_id, third.event_id]
    assert len(door_entries(engine, cabinet.cabinet_id)) == 3
    assert sorted(stored_ids(engine, cabinet.cabinet_id)) == sorted(
        e.event_id for e in (first, second, third)
    )


def test_a_refused_door_event_in_a_batch_is_refused_alone_and_the_rest_applied(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    fine_before, no_such_door, no_door, fine_after = (
        door_event("door.opened", 1, 1),
        door_event("door.opened", 42, 2),
        door_event("door.closed", None, 3),
        door_event("door.opened", 2, 4),
    )
    acks = Acks()

    Ingest(engine, deps)(evt(cabinet, [fine_before, no_such_door, no_door, fine_after]), acks)

    assert len(acks.batches) == 1
    with Session(engine) as session:
        rows = session.exec(select(LinkEvent).where(LinkEvent.cabinet_id == cabinet.cabinet_id))
        outcomes = {row.event_id: row.outcome for row in rows}
    assert outcomes == {
        fine_before.event_id: "applied",
        no_such_door.event_id: "refused:not_found",
        no_door.event_id: "refused:refused",
        fine_after.event_id: "applied",
    }
    states = door_states(engine, cabinet.cabinet_id)
    assert (states[1], states[2]) == (DoorState.open, DoorState.open)
    actions = [e.action for e in door_entries(engine, cabinet.cabinet_id)]
    assert actions == ["door.opened", "door.opened"]
    assert chain_is_intact(engine, deps)


def test_door_events_around_other_events_keep_the_cabinets_order(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    opened = door_event("door.opened", 2, 1)
    alarm = Event(
        event_id=new_message_id(), seq=2, type="alarm", device_time=T0, door=2,
        data={"kind": "vibration"},
    )  # fmt: skip
    closed = door_event("door.closed", 2, 3)
    confirmed = door_event("door.open_confirmed", 3, 4)

    Ingest(engine, deps)(evt(cabinet, [opened, alarm, closed, confirmed]), Acks())

    with Session(engine) as session:
        query = select(AuditEntry.action).where(AuditEntry.cabinet_id == cabinet.cabinet_id)
        actions = list(session.exec(query.order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]
    # The alarm's own entry (the alarm row raised) comes right before the report's.
    assert actions[-5:] == [
        "door.opened", "alarm.raised", "door.alarm", "door.closed", "door.open_confirmed",
    ]  # fmt: skip
    assert door_states(engine, cabinet.cabinet_id)[2] == DoorState.closed


@pytest.fixture
def batch_fails_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first door lock of a batch fails (a deadlock victim, say) after the ids were claimed."""
    calls: list[int] = []
    real = lock_doors_by_number

    def flaky(*args: Any, **kwargs: Any) -> dict[int, Door]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("deadlock detected (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "lock_doors_by_number", flaky)
    return calls


def test_a_batch_that_fails_is_applied_event_by_event_and_nothing_twice(
    engine: Engine,
    deps: DomainDeps,
    cabinet: CabinetWorld,
    batch_fails_once: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = opened_and_closed(6)
    acks = Acks()

    with caplog.at_level(logging.WARNING, logger=ingest_module.__name__):
        Ingest(engine, deps)(evt(cabinet, events), acks)

    assert "applying them one by one" in caplog.text
    assert acks.batches == [[e.event_id for e in events]]
    assert [
        json.loads(e.details)["door_number"] for e in door_entries(engine, cabinet.cabinet_id)
    ] == [e.door for e in events]
    assert len(stored_ids(engine, cabinet.cabinet_id)) == 6
    assert chain_is_intact(engine, deps)


def test_two_bridges_taking_the_same_message_at_once_apply_it_once_and_both_ack(
    engine: Engine, deps: DomainDeps, cabinet: CabinetWorld
) -> None:
    events = opened_and_closed(60)
    message = evt(cabinet, events)
    acks = Acks()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def bridge() -> None:
        try:
            ingest = Ingest(engine, deps)
            start.wait()
            ingest(message, acks)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=bridge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert acks.batches == [[e.event_id for e in events]] * 2
    assert len(door_entries(engine, cabinet.cabinet_id)) == 60
    assert len(stored_ids(engine, cabinet.cabinet_id)) == 60
    assert chain_is_intact(engine, deps)


def _waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(conn.execute(query).scalar_one())


@pytest.fixture
def api_holding_door_2(engine: Engine, cabinet: CabinetWorld) -> Iterator[Session]:
    """An API request that has locked door 2 (rows first) and has not audited yet."""
    with Session(engine) as session:
        session.execute(text("SET LOCAL lock_timeout = '5s'"))  # a deadlock fails, never hangs
        door_2 = select(Door).where(Door.cabinet_id == cabinet.cabinet_id, Door.number == 2)
        session.exec(door_2.with_for_update()).one()
        yield session


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_batch_waiting_for_a_door_an_api_request_holds_does_not_hold_the_audit_head(
    engine: Engine,
    deps: DomainDeps,
    cabinet: CabinetWorld,
    api_holding_door_2: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [door_event("door.opened", n, n) for n in (1, 2, 3)]
    acks = Acks()
    ingest = threading.Thread(target=Ingest(engine, deps), args=(evt(cabinet, events), acks))

    with caplog.at_level(logging.WARNING, logger=ingest_module.__name__):
        ingest.start()
        waited = wait_until(lambda: _waiting_for_a_lock(engine), 10)
        assert waited, "the batch never waited for door 2"
        began = time.monotonic()
        deps.audit.record(
            api_holding_door_2,
            AuditEvent(
                action="door.remote_open",
                actor=Actor("user", "7"),
                outcome="requested",
                channel="api",
            ),
        )
        appended_in = time.monotonic() - began
        api_holding_door_2.commit()
        ingest.join(30)

    assert appended_in < 0.5  # the head was free: no wait for PostgreSQL's deadlock detector
    assert "one by one" not in caplog.text  # the batch was not a deadlock victim either
    assert acks.batches == [[e.event_id for e in events]]
    assert set(door_states(engine, cabinet.cabinet_id).values()) == {DoorState.open}
    assert chain_is_intact(engine, deps)


def test_record_many_chains_like_record_and_signs_checkpoints_where_they_fall_due(
    engine: Engine, deps: DomainDeps
) -> None:
    log = AuditLog(signing_key=deps.keys.audit_signing_key, checkpoint_entries=3)
    actor = Actor("cabinet", "C-1")

    with session_scope(engine) as session:
        log.record(
            session,
            AuditEvent(action="door.opened", actor=actor, outcome="success", channel="cabinet"),
        )
    with session_scope(engine) as session:
        events = [
            AuditEvent(action="door.closed", actor=actor, outcome="success", channel="cabinet")
        ] * 7
        recorded = log.record_many(session, events)
    with session_scope(engine) as session:
        after = log.record(
            session,
            AuditEvent(action="door.opened", actor=actor, outcome="success", channel="cabinet"),
        )

    assert [r.seq for r in recorded] == list(range(recorded[0].seq, recorded[0].seq + 7))
    assert after.seq == recorded[-1].seq + 1
    with Session(engine) as session:
        assert log.verify(session).ok
        signed = list(session.exec(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)))  # type: ignore[arg-type]
        last = session.exec(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
    assert last is not None
    gaps = [b - a for a, b in zip(signed, [*signed[1:], last], strict=True)]
    assert all(gap <= 3 for gap in gaps[:-1])  # a checkpoint at least every 3 entries
    assert gaps[-1] < 3
