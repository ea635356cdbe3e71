"""Local pickups against the offline allow-list: with the link down, and refusals."""

from __future__ import annotations

from locker_agent.pickup import PickupOutcome
from locker_contract import AllowListEntry
from simulators.mosquitto import PrivateMosquitto
from tests.agent_link.conftest import PRIVATE_CABINET as CABINET
from tests.agent_link.conftest import PRIVATE_PASSWORD as PASSWORD
from tests.agent_link.conftest import RigFactory
from tests.agent_link.rig import AgentRig, ServerStandIn, entry, wait_until
from tests.link_support.clients import connect

CODE = "48151623"


def supplied(rig: AgentRig, *entries: AllowListEntry) -> None:
    rig.server.send_allow_list(1, list(entries))
    assert wait_until(lambda: rig.runtime.allow_list.version == 1)


def test_offline_pickup_opens_the_door_with_the_link_down_and_is_reported_after(
    private_broker: PrivateMosquitto, make_rig: RigFactory
) -> None:
    # the cabinet may be back before the stand-in subscribes: it re-sends after 1 s
    rig = make_rig(CABINET, broker=private_broker, password=PASSWORD, ack_timeout=1.0)
    supplied(rig, entry(11, 5, CODE), entry(12, 5, CODE), entry(13, 6, "99999999"))
    private_broker.stop()
    assert wait_until(lambda: not rig.runtime.link.connected)

    outcome = rig.runtime.local_pickup(code=CODE)

    assert outcome == PickupOutcome(True, 5, (11, 12), outcome.door_outcome, None)
    assert rig.door(5).unlock_pulses == 1
    rig.door(5).close()  # the parcels count as taken once the door is shut again
    assert wait_until(lambda: _journaled(rig, "pickup")) == [
        {"mode": "offline", "parcel_ids": [11, 12], "credential": "code", "allow_list_version": 1}
    ]
    again = rig.runtime.local_pickup(code=CODE)  # the same code once more: used up
    assert not again.opened
    assert rig.door(5).unlock_pulses == 1

    private_broker.start()
    creds = private_broker.server_credentials
    with connect(private_broker, creds.username, creds.password) as client:
        server = ServerStandIn(client, CABINET, rig.signer.key)
        assert rig.runtime.link.wait_connected(10)
        picked = server.wait(lambda s: s.events_of("pickup"), 10)
        assert picked[0].data["parcel_ids"] == [11, 12]
        assert server.wait(lambda s: s.events_of("pickup.refused"))


def test_wrong_code_is_refused_journaled_without_the_code_and_opens_nothing(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    supplied(rig, entry(21, 2, CODE))

    outcome = rig.runtime.local_pickup(code="00000000", door=2)

    assert outcome == PickupOutcome(False, 2, reason="no_match")
    refused = rig.server.wait(lambda s: s.events_of("pickup.refused", 2))
    assert refused[0].data == {"reason": "no_match", "credential": "code"}
    assert all(rig.door(n).unlock_pulses == 0 for n in range(1, 9))
    stored = rig.runtime.journal.path.read_bytes() + _wal(rig)
    assert b"00000000" not in stored
    assert CODE.encode() not in stored


def _journaled(rig: AgentRig, event_type: str) -> list[dict[str, object]]:
    return [dict(e.data) for e in rig.runtime.journal.pending() if e.type == event_type]


def _wal(rig: AgentRig) -> bytes:
    wal = rig.runtime.journal.path.with_name(rig.runtime.journal.path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_expired_entry_never_opens_a_door(cabinet_id: str, make_rig: RigFactory) -> None:
    rig = make_rig(cabinet_id)
    supplied(rig, entry(31, 3, CODE, expires_in=-1))

    outcome = rig.runtime.local_pickup(code=CODE)

    assert outcome.reason == "expired"
    assert rig.door(3).unlock_pulses == 0


def test_pickup_with_the_link_up_is_also_checked_locally_and_reported_once_the_door_closes(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    supplied(rig, entry(41, 4, CODE))

    outcome = rig.runtime.local_pickup(code=CODE, door=4)

    assert outcome.opened
    assert rig.door(4).unlock_pulses == 1
    assert rig.server.wait(lambda s: s.events_of("door.open_confirmed", 4))
    assert not rig.server.events_of("pickup")
    rig.door(4).close()
    picked = rig.server.wait(lambda s: s.events_of("pickup", 4))
    assert picked[0].data["parcel_ids"] == [41]
    assert rig.server.wait(lambda s: s.events_of("door.open_confirmed", 4))
    assert not rig.server.events_of("door.forced_open", 4)
