"""Each role gets what it may; everything else is refused with 403 and audited.

(No ``from __future__ import annotations``: the probe handlers are closures whose
``Annotated`` dependencies FastAPI must resolve at definition time.)
"""

import json
from collections.abc import Callable
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from locker_server.api.deps import IdPath, require_roles, require_site
from locker_server.audit.models import AuditEntry
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from tests.api.conftest import AuthHeaders, MakeUser

Entries = Callable[..., list[AuditEntry]]

# What each probe route allows (admin always passes).
PROBES = {
    "operate": (Role.operator,),
    "watch": (Role.security, Role.operator),
    "deliver": (Role.courier,),
}


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")
    for name, roles in PROBES.items():
        guard = Depends(require_roles(*roles))

        def handler(principal: Annotated[Principal, guard]) -> dict[str, str]:
            return {"role": principal.role.value}

        router.add_api_route(f"/{name}", handler, methods=["POST"])

    @router.get("/sites/{site_id}")
    def read_site(
        site_id: IdPath, principal: Annotated[Principal, Depends(require_roles(Role.operator))]
    ) -> dict[str, int]:
        require_site(principal, site_id)
        return {"site_id": site_id}

    return router


@pytest.fixture
def probed(app: FastAPI) -> FastAPI:
    app.include_router(_probe_router())
    return app


@pytest.mark.parametrize("role", [Role.admin, Role.operator, Role.security, Role.courier])
def test_each_role_reaches_exactly_the_routes_its_role_allows(
    probed: FastAPI, client: TestClient, make_user: MakeUser, audit_entries: Entries, role: Role
) -> None:
    headers = make_user(role)

    answers = {name: client.post(f"/probe/{name}", headers=headers) for name in PROBES}

    allowed = {name for name, roles in PROBES.items() if role is Role.admin or role in roles}
    assert {name for name, answer in answers.items() if answer.status_code == 200} == allowed
    refused = {name for name, answer in answers.items() if answer.status_code == 403}
    assert refused == set(PROBES) - allowed
    denied = audit_entries("access.denied")
    assert sorted(json.loads(e.details)["path"] for e in denied) == sorted(
        f"/probe/{name}" for name in refused
    )
    assert all(e.actor_type == "user" and e.actor_id == str(headers.user_id) for e in denied)
    assert all(e.reason == f"role {role.value} may not do this" for e in denied)


def test_refusal_answer_has_the_error_envelope(
    probed: FastAPI, client: TestClient, make_user: MakeUser
) -> None:
    response = client.post("/probe/operate", headers=make_user(Role.security))

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "role security may not do this",
            "fields": [],
        }
    }


def test_operator_limited_to_one_site_is_refused_another_and_the_refusal_is_audited(
    probed: FastAPI,
    client: TestClient,
    make_user: MakeUser,
    make_site: Callable[[str], int],
    audit_entries: Entries,
) -> None:
    north, south = make_site("North"), make_site("South")
    scoped = make_user(Role.operator, sites=[north])
    everywhere = make_user(Role.operator)

    own = client.get(f"/probe/sites/{north}", headers=scoped)
    other = client.get(f"/probe/sites/{south}", headers=scoped)
    unscoped = client.get(f"/probe/sites/{south}", headers=everywhere)

    assert (own.status_code, other.status_code, unscoped.status_code) == (200, 403, 200)
    assert [e.reason for e in audit_entries("access.denied")] == [f"no access to site {south}"]
    me = client.get("/api/v1/users/me", headers=scoped).json()
    assert me["site_ids"] == [north]


def test_only_admins_manage_users_and_api_keys(
    client: TestClient, make_user: MakeUser, audit_entries: Entries
) -> None:
    for role in (Role.operator, Role.security, Role.courier):
        headers = make_user(role)
        assert client.get("/api/v1/users", headers=headers).status_code == 403
        assert client.get("/api/v1/api-keys", headers=headers).status_code == 403
        assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    assert len(audit_entries("access.denied")) == 6


def test_courier_account_carries_its_carrier(client: TestClient, make_user: MakeUser) -> None:
    courier = make_user(Role.courier)

    me = client.get("/api/v1/users/me", headers=courier).json()

    assert me["role"] == "courier"
    assert me["carrier_id"] == courier.carrier_id
    assert me["courier_id"] is not None
    assert me["site_ids"] is None


def test_admin_creates_a_site_scoped_security_account_and_the_role_change_is_audited(
    client: TestClient,
    admin_headers: AuthHeaders,
    make_site: Callable[[str], int],
    audit_entries: Entries,
) -> None:
    site = make_site("Depot")
    body = {"username": "guard", "password": "a long enough password", "role": "security"}
    created = client.post("/api/v1/users", json=body | {"site_ids": [site]}, headers=admin_headers)
    user_id = created.json()["id"]

    changed = client.patch(
        f"/api/v1/users/{user_id}", json={"role": "operator", "site_ids": []}, headers=admin_headers
    )

    assert created.status_code == 201
    assert created.json()["site_ids"] == [site]
    assert created.json()["all_sites"] is False
    assert changed.json()["role"] == "operator"
    assert changed.json()["all_sites"] is True
    (entry,) = audit_entries("role.changed")
    assert entry.actor_id == str(admin_headers.user_id)
    assert json.loads(entry.details) == {
        "from_role": "security",
        "from_sites": [site],
        "role": "operator",
        "sites": [],
        "user_id": user_id,
    }
    assert "guard" not in entry.details


def test_sites_cannot_limit_admins_or_couriers(
    client: TestClient, admin_headers: AuthHeaders, make_site: Callable[[str], int]
) -> None:
    site = make_site("Depot")
    body = {"username": "boss", "password": "a long enough password", "role": "admin"}

    response = client.post("/api/v1/users", json=body | {"site_ids": [site]}, headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "only operators and security staff can be limited to sites"
    )


def test_the_last_active_admin_cannot_demote_or_deactivate_themselves(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    url = f"/api/v1/users/{admin_headers.user_id}"

    demoted = client.patch(url, json={"role": "operator"}, headers=admin_headers)
    deactivated = client.patch(url, json={"active": False}, headers=admin_headers)

    assert demoted.status_code == deactivated.status_code == 409
    assert client.get("/api/v1/users/me", headers=admin_headers).json()["role"] == "admin"


def test_a_second_account_with_the_same_username_is_a_conflict(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    body = {"username": "twin", "password": "a long enough password", "role": "operator"}

    first = client.post("/api/v1/users", json=body, headers=admin_headers)
    second = client.post("/api/v1/users", json=body, headers=admin_headers)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "conflict"


def test_users_are_listed_page_by_page(client: TestClient, make_user: MakeUser) -> None:
    admin = make_user(Role.admin)
    for _ in range(3):
        make_user(Role.operator)

    first = client.get("/api/v1/users?limit=2", headers=admin).json()
    rest = client.get("/api/v1/users?limit=2&offset=2", headers=admin).json()

    assert first["total"] == rest["total"] == 4
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 2
    assert {u["id"] for u in first["items"]}.isdisjoint(u["id"] for u in rest["items"])
    assert all("password" not in json.dumps(u) for u in first["items"] + rest["items"])
