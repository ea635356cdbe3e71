"""Door events: journal first, published in order, deleted only on evt/ack, replayed after
a broker restart, and surviving an agent killed with SIGKILL."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from locker_agent.boards import DoorState
from locker_agent.config import parse_settings
from locker_agent.journal import EventClass, Journal
from locker_agent.runtime import AgentRuntime
from simulators.bus import SimulatedBus
from simulators.mosquitto import PrivateMosquitto
from tests.agent_link.conftest import (
    PRIVATE_CABINET,
    PRIVATE_PASSWORD,
    ObserverFactory,
    RigFactory,
    private_broker_settings,
)
from tests.agent_link.rig import (
    FAST_CONTROL,
    FAST_LINK,
    ServerStandIn,
    Signer,
    agent_document,
    start_bus,
    wait_until,
    write_agent_toml,
)
from tests.link_support.clients import connect


def test_door_events_reach_the_server_with_the_state_and_leave_only_when_acknowledged(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    assert rig.server.wait(lambda s: s.states and s.states[-1].doors["4"].state == "closed")

    rig.door(4).force_open()

    assert rig.server.wait(lambda s: s.events_of("door.forced_open", 4))
    assert rig.server.wait(lambda s: s.states[-1].doors["4"].state == "open")
    versions = [state.version for state in rig.server.states]
    assert versions == sorted(versions)  # in order; QoS 1 may deliver one twice
    rig.server.ping(rig.signer)  # so the runtime has handled the events' PUBACK
    assert rig.runtime.journal.counts()[EventClass.CUSTODY] == 2  # opened + forced_open

    rig.server.ack_everything_seen()

    assert wait_until(lambda: rig.runtime.journal.counts()[EventClass.CUSTODY] == 0)


def test_unacknowledged_events_are_published_again_with_the_same_ids(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id, ack_timeout=0.5)
    rig.door(6).force_open()
    opened = rig.server.wait(lambda s: s.events_of("door.opened", 6))

    assert rig.server.wait(lambda s: len(s.events_of("door.opened", 6)) >= 2, timeout=5)

    assert {e.event_id for e in rig.server.events_of("door.opened", 6)} == {opened[0].event_id}
    rig.server.ack_everything_seen()
    assert wait_until(lambda: not rig.runtime.journal.pending())

    rig.door(5).force_open()  # left unacknowledged: its re-send shows an ack timeout passed
    assert rig.server.wait(lambda s: len(s.events_of("door.opened", 5)) >= 2, timeout=5)
    first_of_door_5 = next(
        index for index, batch in enumerate(rig.server.batches) if any(e.door == 5 for e in batch)
    )
    after = [e for batch in rig.server.batches[first_of_door_5:] for e in batch]
    assert [e.door for e in after if e.door != 5] == []  # door 6's events: never again


def test_events_replay_in_order_after_a_broker_restart_and_none_is_lost(
    private_broker: PrivateMosquitto, tmp_path: Path
) -> None:
    broker, cabinet_id, password = private_broker, PRIVATE_CABINET, PRIVATE_PASSWORD
    bus, port = start_bus()
    signer = Signer(cabinet_id)
    document = agent_document(
        cabinet_id,
        tmp_path / "journal.sqlite3",
        signer.public_key,
        port=broker.tls_port,
        password=password,
        tls=True,
        ca_file=broker.ca_file,
    )
    runtime = AgentRuntime(
        parse_settings(document),
        serial_port=port,
        link_settings=FAST_LINK,
        controller_settings=FAST_CONTROL,
        ack_timeout=1.0,  # the stand-in may subscribe after the cabinet's first replay
        mqtt=private_broker_settings(cabinet_id, broker, password),
    )
    creds = broker.server_credentials
    try:
        runtime.start()
        assert runtime.link.wait_connected(5)
        with connect(broker, creds.username, creds.password) as first_client:
            first = ServerStandIn(first_client, cabinet_id, signer.key)
            _toggle(bus, runtime, (1, 2))
            assert first.wait(lambda s: len(s.events) >= 6)  # opened, forced_open, closed
            first.ping(signer)  # their PUBACKs handled: nothing of them is left in flight
        broker.stop()
        assert wait_until(lambda: not runtime.link.connected)
        _toggle(bus, runtime, (3, 4, 5))  # during the outage: journaled, not published
        assert wait_until(lambda: len(runtime.journal.pending()) >= 10)
        broker.start()

        with connect(broker, creds.username, creds.password) as second_client:
            second = ServerStandIn(second_client, cabinet_id, signer.key)
            assert runtime.link.wait_connected(10)
            journaled = [e.event_id for e in runtime.journal.pending(limit=1000)]
            assert second.wait(lambda s: {e.event_id for e in s.events} >= set(journaled), 10)
            replayed = [e.seq for e in second.events]
            assert replayed == sorted(replayed)  # oldest first, the pre-outage ones included
            assert [e.event_id for e in second.events[: len(journaled)]] == journaled
            second.ack_everything_seen()
            assert wait_until(lambda: not runtime.journal.pending())
    finally:
        runtime.stop()
        bus.stop()


def _toggle(bus: SimulatedBus, runtime: AgentRuntime, doors: tuple[int, ...]) -> None:
    """Open and close each door, each move held until the cabinet's poll has seen it."""
    for door in doors:
        bus.board(1).door(door).force_open()
        assert wait_until(lambda: runtime.door_state(door) is DoorState.OPEN)  # noqa: B023
        bus.board(1).door(door).close()
        assert wait_until(lambda: runtime.door_state(door) is DoorState.CLOSED)  # noqa: B023


