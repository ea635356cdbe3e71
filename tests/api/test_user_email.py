"""A user's e-mail address (where alarms of the user's sites are sent): set at creation,
changed or removed with PATCH, checked for shape, and read by the alarm mail's lookup."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from locker_server.auth.users import alarm_contacts
from tests.api.conftest import AuthHeaders


def test_an_operators_email_is_set_changed_and_removed_and_alarm_mail_follows_it(
    app: FastAPI,
    client: TestClient,
    admin_headers: AuthHeaders,
    make_site: Callable[[str], int],
) -> None:
    site_id = make_site("HQ")
    body = {
        "username": "olga",
        "password": "correct horse battery staple",
        "role": "operator",
        "site_ids": [site_id],
        "email": "olga@example.org",
    }
    created = client.post("/api/v1/users", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "olga@example.org"

    def mailed() -> list[str]:
        with Session(app.state.engine) as session:
            return [contact.email for contact in alarm_contacts(session, site_id)]

    assert mailed() == ["olga@example.org"]
    url = f"/api/v1/users/{user['id']}"
    changed = client.patch(url, json={"email": "o.petrova@example.org"}, headers=admin_headers)
    assert changed.json()["email"] == "o.petrova@example.org"
    untouched = client.patch(url, json={"active": True}, headers=admin_headers)
    assert untouched.json()["email"] == "o.petrova@example.org"
    assert mailed() == ["o.petrova@example.org"]

    removed = client.patch(url, json={"email": None}, headers=admin_headers)
    assert removed.json()["email"] is None
    assert mailed() == []


def test_an_email_that_is_not_an_address_is_refused_naming_the_field(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    body = {
        "username": "pavel",
        "password": "correct horse battery staple",
        "role": "operator",
        "email": "not an address",
    }
    refused = client.post("/api/v1/users", json=body, headers=admin_headers)

    assert refused.status_code == 422
    assert [f["field"] for f in refused.json()["error"]["fields"]] == ["body.email"]
