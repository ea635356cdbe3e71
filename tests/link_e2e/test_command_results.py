"""A remote open's final result reaches the server whatever happens to the broker.

Mosquitto restores a persistent session's queued messages after a restart but not its
shared subscriptions: what a cabinet publishes before the server has subscribed again is
acknowledged by the broker (PUBACK) and delivered to nobody. A final command result must
therefore live in the agent's journal until the server's signed ``evt/ack`` names it, as
a door event does. Runs on SQLite and PostgreSQL with the real agent, a private Mosquitto
(TLS, ACLs, persistence) and the server's bridge.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlmodel import Session

from locker_contract import CommandResultMessage, EventAckMessage, decode, topics
from locker_server.audit.models import AuditEntry
from locker_server.models.commands import LinkCommand
from locker_server.services import commands
from simulators.cabinet import SimulatedCabinet
from tests.link_e2e.conftest import ADMIN, FAST_CONTROL, LinkWorld, wait_until
from tests.link_support.clients import TestClient, connect

#: the door action outlasts the broker restart: the latch holds until the test opens it
LONG_CONFIRM = dataclasses.replace(FAST_CONTROL, confirm_window=30.0)
DOOR = 2


def _open_remotely(world: LinkWorld) -> str:
    """Issue a remote open the way the API does, published through the running bridge."""
    assert world.server.bridge is not None
    with Session(world.engine, expire_on_commit=False) as session:
        command = commands.issue_command(
            session, world.server.bridge, world.deps.keys, cabinet_id=world.cabinet_db_id,
            action="open_door", door=DOOR, reason="recipient locked out", caller=ADMIN,
            audit=world.deps.audit,
        )  # fmt: skip
    return command.command_id


def _status(world: LinkWorld, command_id: str) -> str:
    query = sa.select(LinkCommand.status).where(LinkCommand.command_id == command_id)  # type: ignore[arg-type]
    with world.engine.connect() as conn:
        return str(conn.execute(query).scalar_one())


def _audit_count(world: LinkWorld, action: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.cabinet_id == world.cabinet_db_id)  # type: ignore[arg-type]
        .where(AuditEntry.action == action)  # type: ignore[arg-type]
    )
    with world.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _server_account(world: LinkWorld) -> TestClient:
    account = world.broker.server_credentials
    return connect(world.broker, account.username, account.password)


def _reconnected(cabinet: SimulatedCabinet, connections_before: int) -> bool:
    runtime = cabinet.runtime
    return runtime.journal.meta("connection") > connections_before and runtime.link.connected


def _next_result(spy: TestClient) -> tuple[str, bytes]:
    message = spy.next_message(timeout=15)
    result = decode(message.payload, CommandResultMessage)
    return result.body.status, message.payload


def test_a_remote_open_finished_across_a_broker_restart_still_reports_succeeded_once(
    world: LinkWorld,
) -> None:
    with world.cabinet(controller=LONG_CONFIRM) as cabinet:
        cabinet.door(DOOR).faults.jammed = True  # the unlock pulse alone does not open it
        assert cabinet.runtime.link.wait_connected(15), "agent not subscribed to its cmd"
        command_id = _open_remotely(world)
        assert wait_until(lambda: _status(world, command_id) == "delivered"), "no 'received'"
        connections = cabinet.runtime.journal.meta("connection")

        # mid-command: the server is not subscribed again when the cabinet reports
        world.server.stop()
        world.broker.restart()
        assert wait_until(lambda: _reconnected(cabinet, connections)), "agent not back"
        with _server_account(world) as spy:
            spy.subscribe(topics.cmd_res(cabinet.settings.cabinet_id))
            cabinet.door(DOOR).force_open()  # the person pulls the door: the open is seen
            status, payload = _next_result(spy)  # the broker took it; no server heard it
            assert status == "succeeded"

            world.server.start()

            assert wait_until(lambda: _status(world, command_id) == "succeeded"), (
                f"the result never reached the server: {_status(world, command_id)}"
            )
            journal = cabinet.runtime.journal
            assert wait_until(lambda: not journal.pending_results()), "result not acknowledged"

            # a copy sent again (its ack lost) is acknowledged again and changes nothing
            spy.subscribe(topics.evt_ack(cabinet.settings.cabinet_id))
            spy.publish(topics.cmd_res(cabinet.settings.cabinet_id), payload)
            result_id = decode(payload, CommandResultMessage).id
            assert _acked_again(spy, result_id)
        assert wait_until(lambda: not journal.pending(limit=1)), "events not acknowledged"
        stored = world.wait_stored(1)
    assert _status(world, command_id) == "succeeded"
    assert _audit_count(world, "command.succeeded") == 1
    assert _audit_count(world, "command.result_ignored") == 0
    assert cabinet.door(DOOR).unlock_pulses == 1
    world.assert_each_event_once(stored)


def _acked_again(spy: TestClient, result_id: str) -> bool:
    """Read on until an ``evt/ack`` names ``result_id`` (the spy also sees the copy it
    sent and the acks of door events); raises ``queue.Empty`` if none comes."""
    while True:
        message = spy.next_message(timeout=15)
        if topics.parse(message.topic).kind is not topics.Kind.EVT_ACK:
            continue
        if result_id in decode(message.payload, EventAckMessage).body.result_ids:
            return True