def _pending_in(journal_path: Path) -> int:
    """Events the (running) agent's journal still holds, read beside it (WAL allows it)."""
    with closing(sqlite3.connect(journal_path)) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def _start_agent(config: Path, serial_port: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "locker_agent.cli", "run", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--serial-port", serial_port, "-v"], stderr=subprocess.DEVNULL
    )


def test_agent_killed_with_sigkill_publishes_its_unacknowledged_event_again_then_never(
    cabinet_id: str, tmp_path: Path, observe: ObserverFactory
) -> None:
    bus, port = start_bus()
    journal_path = tmp_path / "journal.sqlite3"
    signer = Signer(cabinet_id)
    config = write_agent_toml(
        tmp_path / "agent.toml", agent_document(cabinet_id, journal_path, signer.public_key)
    )
    server = ServerStandIn(observe(), cabinet_id, signer.key)
    try:
        agent = _start_agent(config, port)
        assert server.wait(lambda s: s.presences and s.presences[-1].status == "online", 10)
        bus.board(1).door(7).force_open()
        first = server.wait(lambda s: s.events_of("door.forced_open", 7), 10)
        agent.send_signal(signal.SIGKILL)  # no goodbye, no flush, no checkpoint
        agent.wait(timeout=10)
        assert server.wait(lambda s: s.presences[-1].status == "offline")  # the last will

        agent = _start_agent(config, port)
        assert server.wait(lambda s: len(s.events_of("door.forced_open", 7)) == 2, 10)
        assert {e.event_id for e in server.events_of("door.forced_open", 7)} == {first[0].event_id}
        server.ack_everything_seen()
        assert wait_until(lambda: _pending_in(journal_path) == 0, 10)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=10) == 0

        agent = _start_agent(config, port)
        assert server.wait(lambda s: s.presences[-1].status == "online", 10)
        server.ping(signer)  # what the restart re-sends arrives before the answer
        assert len(server.events_of("door.forced_open", 7)) == 2  # acknowledged: never again
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=10) == 0
        connections = [p.connection for p in server.presences if p.status == "online"]
        assert connections == sorted(set(connections))
        assert len(connections) == 3
        journal = Journal.open(journal_path)
        assert journal.pending() == []
        journal.close()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        bus.stop()


def test_power_cut_copy_of_a_running_journal_still_publishes_its_unacknowledged_event(
    cabinet_id: str, make_rig: RigFactory, tmp_path: Path
) -> None:
    """The files as a power cut leaves them: copied while the agent runs, WAL unmerged."""
    rig = make_rig(cabinet_id)
    rig.door(2).force_open()
    seen = rig.server.wait(lambda s: s.events_of("door.forced_open", 2))
    cut = tmp_path / "after-the-cut"
    cut.mkdir()
    live = rig.runtime.journal.path
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{live}{suffix}", cut / f"journal.sqlite3{suffix}")
    rig.runtime.stop()

    revived = make_rig(cabinet_id, journal=cut / "journal.sqlite3")

    again = revived.server.wait(lambda s: s.events_of("door.forced_open", 2), 5)
    assert [e.event_id for e in again] == [seen[0].event_id]
    assert revived.server.wait(lambda s: s.presences and s.presences[-1].connection == 2)


def test_expiry_is_judged_on_the_server_clock_learned_from_sync(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    """A cabinet whose clock runs an hour slow still refuses a command expired on the server."""
    rig = make_rig(cabinet_id)
    rig.server.send_time(datetime.now(UTC) + timedelta(hours=1))
    assert wait_until(lambda: rig.runtime.guard.clock_offset.offset > timedelta(minutes=59))
    command_id, payload = rig.signer.command("open_door", door=1, expires_in=600)

    rig.send(payload)

    assert rig.server.result(command_id).status == "expired"
    assert rig.door(1).unlock_pulses == 0
