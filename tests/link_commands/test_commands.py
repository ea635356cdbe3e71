"""Signed door commands: stored before published, verified by the cabinet, followed through
their lifecycle, timed out to ``outcome_unknown`` and never sent twice; the kill switch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract import (
    BadSignature,
    CommandMessage,
    CommandResult,
    decode,
    new_envelope,
    verify_command,
)
from locker_server.audit import AuditLog
from locker_server.db import session_scope
from locker_server.errors import NotFound
from locker_server.models.commands import CommandStatus, LinkCommand
from locker_server.services import DomainDeps, commands
from locker_server.services.pickup import attempt_pickup
from tests.domain.conftest import KIOSK, OPERATOR, Deliver, FakeClock, World, audit_rows
from tests.link_commands.conftest import RecordingPublisher, details_of, load_command


def _open(
    engine: Engine,
    deps: DomainDeps,
    world: World,
    publisher: RecordingPublisher | None,
    *,
    door: int | None = 4,
    action: str = "open_door",
    cabinet_id: int | None = None,
) -> LinkCommand:
    with Session(engine, expire_on_commit=False) as session:
        return commands.issue_command(
            session,
            publisher,
            deps.keys,
            cabinet_id=cabinet_id or world.cabinet_id,
            action=action,
            door=door,
            reason="recipient's keys inside",
            caller=OPERATOR,
            audit=deps.audit,
            now=deps.clock(),
        )


def _result(world_code: str, command_id: str, status: str, **extra: Any) -> Any:
    body = CommandResult(
        command_id=command_id,
        status=status,  # type: ignore[arg-type]
        reason=extra.get("reason"),
        outcome=extra.get("outcome"),
        counter=extra.get("counter"),
    )
    return new_envelope(world_code, body)


def _apply(engine: Engine, deps: DomainDeps, world: World, result: Any) -> None:
    with session_scope(engine) as session:
        commands.apply_result(session, cabinet_id=world.cabinet_id, result=result, audit=deps.audit)


def test_remote_open_is_committed_before_it_is_published_and_verifies_on_the_cabinet(
    engine: Engine, deps: DomainDeps, world: World, cabinet_trust: dict[str, Any]
) -> None:
    seen_in_database: list[str] = []

    def stored_yet(_topic: str, payload: bytes) -> None:
        command_id = decode(payload, CommandMessage).body.command_id
        seen_in_database.append(load_command(engine, command_id).status)

    publisher = RecordingPublisher(on_publish=stored_yet)
    command = _open(engine, deps, world, publisher)
    assert seen_in_database == ["created"]  # visible to another connection: committed
    [message] = publisher.on("cmd")
    assert (message.topic, message.qos, message.retain) == ("lockers/v1/CAB-1/cmd", 1, False)
    envelope = decode(message.payload, CommandMessage)
    verify_command(envelope, cabinet_trust)
    body = envelope.body
    assert (envelope.cabinet_id, body.action, body.door, body.counter) == (
        "CAB-1",
        "open_door",
        4,
        1,
    )
    assert body.command_id == command.command_id
    assert body.expires_at - body.issued_at == timedelta(seconds=60)
    assert load_command(engine, command.command_id).status == CommandStatus.sent
    [row] = audit_rows(engine, "door.remote_open")
    assert (row.actor_id, row.reason, row.door_id) == (
        "7",
        "recipient's keys inside",
        world.door_ids[4],
    )
    assert details_of(row)["command_id"] == command.command_id


def test_a_command_retargeted_to_another_cabinet_no_longer_verifies(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher,
    cabinet_trust: dict[str, Any],
) -> None:  # fmt: skip
    _open(engine, deps, world, publisher)
    envelope = publisher.commands()[0]
    forged = envelope.model_copy(update={"cabinet_id": "CAB-2"})
    with pytest.raises(BadSignature):
        verify_command(forged, cabinet_trust)


def test_counters_strictly_increase_per_cabinet(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    issued = [_open(engine, deps, world, publisher, door=n).counter for n in (1, 2, 3)]
    assert issued == [1, 2, 3]
    assert [c.body.counter for c in publisher.commands()] == [1, 2, 3]


def test_the_cabinets_answers_move_the_command_to_delivered_then_succeeded(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    command = _open(engine, deps, world, publisher)
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "received"))
    delivered = load_command(engine, command.command_id)
    assert (delivered.status, delivered.delivered_at is not None) == ("delivered", True)
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "succeeded",
                                        outcome="confirmed", counter=1))  # fmt: skip
    done = load_command(engine, command.command_id)
    assert (done.status, done.result_outcome, done.finished_at is not None) == (
        "succeeded", "confirmed", True,
    )  # fmt: skip
    [row] = audit_rows(engine, "command.succeeded")
    assert (row.actor_type, row.actor_id, row.channel) == ("cabinet", "CAB-1", "cabinet")


def test_a_rejected_command_is_audited_with_the_cabinets_reason(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    command = _open(engine, deps, world, publisher)
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "rejected",
                                        reason="replayed_counter"))  # fmt: skip
    stored = load_command(engine, command.command_id)
    assert (stored.status, stored.result_reason) == ("rejected", "replayed_counter")
    [row] = audit_rows(engine, "command.rejected")
    assert (row.outcome, row.reason) == ("rejected", "replayed_counter")


def test_results_for_unknown_or_finished_commands_are_ignored_and_audited(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    command = _open(engine, deps, world, publisher)
    _apply(engine, deps, world, _result("CAB-1", "ab" * 16, "succeeded"))
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "failed", outcome="jammed"))
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "succeeded"))
    assert load_command(engine, command.command_id).status == "failed"
    ignored = audit_rows(engine, "command.result_ignored")
    assert [row.outcome for row in ignored] == ["unknown_command", "already_final"]


def test_a_final_result_sent_again_changes_nothing_and_is_not_audited_again(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    command = _open(engine, deps, world, publisher)
    result = _result("CAB-1", command.command_id, "succeeded", outcome="confirmed", counter=1)
    _apply(engine, deps, world, result)
    finished_at = load_command(engine, command.command_id).finished_at

    _apply(engine, deps, world, result)  # the cabinet's copy after a lost ack
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "succeeded",
                                        outcome="confirmed", counter=1))  # fmt: skip

    again = load_command(engine, command.command_id)
    assert (again.status, again.finished_at) == ("succeeded", finished_at)
    assert len(audit_rows(engine, "command.succeeded")) == 1
    assert audit_rows(engine, "command.result_ignored") == []


def test_a_command_without_a_final_answer_becomes_outcome_unknown_and_is_never_resent(
    engine: Engine, deps: DomainDeps, world: World, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    command = _open(engine, deps, world, publisher)
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "received"))
    with session_scope(engine) as session:
        early = commands.expire_overdue_commands(
            session, now=clock.advance(seconds=29), audit=deps.audit
        )
    with session_scope(engine) as session:
        late = commands.expire_overdue_commands(
            session, now=clock.advance(seconds=2), audit=deps.audit
        )
    with session_scope(engine) as session:
        again = commands.expire_overdue_commands(
            session, now=clock.advance(minutes=5), audit=deps.audit
        )
    assert (early, late, again) == (0, 1, 0)
    assert load_command(engine, command.command_id).status == "outcome_unknown"
    _apply(engine, deps, world, _result("CAB-1", command.command_id, "succeeded"))
    assert load_command(engine, command.command_id).status == "outcome_unknown"
    assert len(publisher.on("cmd")) == 1  # published once, never again
    [row] = audit_rows(engine, "command.outcome_unknown")
    assert (row.outcome, details_of(row)["last_status"]) == ("unknown", "delivered")


def test_without_a_link_the_command_is_recorded_failed_and_the_caller_told(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with pytest.raises(commands.LinkUnavailable):
        _open(engine, deps, world, None)
    with Session(engine) as session:
        [stored] = session.exec(select(LinkCommand)).all()
    assert (stored.status, stored.result_reason) == ("failed", "link_unavailable")
    assert [r.outcome for r in audit_rows(engine, "command.failed")] == ["failure"]


def test_a_publish_that_fails_leaves_the_command_failed_not_sent(
    engine: Engine, deps: DomainDeps, world: World
) -> None:
    with pytest.raises(commands.LinkUnavailable):
        _open(engine, deps, world, RecordingPublisher(fail=True))
    with Session(engine) as session:
        [stored] = session.exec(select(LinkCommand)).all()
    assert (stored.status, stored.result_reason, stored.sent_at) == (
        "failed",
        "publish_failed",
        None,
    )


def test_an_unknown_door_is_refused_before_anything_is_signed(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    with pytest.raises(NotFound):
        _open(engine, deps, world, publisher, door=99)
    assert publisher.messages == []


def test_kill_switch_refuses_remote_opens_but_pickup_codes_keep_working(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    delivered = deliver()
    with session_scope(engine) as session:
        commands.set_remote_open(session, deps.audit, cabinet_id=world.cabinet_id, enabled=False,
                                 reason="remote-open incident", caller=OPERATOR)  # fmt: skip
    with pytest.raises(commands.RemoteOpenDisabled):
        _open(engine, deps, world, publisher)
    _open(engine, deps, world, publisher, door=None, action="ping")  # pings still go out
    with session_scope(engine) as session:
        decision = attempt_pickup(session, deps, cabinet_id=world.cabinet_id,
                                  code=delivered.code, caller=KIOSK)  # fmt: skip
    assert decision.granted
    assert [c.body.action for c in publisher.commands()] == ["ping"]
    refused = [r for r in audit_rows(engine, "door.remote_open") if r.outcome == "refused"]
    assert len(refused) == 1
    assert [r.reason for r in audit_rows(engine, "cabinet.remote_open_disabled")] == [
        "remote-open incident"
    ]


def test_site_kill_switch_stops_every_cabinet_of_the_site_until_switched_back(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher
) -> None:
    def switch(enabled: bool) -> None:
        with session_scope(engine) as session:
            commands.set_site_remote_open(
                session,
                deps.audit,
                site_id=world.site_id,
                enabled=enabled,
                reason="fleet alert",
                caller=OPERATOR,
            )

    switch(False)
    with pytest.raises(commands.RemoteOpenDisabled):
        _open(engine, deps, world, publisher)
    switch(True)
    assert _open(engine, deps, world, publisher).status == CommandStatus.sent
    assert len(publisher.on("cmd")) == 1


def test_audit_log_keeps_the_operator_and_reason_of_each_remote_open(
    engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher,
    audit_log: AuditLog,
) -> None:  # fmt: skip
    _open(engine, deps, world, publisher, door=1)
    _open(engine, deps, world, publisher, door=2)
    rows = audit_rows(engine, "door.remote_open")
    assert [(r.actor_type, r.reason, r.outcome) for r in rows] == [
        ("user", "recipient's keys inside", "requested")
    ] * 2
    assert [details_of(r)["counter"] for r in rows] == [1, 2]
