"""Cabinet events through real Mosquitto into the database: exactly once, acked after commit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, func
from sqlalchemy import event as sa_event
from sqlmodel import Session, select

from locker_contract import topics
from locker_contract.bodies import CommandResult, EventBatch
from locker_contract.types import new_message_id
from locker_server.audit.models import AuditEntry
from locker_server.link.bridge import InboundMessage, LinkPublisher, MqttBridge
from locker_server.models import Door, DoorState
from locker_server.models.links import LinkEvent
from tests.link_bridge.conftest import (
    WAIT_S,
    Bridges,
    CabinetClient,
    CabinetWorld,
    as_utc,
    audit_entries,
    event,
    settle,
    wait_for,
)


def stored_events(engine: Engine, cabinet_id: int) -> list[LinkEvent]:
    with Session(engine) as session:
        query = select(LinkEvent).where(LinkEvent.cabinet_id == cabinet_id)
        return list(session.exec(query).all())


def door(engine: Engine, cabinet_id: int, number: int) -> Door:
    with Session(engine) as session:
        query = select(Door).where(Door.cabinet_id == cabinet_id, Door.number == number)
        return session.exec(query).one()


def test_door_opened_reaches_the_door_state_and_the_audit_log_then_is_acked(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    opened = event("door.opened", door=2)

    cabinet_client.send_events([opened])

    assert wait_for(lambda: opened.event_id in cabinet_client.acked_ids())
    assert door(engine, cabinet.cabinet_id, 2).door_state == DoorState.open
    [entry] = audit_entries(engine, "door.opened", cabinet.cabinet_id)
    assert as_utc(entry.device_time) == opened.device_time
    assert entry.actor_type == "cabinet"
    assert entry.actor_id == cabinet.code


def test_the_same_event_and_the_same_batch_sent_again_are_applied_once_and_acked_each_time(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    first, second, third = (event("door.opened", door=n) for n in (1, 2, 3))

    cabinet_client.send_events([first, second])
    cabinet_client.send_events([first, second])  # the whole batch again
    cabinet_client.send_events([second, third])  # one old, one new

    assert wait_for(lambda: len(cabinet_client.acks) == 3)
    assert cabinet_client.acks == [
        [first.event_id, second.event_id],
        [first.event_id, second.event_id],
        [second.event_id, third.event_id],
    ]
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 3
    assert len(stored_events(engine, cabinet.cabinet_id)) == 3


def test_two_server_processes_split_the_load_and_apply_each_event_once(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    _, first_handler = bridges.start()
    _, second_handler = bridges.start()
    batches = [[event("door.closed", door=1 + n % 3)] for n in range(20)]

    for batch in batches:
        cabinet_client.send_events(batch)
        cabinet_client.send_events(batch)  # a duplicate, likely taken by the other bridge

    assert wait_for(lambda: len(cabinet_client.acks) == 40)
    assert first_handler.handled > 0
    assert second_handler.handled > 0
    assert len(stored_events(engine, cabinet.cabinet_id)) == 20
    assert len(audit_entries(engine, "door.closed", cabinet.cabinet_id)) == 20


@pytest.fixture
def failing_commits(engine: Engine) -> Iterator[list[bool]]:
    """While the list holds True, every database commit fails (a database gone away)."""
    failing = [False]

    def refuse(_conn: Connection) -> None:
        if failing[0]:
            raise RuntimeError("database connection lost (test)")

    sa_event.listen(engine, "commit", refuse)
    yield failing
    sa_event.remove(engine, "commit", refuse)


def test_no_ack_while_the_commit_fails_and_the_republished_batch_is_applied_once(
    engine: Engine,
    bridges: Bridges,
    cabinet: CabinetWorld,
    cabinet_client: CabinetClient,
    failing_commits: list[bool],
) -> None:
    bridges.start(handler_attempts=2)
    failing_commits[0] = True
    opened = event("door.opened", door=3)

    cabinet_client.send_events([opened])

    assert not wait_for(lambda: bool(cabinet_client.acks), timeout=1.0)
    assert stored_events(engine, cabinet.cabinet_id) == []
    failing_commits[0] = False
    cabinet_client.send_events([opened])  # the agent still holds it in its journal
    assert wait_for(lambda: cabinet_client.acked_ids() == [opened.event_id])
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 1


def test_events_published_while_the_server_is_down_are_ingested_once_after_its_restart(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    server_id = f"srv-restart-{cabinet.code}"
    first, _ = bridges.start(server_id)
    first.stop()
    batches = [[event("door.opened", door=1), event("door.closed", door=1)] for _ in range(5)]

    for batch in batches:
        cabinet_client.send_events(batch)
    bridges.start(server_id)  # same client id: the broker kept its session and the messages

    assert wait_for(lambda: len(cabinet_client.acks) == 5)
    assert len(stored_events(engine, cabinet.cabinet_id)) == 10
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 5


def test_an_event_the_domain_refuses_is_stored_audited_and_acked_so_it_is_not_resent_forever(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    no_such_door = event("door.opened", door=42)
    fine = event("door.opened", door=1)

    cabinet_client.send_events([no_such_door, fine])

    assert wait_for(lambda: len(cabinet_client.acks) == 1)
    outcomes = {row.event_id: row.outcome for row in stored_events(engine, cabinet.cabinet_id)}
    assert outcomes == {no_such_door.event_id: "refused:not_found", fine.event_id: "applied"}
    [refusal] = audit_entries(engine, "link.event_refused", cabinet.cabinet_id)
    assert json.loads(refusal.details)["event_type"] == "door.opened"
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 1


def test_refused_pickups_and_alarms_are_audited_with_the_cabinet_clock(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    refused = event("pickup.refused", door=None, reason="wrong_code", credential="code")
    alarm = event("alarm", door=2, kind="vibration")
    telemetry = event("telemetry.temperature", door=None, celsius=21)

    cabinet_client.send_events([refused, alarm, telemetry])

    assert wait_for(lambda: len(cabinet_client.acks) == 1)
    [attempt] = audit_entries(engine, "pickup.attempt", cabinet.cabinet_id)
    assert (attempt.outcome, attempt.reason) == ("refused", "wrong_code")
    assert as_utc(attempt.device_time) == refused.device_time
    [alarm_entry] = audit_entries(engine, "door.alarm", cabinet.cabinet_id)
    assert alarm_entry.reason == "vibration"
    assert alarm_entry.door_id is not None
    # Site-limited security staff find their cabinets' entries by site.
    assert attempt.site_id == alarm_entry.site_id == cabinet.site_id
    assert len(stored_events(engine, cabinet.cabinet_id)) == 3


def test_a_cabinet_the_server_does_not_know_is_dropped_and_audited(
    engine: Engine, bridges: Bridges, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    stranger = CabinetClient(f"UNKNOWN-{cabinet_client.code}")

    def refusals() -> list[dict[str, str]]:  # retained messages of other tests' cabinets too
        entries = audit_entries(engine, "link.unknown_cabinet")
        details = [json.loads(entry.details) for entry in entries]
        return [d for d in details if d["cabinet_code"] == stranger.code]

    try:
        stranger.send_events([event("door.opened")])
        assert wait_for(lambda: bool(refusals()))
    finally:
        stranger.close()
    assert refusals() == [{"cabinet_code": stranger.code, "kind": "evt"}]
    assert stranger.acks == []
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(LinkEvent)).one() == 0


def test_a_malformed_message_is_audited_without_its_payload(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    secret = "73915546"
    payload = b'{"v": 1, "type": "evt", "body": {"code": "' + secret.encode() + b'"}}'

    cabinet_client.publish_raw(topics.evt(cabinet.code), payload)
    cabinet_client.publish_raw(topics.evt(cabinet.code), b"\xff not json " + secret.encode())

    assert wait_for(lambda: len(audit_entries(engine, "link.malformed", cabinet.cabinet_id)) == 2)
    for entry in audit_entries(engine, "link.malformed", cabinet.cabinet_id):
        assert secret not in repr(entry.details)
        assert secret not in (entry.reason or "")
        assert entry.outcome == "refused"
    assert cabinet_client.acks == []


def test_a_command_result_is_handed_to_the_command_lifecycle(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    result = CommandResult(
        command_id=new_message_id(), status="received", reason=None, outcome=None, counter=None
    )

    cabinet_client.send(topics.Kind.CMD_RES, result)

    assert wait_for(
        lambda: bool(audit_entries(engine, "command.result_ignored", cabinet.cabinet_id))
    )


class DiesBeforeCommitting:
    """A server process that takes a message and dies before its transaction commits."""

    def __init__(self) -> None:
        self.took_it = threading.Event()
        self.died = threading.Event()
        self.handled = 0

    def __call__(self, message: InboundMessage, _publisher: LinkPublisher) -> None:
        self.handled += 1
        if message.topic.endswith("/evt"):
            self.took_it.set()
            self.died.wait(WAIT_S)
            raise RuntimeError("process killed (test)")


def test_a_server_dying_before_its_commit_gets_the_message_again_from_the_broker(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    server_id = f"srv-dies-{cabinet.code}"
    dying = DiesBeforeCommitting()
    doomed = MqttBridge(bridges.config(server_id, handler_attempts=1), dying)
    doomed.start()
    assert doomed.wait_until_subscribed(WAIT_S)
    settle(doomed, dying)
    opened = event("door.opened", door=1)

    cabinet_client.send_events([opened])
    assert dying.took_it.wait(WAIT_S)
    doomed.stop(timeout=0.2)  # gone without a PUBACK
    dying.died.set()
    bridges.start(server_id)  # the restarted process resumes the same broker session

    assert wait_for(lambda: cabinet_client.acked_ids() == [opened.event_id])
    assert len(audit_entries(engine, "door.opened", cabinet.cabinet_id)) == 1


def test_a_batch_that_overtook_an_earlier_one_waits_for_it_and_is_applied_after_it(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()
    earlier = [event("door.opened", door=3), event("door.closed", door=3)]
    later = [event("door.opened", door=3)]
    overtaking = EventBatch(events=later, after_event=earlier[-1].event_id)
    cabinet_client.send(topics.Kind.EVT, overtaking)
    marker = event("door.opened", door=5)  # handled after the bridge is done with it
    cabinet_client.send_events([marker])
    assert wait_for(lambda: marker.event_id in cabinet_client.acked_ids())

    stored = {row.event_id for row in stored_events(engine, cabinet.cabinet_id)}
    assert later[0].event_id not in stored
    assert later[0].event_id not in cabinet_client.acked_ids()

    cabinet_client.send_events(earlier)  # the cabinet publishes again, oldest first
    cabinet_client.send(topics.Kind.EVT, overtaking)
    assert wait_for(lambda: later[0].event_id in cabinet_client.acked_ids())
    door_3 = door(engine, cabinet.cabinet_id, 3).id
    entries = [
        entry
        for action in ("door.opened", "door.closed")
        for entry in audit_entries(engine, action, cabinet.cabinet_id)
        if entry.door_id == door_3
    ]
    applied = [(entry.action, as_utc(entry.device_time)) for entry in sorted(entries, key=seq_of)]
    assert applied == [(e.type, e.device_time) for e in [*earlier, *later]]


def seq_of(entry: AuditEntry) -> int:
    return entry.seq
