"""Bad input gets a 422 naming the field, never a database conflict or a silent fallback.

A change body may leave a field out (it keeps its value) but may not set a field that
cannot be empty to ``null``; names need visible characters; time zones must exist;
numbers and booleans must arrive as JSON numbers and booleans.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AuthHeaders
from tests.api_domain.conftest import Setup, ok


def refused_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    return [field["field"] for field in body["fields"]]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/sites/{site_id}", "name"),
        ("/api/v1/sites/{site_id}", "timezone"),
        ("/api/v1/cabinets/{cabinet_id}", "name"),
        ("/api/v1/cabinets/{cabinet_id}", "in_service"),
        ("/api/v1/recipients/{recipient_id}", "name"),
        ("/api/v1/recipients/{recipient_id}", "language"),
        ("/api/v1/recipients/{recipient_id}", "consent_locker_delivery"),
    ],
)
def test_operator_clearing_a_required_field_is_told_which_field(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup, path: str, field: str
) -> None:
    url = path.format(
        site_id=setup.site_id, cabinet_id=setup.cabinet_id, recipient_id=setup.recipient_id
    )
    response = client.patch(url, json={field: None}, headers=admin_headers)
    assert refused_fields(response) == [f"body.{field}"]


def test_admin_clearing_a_users_activity_is_told_which_field(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    response = client.patch(
        f"/api/v1/users/{admin_headers.user_id}", json={"active": None}, headers=admin_headers
    )
    assert refused_fields(response) == ["body.active"]


def test_optional_text_can_still_be_cleared_with_null(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup
) -> None:
    url = f"/api/v1/recipients/{setup.recipient_id}"
    assert (
        ok(client.patch(url, json={"department": None}, headers=admin_headers))["department"]
        is None
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe/Berlin ", "../etc/passwd"])
def test_site_with_an_unknown_time_zone_is_refused(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup, zone: str
) -> None:
    created = client.post(
        "/api/v1/sites", json={"name": "Annex", "timezone": zone}, headers=admin_headers
    )
    assert refused_fields(created) == ["body.timezone"]
    changed = client.patch(
        f"/api/v1/sites/{setup.site_id}", json={"timezone": zone}, headers=admin_headers
    )
    assert refused_fields(changed) == ["body.timezone"]


def test_site_in_a_real_time_zone_is_kept(client: TestClient, admin_headers: AuthHeaders) -> None:
    site = ok(
        client.post(
            "/api/v1/sites",
            json={"name": "Berlin", "timezone": "Europe/Berlin"},
            headers=admin_headers,
        ),
        201,
    )
    assert site["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sites", {"name": "   "}),
        ("/api/v1/recipients", {"name": "\t\n"}),
        ("/api/v1/carriers", {"name": "  "}),
    ],
)
def test_a_name_of_only_whitespace_is_refused(
    client: TestClient, admin_headers: AuthHeaders, path: str, body: dict[str, Any]
) -> None:
    assert refused_fields(client.post(path, json=body, headers=admin_headers)) == ["body.name"]


def test_a_boolean_where_a_number_belongs_is_refused(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup
) -> None:
    door = {"number": True, "size": "S", "board": 0, "lock": 9}
    response = client.post(
        f"/api/v1/cabinets/{setup.cabinet_id}/doors", json=door, headers=admin_headers
    )
    assert refused_fields(response) == ["body.number"]


def test_a_number_where_a_boolean_belongs_is_refused(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup
) -> None:
    response = client.patch(
        f"/api/v1/cabinets/{setup.cabinet_id}", json={"maintenance": 1}, headers=admin_headers
    )
    assert refused_fields(response) == ["body.maintenance"]


def test_a_reason_of_only_whitespace_is_refused(
    client: TestClient, admin_headers: AuthHeaders, setup: Setup
) -> None:
    body = {"maintenance": True, "maintenance_reason": "   "}
    response = client.patch(
        f"/api/v1/cabinets/{setup.cabinet_id}", json=body, headers=admin_headers
    )
    assert refused_fields(response) == ["body.maintenance_reason"]
