"""A door reserved (or released) through the API reaches its cabinet at once, so a courier
can deposit there even if the cabinet's link drops before the courier arrives."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_contract import ReservationSync
from tests.api_domain import conftest as api_domain
from tests.api_domain.conftest import Setup, ok
from tests.link_commands.conftest import RecordingPublisher

app = api_domain.app
client = api_domain.client
make_user = api_domain.make_user
admin_headers = api_domain.admin_headers
setup = api_domain.setup


def _announce(client: TestClient, setup: Setup, tracking: str) -> int:
    body = {"tracking_number": tracking, "recipient_id": setup.recipient_id, "size": "M"}
    parcel = ok(client.post("/api/v1/parcels", headers=setup.courier, json=body), 201)
    return int(parcel["id"])


def _reservations(publisher: RecordingPublisher) -> list[ReservationSync]:
    return [s.body for s in publisher.syncs() if isinstance(s.body, ReservationSync)]


def test_a_reservation_made_and_cancelled_over_http_is_sent_to_the_cabinet_each_time(
    app: FastAPI, client: TestClient, setup: Setup
) -> None:
    publisher = RecordingPublisher()
    app.state.link_publisher = publisher
    parcel_id = _announce(client, setup, "TRK-RES-1")

    url = f"/api/v1/parcels/{parcel_id}/reserve"
    reserved = ok(client.post(url, headers=setup.courier, json={"cabinet_id": setup.cabinet_id}))
    [held] = _reservations(publisher)
    ok(client.post(f"/api/v1/parcels/{parcel_id}/cancel", headers=setup.courier, json={}))
    released = _reservations(publisher)[-1]

    assert [(e.parcel_id, e.door) for e in held.entries] == [(parcel_id, reserved["door_number"])]
    assert released.entries == []
    assert released.version > held.version
    assert all(m.topic == "lockers/v1/CAB-1/sync" for m in publisher.on("sync"))


@pytest.mark.parametrize(
    "publisher", [None, RecordingPublisher(fail=True)], ids=["no link", "send fails"]
)
def test_a_reservation_stands_when_it_cannot_be_sent(
    app: FastAPI, client: TestClient, setup: Setup, publisher: RecordingPublisher | None
) -> None:
    app.state.link_publisher = publisher
    parcel_id = _announce(client, setup, "TRK-RES-2")
    url = f"/api/v1/parcels/{parcel_id}/reserve"

    reserved = ok(client.post(url, headers=setup.courier, json={"cabinet_id": setup.cabinet_id}))

    assert reserved["state"] == "reserved"
    assert ok(client.get(f"/api/v1/parcels/{parcel_id}", headers=setup.courier))["state"] == (
        "reserved"
    )
