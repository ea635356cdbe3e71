"""Sites, cabinets and doors over HTTP: roles, site scoping (404 outside), validation,
remote open."""

from __future__ import annotations

from fastapi.testclient import TestClient

from locker_server.auth.roles import Role
from tests.api_domain.conftest import AuthHeaders, MakeUser, Setup, ok
from tests.link_commands.conftest import RecordingPublisher


def test_cabinet_codes_that_could_break_mqtt_topics_are_refused_naming_the_field(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders
) -> None:
    for code in ("a/b", "cab+1", "cab#", ""):
        response = client.post(
            "/api/v1/cabinets",
            headers=admin_headers,
            json={"site_id": setup.site_id, "code": code, "name": "x"},
        )
        assert response.status_code == 422, code
        assert response.json()["error"]["fields"][0]["field"] == "body.code"


def test_site_limited_operator_sees_only_its_sites_and_gets_404_elsewhere(
    client: TestClient, setup: Setup, make_user: MakeUser, admin_headers: AuthHeaders
) -> None:
    annex = ok(client.post("/api/v1/sites", json={"name": "Annex"}, headers=admin_headers), 201)
    operator = make_user(Role.operator, sites=[annex["id"]])
    sites = ok(client.get("/api/v1/sites", headers=operator))
    assert [s["id"] for s in sites["items"]] == [annex["id"]]
    assert ok(client.get("/api/v1/cabinets", headers=operator))["items"] == []
    hq_cabinet = f"/api/v1/cabinets/{setup.cabinet_id}"
    assert client.get(hq_cabinet, headers=operator).status_code == 404
    assert client.get(f"{hq_cabinet}/doors", headers=operator).status_code == 404
    door = f"{hq_cabinet}/doors/{setup.door_ids[1]}"
    assert (
        client.post(f"{door}/open", headers=operator, json={"reason": "let me in"}).status_code
        == 404
    )
    assert client.post("/api/v1/sites", json={"name": "Mine"}, headers=operator).status_code == 403


def test_security_staff_read_but_change_nothing(
    client: TestClient, setup: Setup, make_user: MakeUser
) -> None:
    security = make_user(Role.security)
    doors = ok(client.get(f"/api/v1/cabinets/{setup.cabinet_id}/doors", headers=security))["items"]
    assert [d["number"] for d in doors] == [1, 2, 3]
    patch = client.patch(
        f"/api/v1/cabinets/{setup.cabinet_id}", headers=security, json={"maintenance": True}
    )
    assert patch.status_code == 403
    assert client.get("/api/v1/recipients", headers=security).status_code == 403


def test_operator_takes_a_door_out_of_service_with_a_reason_and_opens_one_remotely(
    client: TestClient, setup: Setup, make_user: MakeUser, audit_entries: object
) -> None:
    operator = make_user(Role.operator, sites=[setup.site_id])
    door_url = f"/api/v1/cabinets/{setup.cabinet_id}/doors/{setup.door_ids[1]}"
    missing = client.patch(door_url, headers=operator, json={"service_state": "out_of_service"})
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["field"] == "service_reason"
    door = ok(
        client.patch(
            door_url,
            headers=operator,
            json={
                "service_state": "out_of_service",
                "service_reason": "lock coil burnt",
            },
        )
    )
    assert (door["service_state"], door["service_reason"]) == ("out_of_service", "lock coil burnt")
    publisher = RecordingPublisher()
    client.app.state.link_publisher = publisher  # type: ignore[attr-defined]
    queued = ok(
        client.post(
            f"{door_url}/open", headers=operator, json={"reason": "recipient locked keys inside"}
        ),
        202,
    )
    assert queued["status"] == "sent"
    assert [m.topic.rsplit("/", 1)[-1] for m in publisher.messages] == ["cmd"]
    [entry] = audit_entries("door.remote_open")  # type: ignore[operator]
    assert (entry.reason, entry.door_id) == ("recipient locked keys inside", setup.door_ids[1])


def test_operator_extends_every_waiting_parcel_at_a_site_after_a_storm(
    client: TestClient, setup: Setup, make_user: MakeUser
) -> None:
    operator = make_user(Role.operator, sites=[setup.site_id])
    ok(
        client.post(
            "/api/v1/parcels",
            headers=setup.courier,
            json={"tracking_number": "S1", "recipient_id": setup.recipient_id},
        ),
        201,
    )
    result = ok(
        client.post(
            f"/api/v1/sites/{setup.site_id}/extend-parcels",
            headers=operator,
            json={"hours": 24, "reason": "storm closed the building"},
        )
    )
    assert result == {"extended_parcel_ids": []}  # announced parcels have no deadline yet
