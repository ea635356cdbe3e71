"""Login limits that stop guessing without locking staff out, and the client address they
(and the audit log) use: forwarded addresses count only when a trusted proxy sends them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from locker_server.api.app import create_app
from locker_server.audit.models import AuditEntry
from locker_server.auth.errors import TooManyAttempts
from locker_server.auth.login import LoginThrottle
from locker_server.auth.roles import Role
from locker_server.config import Settings
from tests.api.conftest import TEST_PASSWORD, MakeUser

TOKEN_URL = "/api/v1/auth/token"
Entries = Callable[..., list[AuditEntry]]
OFFICE, ATTACKER = ("192.0.2.10", 40000), ("198.51.100.66", 40000)


def login(client: TestClient, username: str, password: str, **headers: str) -> int:
    response = client.post(
        TOKEN_URL, data={"username": username, "password": password}, headers=headers
    )
    return response.status_code


def client_at(app: FastAPI, address: tuple[str, int]) -> TestClient:
    return TestClient(app, client=address)


def test_attacker_guessing_the_admin_password_does_not_lock_the_admin_out(
    app: FastAPI, make_user: MakeUser
) -> None:
    make_user(Role.admin, username="root")
    attacker, office = client_at(app, ATTACKER), client_at(app, OFFICE)

    guesses = [login(attacker, "root", f"guess {n}") for n in range(30)]

    assert guesses[:5] == [401] * 5
    assert set(guesses[5:]) == {429}
    assert login(office, "root", TEST_PASSWORD) == 200


def test_admin_sharing_an_address_with_a_password_sprayer_still_logs_in(
    app: FastAPI, make_user: MakeUser
) -> None:
    make_user(Role.admin, username="root")
    office = client_at(app, OFFICE)

    sprayed = [login(office, f"user{n}", "Winter2026!") for n in range(25)]
    again = login(office, "user0", "Winter2026!")

    assert set(sprayed) == {401}  # one guess per account: each is checked once
    assert again == 429  # the address is over its limit and has failed for user0
    assert login(office, "root", TEST_PASSWORD) == 200


def test_throttled_login_says_when_to_come_back(app: FastAPI, make_user: MakeUser) -> None:
    app.state.login_throttle = LoginThrottle(max_per_pair=2, window_seconds=600)
    make_user(Role.operator, username="olga")
    office = client_at(app, OFFICE)
    for _ in range(2):
        login(office, "olga", "wrong password!")

    response = office.post(TOKEN_URL, data={"username": "olga", "password": TEST_PASSWORD})

    assert response.status_code == 429
    assert 590 <= int(response.headers["Retry-After"]) <= 600


def test_guesses_spread_over_many_addresses_are_bounded_per_account() -> None:
    throttle = LoginThrottle(max_per_user=10)
    for n in range(10):
        throttle.record_failure("root", f"203.0.113.{n}")

    with pytest.raises(TooManyAttempts):
        throttle.check("root", "203.0.113.3")
    throttle.check("root", "192.0.2.10")  # a clean address is still checked


@pytest.fixture
def proxied_app(settings: Settings) -> Iterator[FastAPI]:
    """The app behind a reverse proxy on 10.0.0.0/8 (``LOCKER_TRUSTED_PROXIES``)."""
    behind_proxy = Settings.model_validate(
        settings.model_dump() | {"trusted_proxies": "10.0.0.0/8"}
    )
    application = create_app(behind_proxy)
    yield application
    application.state.engine.dispose()


def failed_login_sources(app: FastAPI) -> list[str | None]:
    with Session(app.state.engine) as session:
        query = select(AuditEntry.source).where(AuditEntry.action == "auth.login_failed")
        return list(session.exec(query).all())


def test_a_trusted_proxy_passes_on_the_clients_address(proxied_app: FastAPI) -> None:
    proxy = client_at(proxied_app, ("10.1.2.3", 40000))

    login(proxy, "root", "guess", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.66, 10.9.9.9"})

    # Read from the right: 10.9.9.9 is another of our proxies, 198.51.100.66 the client;
    # 6.6.6.6 is whatever the client claimed and is not believed.
    assert failed_login_sources(proxied_app) == ["198.51.100.66"]


def test_forwarded_addresses_from_anyone_else_are_ignored(proxied_app: FastAPI) -> None:
    stranger = client_at(proxied_app, ATTACKER)

    login(stranger, "root", "guess", **{"X-Forwarded-For": "10.9.9.9"})

    assert failed_login_sources(proxied_app) == [ATTACKER[0]]


def test_a_successful_login_forgets_the_users_own_typos() -> None:
    throttle = LoginThrottle(max_per_pair=3)
    for _ in range(2):
        throttle.record_failure("olga", OFFICE[0])
    throttle.record_success("olga", OFFICE[0])

    for _ in range(2):
        throttle.record_failure("olga", OFFICE[0])

    throttle.check("olga", OFFICE[0])  # 2 failures since the last login, below 3
