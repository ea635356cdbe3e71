"""Presence (connection counter) and door snapshots (versions) through real Mosquitto."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract.bodies import SyncMessage
from locker_contract.envelope import decode
from locker_server.models import Door
from locker_server.models.links import CabinetLink
from tests.link_bridge.conftest import (
    Bridges,
    CabinetClient,
    CabinetWorld,
    audit_entries,
    wait_for,
)


def link_of(engine: Engine, cabinet_id: int) -> CabinetLink | None:
    with Session(engine) as session:
        return session.get(CabinetLink, cabinet_id)


def door_states(engine: Engine, cabinet_id: int) -> dict[int, str]:
    with Session(engine) as session:
        doors = session.exec(select(Door).where(Door.cabinet_id == cabinet_id)).all()
        return {door.number: door.door_state for door in doors}


def presence_log(engine: Engine, cabinet_id: int) -> list[tuple[str, int]]:
    entries = audit_entries(engine, "cabinet.online", cabinet_id)
    entries += audit_entries(engine, "cabinet.offline", cabinet_id)
    entries.sort(key=lambda entry: entry.seq)
    return [(entry.action, json.loads(entry.details)["connection"]) for entry in entries]


def test_a_late_offline_of_an_old_connection_never_marks_a_live_cabinet_offline(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()

    cabinet_client.send_presence("online", 1)
    cabinet_client.send_presence("online", 2)  # reconnected before its old will fired
    cabinet_client.send_presence("offline", 1)  # the broker's late will of connection 1

    assert wait_for(
        lambda: (link := link_of(engine, cabinet.cabinet_id)) is not None and link.connection == 2
    )
    wait_for(lambda: len(presence_log(engine, cabinet.cabinet_id)) > 2, timeout=0.5)
    link = link_of(engine, cabinet.cabinet_id)
    assert link is not None
    assert link.online
    assert link.agent_version == "1.2.3"
    assert link.last_seen is not None
    assert presence_log(engine, cabinet.cabinet_id) == [
        ("cabinet.online", 1),
        ("cabinet.online", 2),
    ]


def test_the_current_connections_offline_applies_and_its_late_online_does_not_revive_it(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()

    cabinet_client.send_presence("online", 5)
    cabinet_client.send_presence("offline", 5)
    cabinet_client.send_presence("online", 5)  # a redelivered online of the dead connection

    assert wait_for(lambda: len(presence_log(engine, cabinet.cabinet_id)) >= 2)
    wait_for(lambda: len(presence_log(engine, cabinet.cabinet_id)) > 2, timeout=0.5)
    link = link_of(engine, cabinet.cabinet_id)
    assert link is not None
    assert not link.online
    assert presence_log(engine, cabinet.cabinet_id) == [
        ("cabinet.online", 5),
        ("cabinet.offline", 5),
    ]


def test_a_door_snapshot_older_than_the_last_one_applied_is_ignored(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    _, handler = bridges.start()
    handled_before = handler.handled

    cabinet_client.send_state(2, {1: "open", 2: "closed"})
    cabinet_client.send_state(1, {1: "closed", 2: "open"})  # older: delayed or redelivered
    cabinet_client.send_state(2, {1: "closed", 2: "open"})  # same version again
    assert wait_for(lambda: handler.handled >= handled_before + 3)
    assert door_states(engine, cabinet.cabinet_id) == {1: "open", 2: "closed", 3: "unknown"}
    cabinet_client.send_state(3, {1: "closed", 2: "closed", 3: "unknown"})

    assert wait_for(lambda: door_states(engine, cabinet.cabinet_id)[1] == "closed")
    assert door_states(engine, cabinet.cabinet_id) == {1: "closed", 2: "closed", 3: "unknown"}
    link = link_of(engine, cabinet.cabinet_id)
    assert link is not None
    assert link.state_version == 3


def test_a_cabinet_coming_online_is_sent_the_time_and_its_full_allow_list(
    bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    bridges.start()

    cabinet_client.send_presence("online", 1)

    assert wait_for(lambda: len(cabinet_client.synced) >= 2)
    kinds = [decode(payload, SyncMessage).body.kind for payload in cabinet_client.synced]
    assert kinds[:2] == ["time", "allow_list"]


def test_a_restarted_server_replaying_retained_presence_does_not_move_last_seen(
    engine: Engine, bridges: Bridges, cabinet: CabinetWorld, cabinet_client: CabinetClient
) -> None:
    first, _ = bridges.start()
    cabinet_client.send_presence("online", 1)
    assert wait_for(
        lambda: (link := link_of(engine, cabinet.cabinet_id)) is not None and link.online
    )
    heard = link_of(engine, cabinet.cabinet_id)
    assert heard is not None
    first.stop()

    bridges.start()  # a new server process: the broker replays retained messages

    replayed = link_of(engine, cabinet.cabinet_id)
    assert replayed is not None
    assert replayed.last_seen == heard.last_seen
    assert replayed.online
    assert presence_log(engine, cabinet.cabinet_id) == [("cabinet.online", 1)]
