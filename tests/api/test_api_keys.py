"""Carrier integrations authenticate with an API key shown once and revocable at once."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from locker_server.audit.models import AuditEntry
from tests.api.conftest import AuthHeaders

Entries = Callable[..., list[AuditEntry]]


def _create_key(client: TestClient, admin: AuthHeaders, carrier_id: int) -> dict[str, object]:
    body = {"carrier_id": carrier_id, "name": "parcel feed"}
    response = client.post("/api/v1/api-keys", json=body, headers=admin)
    assert response.status_code == 201
    created: dict[str, object] = response.json()
    return created


def test_carrier_integration_uses_its_new_key_as_a_bearer_credential(
    client: TestClient,
    admin_headers: AuthHeaders,
    make_api_key: Callable[..., AuthHeaders],
    audit_entries: Entries,
) -> None:
    carrier_id = make_api_key().carrier_id
    assert carrier_id is not None
    created = _create_key(client, admin_headers, carrier_id)

    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {created['key']}"})

    assert me.status_code == 200
    assert me.json() | {"id": 0} == {
        "kind": "api_key",
        "id": 0,
        "name": "parcel feed",
        "role": "carrier",
        "site_ids": None,
        "carrier_id": carrier_id,
        "courier_id": None,
    }
    (entry,) = [
        e
        for e in audit_entries("config.api_key_created")
        if e.actor_id == str(admin_headers.user_id)
    ]
    assert str(created["key"]) not in entry.details
    assert json.loads(entry.details)["prefix"] == created["prefix"]


def test_the_full_key_is_shown_only_once(
    client: TestClient, admin_headers: AuthHeaders, make_api_key: Callable[..., AuthHeaders]
) -> None:
    carrier_id = make_api_key().carrier_id
    assert carrier_id is not None
    created = _create_key(client, admin_headers, carrier_id)

    listing = client.get(f"/api/v1/api-keys?carrier_id={carrier_id}", headers=admin_headers)

    assert str(created["key"]).startswith(f"lk_{created['prefix']}_")
    assert listing.json()["total"] == 2
    assert str(created["key"]) not in listing.text
    assert all("key" not in item for item in listing.json()["items"])


def test_a_revoked_key_stops_working_at_once_and_its_use_is_audited(
    client: TestClient,
    admin_headers: AuthHeaders,
    make_api_key: Callable[..., AuthHeaders],
    audit_entries: Entries,
) -> None:
    key_headers = make_api_key()
    assert client.get("/api/v1/users/me", headers=key_headers).status_code == 200

    revoked = client.post(
        f"/api/v1/api-keys/{key_headers.principal_id}/revoke", headers=admin_headers
    )
    refused = client.get("/api/v1/users/me", headers=key_headers)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert revoked.json()["last_used_at"] is not None
    assert refused.status_code == 401
    assert [e.reason for e in audit_entries("auth.token_rejected")] == ["api key revoked"]


def test_a_guessed_key_with_a_real_prefix_is_refused(
    client: TestClient, make_api_key: Callable[..., AuthHeaders], audit_entries: Entries
) -> None:
    real = make_api_key()["Authorization"].removeprefix("Bearer ")
    guessed = real[: -len("A")] + ("B" if real.endswith("A") else "A")

    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {guessed}"})
    malformed = client.get("/api/v1/users/me", headers={"Authorization": "Bearer lk_short"})

    assert response.status_code == malformed.status_code == 401
    reasons = [e.reason for e in audit_entries("auth.token_rejected")]
    assert reasons == ["api key unknown", "api key malformed"]


def test_a_carrier_key_cannot_reach_admin_routes(
    client: TestClient, make_api_key: Callable[..., AuthHeaders], audit_entries: Entries
) -> None:
    key_headers = make_api_key()

    response = client.get("/api/v1/users", headers=key_headers)

    assert response.status_code == 403
    (denied,) = audit_entries("access.denied")
    assert (denied.actor_type, denied.actor_id) == ("api_key", str(key_headers.principal_id))


def test_a_key_for_an_unknown_carrier_is_not_created(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    body = {"carrier_id": 999_999, "name": "ghost"}

    response = client.post("/api/v1/api-keys", json=body, headers=admin_headers)

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "carrier 999999 not found"
