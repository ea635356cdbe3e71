"""The parcel flow over HTTP: who may do what, what is never returned, and how refusals look."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from locker_server.auth.roles import Role
from tests.api_domain.conftest import (
    AuthHeaders,
    MakeUser,
    SentCredentials,
    Setup,
    ok,
)


def _deliver(client: TestClient, setup: Setup, tracking: str = "TRK1") -> dict[str, object]:
    courier = setup.courier
    parcel = ok(
        client.post(
            "/api/v1/parcels",
            headers=courier,
            json={
                "tracking_number": tracking,
                "recipient_id": setup.recipient_id,
                "size": "M",
            },
        ),
        201,
    )
    ok(
        client.post(
            f"/api/v1/parcels/{parcel['id']}/reserve",
            headers=courier,
            json={"cabinet_id": setup.cabinet_id},
        )
    )
    deposited: dict[str, object] = ok(
        client.post(f"/api/v1/parcels/{parcel['id']}/deposit", headers=courier, json={})
    )
    return deposited


def test_courier_delivers_and_the_recipient_collects_with_the_code_sent_to_them(
    client: TestClient,
    setup: Setup,
    make_user: MakeUser,
    sent_credentials: SentCredentials,
    audit_entries: object,
) -> None:
    parcel = _deliver(client, setup)
    assert (parcel["state"], parcel["door_number"]) == ("notified", 2)
    code, qr_token = sent_credentials(int(str(parcel["id"])))
    assert code not in json.dumps(parcel)
    operator = make_user(Role.operator)
    granted = ok(
        client.post(
            "/api/v1/pickups", headers=operator, json={"cabinet_id": setup.cabinet_id, "code": code}
        )
    )
    assert granted == {
        "cabinet_id": setup.cabinet_id,
        "door_numbers": [2],
        "parcel_ids": [parcel["id"]],
    }
    history = ok(client.get(f"/api/v1/parcels/{parcel['id']}/history", headers=setup.courier))
    assert [step["to_state"] for step in history] == [
        "announced",
        "reserved",
        "deposited",
        "notified",
        "picked_up",
    ]
    again = client.post(
        "/api/v1/pickups",
        headers=operator,
        json={"cabinet_id": setup.cabinet_id, "qr_token": qr_token},
    )
    assert again.status_code == 403


def test_wrong_codes_are_refused_alike_then_locked_out_and_every_attempt_is_audited(
    client: TestClient,
    setup: Setup,
    make_user: MakeUser,
    sent_credentials: SentCredentials,
    audit_entries: object,
) -> None:
    parcel = _deliver(client, setup)
    code, _ = sent_credentials(int(str(parcel["id"])))
    wrong = "12345678" if code != "12345678" else "87654321"
    operator = make_user(Role.operator)
    bodies = []
    for _ in range(5):
        refused = client.post(
            "/api/v1/pickups",
            headers=operator,
            json={"cabinet_id": setup.cabinet_id, "code": wrong},
        )
        assert refused.status_code == 403
        bodies.append(refused.json())
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["error"]["code"] == "pickup_refused"
    locked = client.post(
        "/api/v1/pickups", headers=operator, json={"cabinet_id": setup.cabinet_id, "code": code}
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "locked_out"
    assert locked.headers["Retry-After"] == str(15 * 60)  # one lockout window
    outcomes = [e.outcome for e in audit_entries("pickup.attempt")]  # type: ignore[operator]
    assert outcomes == ["wrong_code"] * 5 + ["locked_out"]


def test_a_courier_sees_and_touches_only_its_own_carriers_parcels(
    client: TestClient, setup: Setup, make_user: MakeUser
) -> None:
    parcel = _deliver(client, setup)
    rival = make_user(Role.courier)
    assert client.get(f"/api/v1/parcels/{parcel['id']}", headers=rival).status_code == 404
    cancel = client.post(f"/api/v1/parcels/{parcel['id']}/cancel", headers=rival, json={})
    assert cancel.status_code == 404
    assert ok(client.get("/api/v1/parcels", headers=rival))["items"] == []
    mine = ok(client.get("/api/v1/parcels", headers=setup.courier))["items"]
    assert [p["id"] for p in mine] == [parcel["id"]]
    foreign = client.post(
        "/api/v1/parcels",
        headers=rival,
        json={
            "carrier_id": setup.courier.carrier_id,
            "tracking_number": "X9",
            "recipient_id": setup.recipient_id,
        },
    )
    assert foreign.status_code == 404


def test_a_courier_cannot_cancel_a_parcel_already_in_a_locker_but_an_operator_can(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders
) -> None:
    parcel = _deliver(client, setup)
    url = f"/api/v1/parcels/{parcel['id']}/cancel"
    assert client.post(url, headers=setup.courier, json={}).status_code == 403
    cancelled = ok(client.post(url, headers=admin_headers, json={"reason": "damaged"}))
    assert cancelled["state"] == "cancelled"


def test_announcement_for_a_recipient_without_consent_names_the_field(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders
) -> None:
    nora = ok(
        client.post(
            "/api/v1/recipients",
            headers=admin_headers,
            json={"name": "Nora", "email": "nora@example.org"},
        ),
        201,
    )
    refused = client.post(
        "/api/v1/parcels",
        headers=setup.courier,
        json={
            "tracking_number": "NC1",
            "recipient_id": nora["id"],
        },
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "validation_failed"
    assert [f["field"] for f in error["fields"]] == ["recipient_id"]


def test_operator_finds_parcels_by_part_of_the_tracking_number(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders
) -> None:
    for tracking in ("DHL-0001-AB", "DHL-0002-CD", "UPS-7777"):
        body = {"tracking_number": tracking, "recipient_id": setup.recipient_id}
        ok(client.post("/api/v1/parcels", headers=setup.courier, json=body), 201)

    found = ok(client.get("/api/v1/parcels?search=dhl-&limit=1", headers=admin_headers))
    exact = ok(client.get("/api/v1/parcels?tracking_number=UPS-7777", headers=admin_headers))

    assert found["total"] == 2
    assert [p["tracking_number"] for p in found["items"]] == ["DHL-0001-AB"]
    assert [p["tracking_number"] for p in exact["items"]] == ["UPS-7777"]
