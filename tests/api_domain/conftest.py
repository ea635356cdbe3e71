"""API fixtures for the domain routes: the identity helper's app/client/users, plus a
ready cabinet and a way to read what the recipient was sent (unsealed from the outbox,
as the notification worker would)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from locker_server.auth.roles import Role
from locker_server.notifications import NotificationMessage
from locker_server.notifications.sealing import unseal
from tests.api import conftest as api_fixtures
from tests.api.conftest import AuthHeaders, MakeUser

# The identity helper's fixtures, shared with these tests.
app = api_fixtures.app
client = api_fixtures.client
make_user = api_fixtures.make_user
admin_headers = api_fixtures.admin_headers
audit_entries = api_fixtures.audit_entries


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@dataclass
class Setup:
    site_id: int
    cabinet_id: int
    door_ids: dict[int, int]
    recipient_id: int
    courier: AuthHeaders


@pytest.fixture
def setup(client: TestClient, admin_headers: AuthHeaders, make_user: MakeUser) -> Setup:
    """An admin builds a site with one cabinet of three doors and a consenting recipient."""
    h = admin_headers
    site = ok(client.post("/api/v1/sites", json={"name": "HQ"}, headers=h), 201)
    cabinet = ok(
        client.post(
            "/api/v1/cabinets",
            headers=h,
            json={"site_id": site["id"], "code": "CAB-1", "name": "Lobby"},
        ),
        201,
    )
    door_ids = {}
    for number, size in ((1, "S"), (2, "M"), (3, "L")):
        door = ok(
            client.post(
                f"/api/v1/cabinets/{cabinet['id']}/doors",
                headers=h,
                json={"number": number, "size": size, "board": 1, "lock": number},
            ),
            201,
        )
        door_ids[number] = door["id"]
    recipient = ok(
        client.post(
            "/api/v1/recipients",
            headers=h,
            json={
                "name": "Alice",
                "email": "alice@example.org",
                "consent_locker_delivery": True,
            },
        ),
        201,
    )
    return Setup(site["id"], cabinet["id"], door_ids, recipient["id"], make_user(Role.courier))


SentCredentials = Callable[[int], tuple[str, str]]


@pytest.fixture
def sent_credentials(app: FastAPI) -> SentCredentials:
    """The code and QR token most recently queued for the recipient of ``parcel_id``."""

    def _read(parcel_id: int) -> tuple[str, str]:
        with Session(app.state.engine) as session:
            message = session.exec(
                select(NotificationMessage)
                .where(
                    NotificationMessage.parcel_id == parcel_id,
                    col(NotificationMessage.sealed_secret).is_not(None),
                )
                .order_by(col(NotificationMessage.id).desc())
            ).first()
        assert message is not None
        assert message.sealed_secret is not None
        secret = unseal(
            app.state.keys.outbox_sealing_key,
            message.sealed_secret,
            event_id=message.event_id,
            kind=message.kind,
        )
        return secret.code, secret.qr_token

    return _read
