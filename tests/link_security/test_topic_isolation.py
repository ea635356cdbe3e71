"""The generated ACLs: a cabinet's credential reaches only its own topics (real Mosquitto).

Every "nothing arrives" check has a control beside it that the same path works for the
topic the client IS allowed, so a broken subscriber cannot make a test pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from simulators.mosquitto import PrivateMosquitto
from tests.link_support.clients import TestClient, connect

PASSWORDS = {"CAB-A": "a-password-for-cabinet-a", "CAB-B": "a-password-for-cabinet-b"}
SUBACK_FAILURE = 0x80


def topic(cabinet: str, kind: str) -> str:
    return f"lockers/v1/{cabinet}/{kind}"


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto(cabinets=PASSWORDS) as running:
        yield running


@pytest.fixture
def server(broker: PrivateMosquitto) -> Iterator[TestClient]:
    account = broker.server_credentials
    with connect(broker, account.username, account.password) as client:
        yield client


def cabinet(
    broker: PrivateMosquitto, cabinet_id: str, session_expiry: int | None = None
) -> TestClient:
    password = PASSWORDS[cabinet_id]
    return connect(
        broker, cabinet_id, password, client_id=cabinet_id, session_expiry=session_expiry
    )


def unique() -> bytes:
    return uuid.uuid4().hex.encode()


def test_server_account_takes_cabinet_reports_through_a_shared_subscription(
    broker: PrivateMosquitto, server: TestClient
) -> None:
    assert server.subscribe("$share/locker-server/lockers/v1/+/evt")[0].value < SUBACK_FAILURE
    with cabinet(broker, "CAB-A") as cabinet_a:
        payload = unique()
        cabinet_a.publish(topic("CAB-A", "evt"), payload)
        assert server.next_message().payload == payload


@pytest.mark.parametrize("kind", ["presence", "state", "evt", "cmd/res", "req"])
def test_cabinet_a_cannot_report_in_cabinet_bs_name(
    broker: PrivateMosquitto, server: TestClient, kind: str
) -> None:
    server.subscribe("lockers/v1/#")
    with cabinet(broker, "CAB-A") as cabinet_a:
        cabinet_a.publish(topic("CAB-B", kind), b"forged by A", retain=kind == "presence")
        own = unique()
        cabinet_a.publish(topic("CAB-A", kind), own)  # control: its own topic arrives
        # the broker keeps one publisher's order: the forgery, had it passed, came first
        assert server.next_message().payload == own


@pytest.mark.parametrize("kind", ["cmd", "sync", "evt/ack", "res"])
def test_no_cabinet_can_forge_server_messages_for_itself_or_another(
    broker: PrivateMosquitto, server: TestClient, kind: str
) -> None:
    with cabinet(broker, "CAB-A") as cabinet_a, cabinet(broker, "CAB-B") as cabinet_b:
        cabinet_b.subscribe(topic("CAB-B", kind))
        cabinet_a.subscribe(topic("CAB-A", kind))
        cabinet_a.publish(topic("CAB-B", kind), b"forged by A")
        cabinet_a.publish(topic("CAB-A", kind), b"forged by A for itself")
        # control: the server's messages arrive, and first. A's publishes were acknowledged
        # (PUBACK) before the server's were sent: had they passed, they would be queued ahead
        for target, client in (("CAB-B", cabinet_b), ("CAB-A", cabinet_a)):
            real = unique()
            server.publish(topic(target, kind), real)
            assert client.next_message().payload == real


@pytest.mark.parametrize(
    ("kind", "subscription"),
    [
        ("cmd", "lockers/v1/CAB-B/cmd"),
        ("cmd", "lockers/v1/+/cmd"),
        ("cmd", "#"),
        ("res", "lockers/v1/CAB-B/res"),
        ("res", "lockers/v1/+/res"),
    ],
)
def test_cabinet_a_cannot_read_what_the_server_sends_cabinet_b(
    broker: PrivateMosquitto, server: TestClient, kind: str, subscription: str
) -> None:
    with cabinet(broker, "CAB-A") as cabinet_a, cabinet(broker, "CAB-B") as cabinet_b:
        cabinet_b.subscribe(topic("CAB-B", kind))
        # Mosquitto 2.0 grants the SUBACK; the ACL is enforced on every delivery instead.
        cabinet_a.subscribe(subscription)
        cabinet_a.subscribe(topic("CAB-A", kind))
        command, own = unique(), unique()
        server.publish(topic("CAB-B", kind), command)
        server.publish(topic("CAB-A", kind), own)
        assert cabinet_b.next_message().payload == command  # control: B gets it
        # the broker keeps the server's order: B's command, had A got it, came first
        assert cabinet_a.next_message().payload == own


def test_cabinet_a_asking_for_bs_client_id_and_session_reads_nothing_and_takes_nothing(
    broker: PrivateMosquitto, server: TestClient
) -> None:
    with cabinet(broker, "CAB-B", session_expiry=3600) as cabinet_b:
        cabinet_b.subscribe(topic("CAB-B", "cmd"))
    queued = unique()
    with connect(
        broker, "CAB-A", PASSWORDS["CAB-A"], client_id="CAB-B", session_expiry=3600
    ) as impostor:
        impostor.subscribe(topic("CAB-A", "cmd"))
        own = unique()
        server.publish(topic("CAB-B", "cmd"), queued)
        server.publish(topic("CAB-A", "cmd"), own)
        assert impostor.next_message().payload == own  # B's command, had it come, came first
    with cabinet(broker, "CAB-B", session_expiry=0) as cabinet_b:
        assert cabinet_b.next_message().payload == queued  # B's session was never A's
        later = unique()
        server.publish(topic("CAB-B", "cmd"), later)
        assert cabinet_b.next_message().payload == later  # control: B itself still reads
