"""Carriers and couriers over HTTP: couriers see only their own carrier; codes never come back."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from locker_server.auth.roles import Role
from tests.api_domain.conftest import AuthHeaders, MakeUser, Setup, ok


def test_admin_registers_a_courier_whose_code_is_never_returned(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders
) -> None:
    carrier = ok(
        client.post(
            "/api/v1/carriers",
            headers=admin_headers,
            json={"name": "SwiftPost", "webhook_url": "https://x.example/h"},
        ),
        201,
    )
    created = client.post(
        "/api/v1/couriers",
        headers=admin_headers,
        json={"carrier_id": carrier["id"], "name": "Li Wei", "code": "73915546"},
    )
    courier = ok(created, 201)
    listed = ok(client.get(f"/api/v1/couriers?carrier_id={carrier['id']}", headers=admin_headers))
    assert [c["id"] for c in listed] == [courier["id"]]
    assert "73915546" not in created.text + json.dumps(listed)


def test_couriers_see_only_their_own_carrier_and_security_sees_no_directory(
    client: TestClient, setup: Setup, make_user: MakeUser
) -> None:
    own = setup.courier.carrier_id
    carriers = ok(client.get("/api/v1/carriers", headers=setup.courier))
    assert [c["id"] for c in carriers] == [own]
    rival = make_user(Role.courier)
    assert client.get(f"/api/v1/carriers/{own}", headers=rival).status_code == 404
    couriers = ok(client.get(f"/api/v1/couriers?carrier_id={own}", headers=rival))
    assert {c["carrier_id"] for c in couriers} == {rival.carrier_id}
    security = make_user(Role.security)
    assert client.get("/api/v1/couriers", headers=security).status_code == 403
    assert (
        client.post("/api/v1/carriers", headers=setup.courier, json={"name": "Mine"}).status_code
        == 403
    )
