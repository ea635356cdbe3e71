"""The offline allow-list: a full list (after ``time``) when a cabinet comes online, then
deltas after every change, versions strictly increasing; hashes a cabinet can check with
only its own key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from locker_contract import cabinet_pickup_key, credential_hash, verify_message
from locker_server.db import session_scope
from locker_server.models import Cabinet
from locker_server.models.links import CabinetLink
from locker_server.services import DomainDeps, commands
from locker_server.services import cabinet_sync as sync
from locker_server.services.parcels import cancel, expire_overdue, reissue_credentials
from locker_server.services.pickup import attempt_pickup
from tests.domain.conftest import KIOSK, OPERATOR, Deliver, FakeClock, World, new_recipient
from tests.link_commands.conftest import RecordingPublisher


def _online(engine: Engine, deps: DomainDeps, world: World, publisher: RecordingPublisher) -> None:
    with session_scope(engine) as session:
        session.add(CabinetLink(cabinet_id=world.cabinet_id, online=True, connection=1))
    with session_scope(engine) as session:
        sync.on_cabinet_online(session, publisher, keys=deps.keys, cabinet_id=world.cabinet_id)


def _push(engine: Engine, deps: DomainDeps, publisher: RecordingPublisher) -> int:
    with session_scope(engine) as session:
        return sync.push_deltas(session, publisher, keys=deps.keys)


def test_coming_online_sends_time_then_a_full_list_a_cabinet_can_check_offline_then_reservations(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    first, second = deliver(), deliver(world.bob)
    _online(engine, deps, world, publisher)
    kinds = [s.body.kind for s in publisher.syncs()]
    assert kinds == ["time", "allow_list", "reservations"]
    [full] = publisher.allow_lists()
    assert full.full
    assert full.removed == []
    assert publisher.times()[0].version < full.version
    cabinet_key = cabinet_pickup_key(deps.keys.pickup_hmac_key, world.cabinet_id)
    by_parcel = {entry.parcel_id: entry for entry in full.entries}
    assert set(by_parcel) == {first.parcel_id, second.parcel_id}
    for parcel in (first, second):
        entry = by_parcel[parcel.parcel_id]
        assert entry.door == parcel.door_number
        assert entry.code_hash == credential_hash(cabinet_key, "code", parcel.code)
        assert entry.qr_hash == credential_hash(cabinet_key, "qr", parcel.qr_token)
    assert all(m.retain is False and m.qos == 1 for m in publisher.on("sync"))


def test_every_credential_change_reaches_the_cabinet_as_a_delta_with_a_higher_version(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    people = [new_recipient(engine, deps, name) for name in ("Ann", "Ben", "Cy", "Di", "Ed")]
    kept, reissued, cancelled, collected = (deliver(person) for person in people[:4])
    _online(engine, deps, world, publisher)
    assert _push(engine, deps, publisher) == 0  # nothing changed: nothing sent

    added = deliver(people[4])
    with session_scope(engine) as session:
        reissue_credentials(session, deps, parcel_id=reissued.parcel_id, caller=OPERATOR)
        cancel(session, deps, parcel_id=cancelled.parcel_id, caller=OPERATOR,
               reason="sender recalled it", as_operator=True)  # fmt: skip
        attempt_pickup(session, deps, cabinet_id=world.cabinet_id, code=collected.code,
                       caller=KIOSK)  # fmt: skip
    assert _push(engine, deps, publisher) == 1
    delta = publisher.allow_lists()[-1]
    assert not delta.full
    assert sorted(e.parcel_id for e in delta.entries) == sorted(
        [added.parcel_id, reissued.parcel_id]
    )
    assert sorted(delta.removed) == sorted([cancelled.parcel_id, collected.parcel_id])

    clock.advance(hours=80)
    with session_scope(engine) as session:
        expire_overdue(session, deps, now=clock())
    assert _push(engine, deps, publisher) == 1
    assert sorted(publisher.allow_lists()[-1].removed) == sorted(
        [kept.parcel_id, reissued.parcel_id, added.parcel_id]
    )
    versions = [s.body.version for s in publisher.syncs()]
    assert versions == sorted(set(versions))  # strictly increasing


def test_a_failed_publish_makes_the_next_allow_list_a_full_one(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    _online(engine, deps, world, publisher)
    deliver()
    broken = RecordingPublisher(fail=True)
    assert _push(engine, deps, broken) == 1  # tried, and failed on the wire
    deliver()
    assert _push(engine, deps, publisher) == 1
    latest = publisher.allow_lists()[-1]
    assert latest.full
    assert len(latest.entries) == 2


def test_offline_cabinets_get_no_deltas_but_a_full_list_when_they_return(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    deliver()
    assert _push(engine, deps, publisher) == 0
    assert publisher.messages == []
    _online(engine, deps, world, publisher)
    assert [len(a.entries) for a in publisher.allow_lists()] == [1]


def test_one_housekeeping_pass_times_out_silent_commands_and_pushes_new_parcels(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver, clock: FakeClock,
    publisher: RecordingPublisher,
) -> None:  # fmt: skip
    _online(engine, deps, world, publisher)
    with Session(engine, expire_on_commit=False) as session:
        commands.issue_command(
            session, publisher, deps.keys, cabinet_id=world.cabinet_id, action="ping", door=None,
            reason=None, caller=OPERATOR, audit=deps.audit, now=clock(),
        )  # fmt: skip
    delivered = deliver()
    timed_out, pushed = sync.housekeeping(
        engine, publisher, keys=deps.keys, audit=deps.audit, now=clock.advance(seconds=31)
    )
    assert (timed_out, pushed) == (1, 1)
    assert [e.parcel_id for e in publisher.allow_lists()[-1].entries] == [delivered.parcel_id]
    assert len(publisher.on("cmd")) == 1


def test_every_sync_is_signed_with_the_key_the_cabinet_trusts_and_names_its_cabinet(
    engine: Engine, deps: DomainDeps, world: World, deliver: Deliver,
    publisher: RecordingPublisher, cabinet_trust: dict[str, Any],
) -> None:  # fmt: skip
    deliver()
    _online(engine, deps, world, publisher)
    deliver()
    assert _push(engine, deps, publisher) == 1

    sent = publisher.syncs()
    assert [s.body.kind for s in sent] == ["time", "allow_list", "reservations", "allow_list"]
    for message in sent:
        verify_message(message, cabinet_trust)  # raises BadSignature otherwise
        assert message.cabinet_id == _cabinet_code(engine, world)


def _cabinet_code(engine: Engine, world: World) -> str:
    with Session(engine) as session:
        cabinet = session.get(Cabinet, world.cabinet_id)
        assert cabinet is not None
        return cabinet.code
