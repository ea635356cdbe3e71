"""Logging in with the OAuth2 password flow and using (or abusing) the bearer token."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_server.audit.models import AuditEntry
from locker_server.auth.login import LoginThrottle
from locker_server.auth.roles import Role
from locker_server.auth.tokens import issue_access_token
from tests.api.conftest import TEST_PASSWORD, MakeUser

TOKEN_URL = "/api/v1/auth/token"
Entries = Callable[..., list[AuditEntry]]


def login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, object]]:
    response = client.post(TOKEN_URL, data={"username": username, "password": password})
    return response.status_code, response.json()


def test_operator_logs_in_and_the_token_opens_their_profile(
    client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    user = make_user(Role.operator, username="olga")

    status, body = login(client, "olga", TEST_PASSWORD)

    assert status == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 60 * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get("/api/v1/users/me", headers=headers).json()
    assert me["name"] == "olga"
    assert me["role"] == "operator"
    assert me["id"] == user.user_id
    logins = audit_entries("auth.login")
    assert [(e.actor_type, e.actor_id, e.outcome) for e in logins] == [
        ("user", str(user.user_id), "success")
    ]


def test_wrong_password_and_unknown_user_get_the_same_401_and_both_are_audited(
    client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    user = make_user(Role.security, username="sam")

    wrong = client.post(TOKEN_URL, data={"username": "sam", "password": "not the password"})
    unknown = client.post(TOKEN_URL, data={"username": "nobody", "password": TEST_PASSWORD})

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "authentication_failed"
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    failed = audit_entries("auth.login_failed")
    assert [(e.actor_type, e.actor_id) for e in failed] == [
        ("user", str(user.user_id)),
        ("anonymous", None),
    ]
    unknown_details = json.loads(failed[1].details)
    assert len(unknown_details["login"]) == 16  # a keyed fingerprint, not the name
    assert all("nobody" not in e.details and "sam" not in e.details for e in failed)


def test_deactivated_user_can_neither_log_in_nor_use_an_earlier_token(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    old_headers = make_user(Role.operator, username="leaver")
    user_id = old_headers.user_id

    changed = client.patch(
        f"/api/v1/users/{user_id}", json={"active": False}, headers=admin_headers
    )

    assert changed.status_code == 200
    assert changed.json()["active"] is False
    assert login(client, "leaver", TEST_PASSWORD)[0] == 401
    assert client.get("/api/v1/users/me", headers=old_headers).status_code == 401


def test_expired_token_is_refused_and_the_refusal_is_audited(
    app: FastAPI, client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    user = make_user(Role.operator)
    stale = issue_access_token(
        app.state.keys.token_signing_key,
        user_id=user.user_id,
        role="operator",
        stamp="expiry is checked first",
        lifetime=timedelta(minutes=5),
        now=datetime.now(UTC) - timedelta(hours=1),
    )

    response = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {stale.access_token}"}
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid or expired credentials"
    rejected = audit_entries("auth.token_rejected")
    assert [(e.reason, e.outcome, e.actor_type) for e in rejected] == [
        ("token expired", "denied", "anonymous")
    ]
    assert json.loads(rejected[0].details) == {"method": "GET", "path": "/api/v1/users/me"}


def test_tokens_signed_with_another_key_or_no_algorithm_are_refused(
    client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    user = make_user(Role.admin)
    claims = {
        "sub": str(user.user_id),
        "role": "admin",
        "iat": datetime.now(UTC),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        "jti": "x",
        "iss": "locker-server",
    }
    forged = jwt.encode(claims, b"k" * 32 + b"another key entirely", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")

    for token in (forged, unsigned, "not-a-token"):
        response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    assert [e.reason for e in audit_entries("auth.token_rejected")] == ["token invalid"] * 3


def test_a_request_without_credentials_gets_401_but_no_audit_noise(
    client: TestClient, audit_entries: Entries
) -> None:
    response = client.get("/api/v1/users")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "authentication_failed"
    assert audit_entries() == []


def test_token_issued_before_a_role_change_stops_working(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    operator = make_user(Role.operator)

    client.patch(
        f"/api/v1/users/{operator.user_id}", json={"role": "security"}, headers=admin_headers
    )

    assert client.get("/api/v1/users/me", headers=operator).status_code == 401


def test_a_new_password_ends_every_token_issued_before_it(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str], audit_entries: Entries
) -> None:
    make_user(Role.operator, username="oskar")
    _, body = login(client, "oskar", TEST_PASSWORD)
    stolen = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get("/api/v1/users/me", headers=stolen).json()

    new_password = "a much better passphrase"
    changed = client.patch(
        f"/api/v1/users/{me['id']}", json={"password": new_password}, headers=admin_headers
    )

    assert changed.status_code == 200
    assert client.get("/api/v1/users/me", headers=stolen).status_code == 401
    assert [e.reason for e in audit_entries("auth.token_rejected")] == [
        "password changed since the token was issued"
    ]
    status, fresh = login(client, "oskar", new_password)
    assert status == 200
    renewed = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert client.get("/api/v1/users/me", headers=renewed).status_code == 200


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(
    app: FastAPI, client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    app.state.login_throttle = LoginThrottle(max_per_user=3, max_per_source=100)
    make_user(Role.operator, username="target")

    statuses = [login(client, "target", "guess number one")[0] for _ in range(3)]
    status, body = login(client, "target", TEST_PASSWORD)

    assert statuses == [401, 401, 401]
    assert status == 429
    assert body["error"]["code"] == "too_many_attempts"  # type: ignore[index]
    outcomes = [e.outcome for e in audit_entries("auth.login_failed")]
    assert outcomes == ["failure", "failure", "failure", "locked_out"]


def test_throttle_forgets_failures_once_the_window_has_passed() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_per_user=2, window_seconds=60, clock=lambda: now[0])
    throttle.record_failure("ann", "10.0.0.1")
    throttle.record_failure("ann", "10.0.0.1")

    blocked = _refused(throttle, "ann")
    now[0] += 61

    assert blocked
    assert not _refused(throttle, "ann")


def _refused(throttle: LoginThrottle, username: str) -> bool:
    try:
        throttle.check(username, "10.0.0.1")
    except Exception:
        return True
    return False
