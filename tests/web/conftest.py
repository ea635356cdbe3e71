"""Console fixtures: the API's app fixtures on the whole application (API + pages), and a
browser-like client that signs in through the form."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_server.auth.roles import Role
from locker_server.config import Settings
from locker_server.web.app import create_console_app
from tests.api import conftest as api_fixtures
from tests.api.conftest import TEST_PASSWORD, AuthHeaders, MakeUser

client = api_fixtures.client
make_user = api_fixtures.make_user
admin_headers = api_fixtures.admin_headers
make_site = api_fixtures.make_site
audit_entries = api_fixtures.audit_entries

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_console_app(settings)
    yield application
    application.state.engine.dispose()


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


SignIn = Callable[..., TestClient]


@pytest.fixture
def browser(app: FastAPI) -> Iterator[Callable[[], TestClient]]:
    """New cookie jars (one per person), without following redirects."""
    opened: list[TestClient] = []

    def _open() -> TestClient:
        jar = TestClient(app, follow_redirects=False)
        jar.__enter__()
        opened.append(jar)
        return jar

    yield _open
    for jar in opened:
        jar.__exit__(None, None, None)


@pytest.fixture
def signed_in(browser: Callable[[], TestClient], make_user: MakeUser) -> SignIn:
    """A browser signed in through the form as a new user of ``role`` (and ``sites``)."""

    def _sign_in(role: str, sites: list[int] | None = None) -> TestClient:
        username = unique_name(role)
        user: AuthHeaders = make_user(role, sites=sites, username=username)
        jar = browser()
        csrf = csrf_of(jar.get("/sign-in").text)
        answer = jar.post(
            "/sign-in", data={"username": username, "password": TEST_PASSWORD, "csrf_token": csrf}
        )
        assert answer.status_code == 303, answer.text
        jar.user_id = user.user_id  # type: ignore[attr-defined]
        jar.username = username  # type: ignore[attr-defined]
        return jar

    return _sign_in


def unique_name(role: str) -> str:
    return f"{role}-{secrets.token_hex(4)}"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def delivered(
    client: TestClient, admin_headers: AuthHeaders, make_user: MakeUser
) -> dict[str, Any]:
    """A site with a cabinet of two doors and one parcel deposited in it (through the API)."""
    h = admin_headers
    site = _ok(client.post("/api/v1/sites", json={"name": "Town hall"}, headers=h), 201)
    cabinet = _ok(
        client.post("/api/v1/cabinets", headers=h,
                    json={"site_id": site["id"], "code": "CAB-WEB", "name": "Lobby"}),
        201,
    )  # fmt: skip
    doors = [
        _ok(client.post(f"/api/v1/cabinets/{cabinet['id']}/doors", headers=h,
                        json={"number": n, "size": "M", "board": 1, "lock": n}), 201)
        for n in (1, 2)
    ]  # fmt: skip
    recipient = _ok(
        client.post("/api/v1/recipients", headers=h,
                    json={"name": "Wang Fang", "email": "wang@example.org",
                          "consent_locker_delivery": True}),
        201,
    )  # fmt: skip
    courier = make_user(Role.courier)
    parcel = _ok(
        client.post("/api/v1/parcels", headers=courier,
                    json={"tracking_number": "SF1234567890", "recipient_id": recipient["id"],
                          "size": "M"}),
        201,
    )  # fmt: skip
    _ok(client.post(f"/api/v1/parcels/{parcel['id']}/reserve", headers=courier,
                    json={"cabinet_id": cabinet["id"]}))  # fmt: skip
    parcel = _ok(client.post(f"/api/v1/parcels/{parcel['id']}/deposit", headers=courier, json={}))
    door_id = next(d["id"] for d in doors if d["number"] == parcel["door_number"])
    return {"site": site["id"], "parcel": parcel, "door_id": door_id, "cabinet": cabinet["id"]}
