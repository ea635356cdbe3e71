"""The directory over HTTP: couriers see only their own carrier, codes never come back,
recipients are found by name or e-mail, and every list answers one page envelope."""

from __future__ import annotations

import json

import pytest
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
    listed = ok(client.get(f"/api/v1/couriers?carrier_id={carrier['id']}", headers=admin_headers))[
        "items"
    ]
    assert [c["id"] for c in listed] == [courier["id"]]
    assert "73915546" not in created.text + json.dumps(listed)


def test_couriers_see_only_their_own_carrier_and_security_sees_no_directory(
    client: TestClient, setup: Setup, make_user: MakeUser
) -> None:
    own = setup.courier.carrier_id
    carriers = ok(client.get("/api/v1/carriers", headers=setup.courier))["items"]
    assert [c["id"] for c in carriers] == [own]
    rival = make_user(Role.courier)
    assert client.get(f"/api/v1/carriers/{own}", headers=rival).status_code == 404
    couriers = ok(client.get(f"/api/v1/couriers?carrier_id={own}", headers=rival))["items"]
    assert {c["carrier_id"] for c in couriers} == {rival.carrier_id}
    security = make_user(Role.security)
    assert client.get("/api/v1/couriers", headers=security).status_code == 403
    assert (
        client.post("/api/v1/carriers", headers=setup.courier, json={"name": "Mine"}).status_code
        == 403
    )


def test_operator_finds_a_recipient_by_part_of_the_name_or_e_mail_one_page_at_a_time(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    for name, email in [
        ("Maria Lopez", "maria@example.org"),
        ("Mario Rossi", "rossi@example.org"),
        ("Bob Smith", "bob.maria@example.org"),
        ("100% Sure", None),
    ]:
        ok(
            client.post(
                "/api/v1/recipients", json={"name": name, "email": email}, headers=admin_headers
            ),
            201,
        )

    first = ok(client.get("/api/v1/recipients?search=MARI&limit=2", headers=admin_headers))
    rest = ok(client.get("/api/v1/recipients?search=mari&limit=2&offset=2", headers=admin_headers))
    literal = ok(client.get("/api/v1/recipients?search=%25", headers=admin_headers))

    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    names = [r["name"] for r in first["items"] + rest["items"]]
    assert names == ["Maria Lopez", "Mario Rossi", "Bob Smith"]
    assert [r["name"] for r in literal["items"]] == [
        "100% Sure"
    ]  # % is a character, not a wildcard


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sites",
        "/api/v1/cabinets",
        "/api/v1/recipients",
        "/api/v1/carriers",
        "/api/v1/couriers",
        "/api/v1/parcels",
        "/api/v1/cabinets/{cabinet_id}/doors",
    ],
)
def test_every_list_answers_one_page_envelope(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup, path: str
) -> None:
    page = ok(
        client.get(path.format(cabinet_id=setup.cabinet_id) + "?limit=1", headers=admin_headers)
    )

    assert set(page) == {"items", "total", "limit", "offset"}
    assert page["limit"] == 1
    assert len(page["items"]) == min(1, page["total"])
