"""Every error answer has one envelope; bad input is never a 500; /healthz tells the truth."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import Session, select

from locker_server.api.app import create_app
from locker_server.api.deps import AuditDep, SessionDep
from locker_server.audit import Actor, AuditEvent
from locker_server.audit.models import AuditEntry
from locker_server.config import Settings
from locker_server.errors import InvalidTransition, PermissionDenied, ValidationFailed
from locker_server.models import Carrier


class Signup(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    age: int = Field(ge=0)


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.post("/signup")
    def signup(body: Signup) -> dict[str, str]:
        return {"email": body.email}

    @router.post("/transition")
    def transition() -> None:
        raise InvalidTransition("parcel 7 cannot go from announced to picked_up")

    @router.post("/rule")
    def rule() -> None:
        error = ValidationFailed("the door is too small")
        error.fields = [{"field": "body.size", "reason": "no door of this size"}]  # type: ignore[attr-defined]
        raise error

    @router.post("/duplicate")
    def duplicate(session: SessionDep) -> None:
        for _ in range(2):
            session.connection().execute(
                text("INSERT INTO carriers (name, created_at) VALUES ('twin', CURRENT_TIMESTAMP)")
            )

    @router.post("/duplicate-at-commit")
    def duplicate_at_commit(session: SessionDep) -> dict[str, str]:
        session.add(Carrier(name="twin"))
        session.add(Carrier(name="twin"))
        return {"status": "this answer must never reach the client"}

    @router.post("/write-then-refuse")
    def write_then_refuse(session: SessionDep) -> None:
        session.add(Carrier(name="half-done"))
        session.flush()
        raise PermissionDenied("no access to site 9")

    @router.post("/audit-then-refuse")
    def audit_then_refuse(session: SessionDep, audit: AuditDep) -> None:
        # The chain head stays locked by this request until it ends: the refusal's own
        # audit entry must not wait for it (it would hang forever on PostgreSQL).
        probe = AuditEvent("config.probe", Actor("system", "t"), outcome="success", channel="api")
        audit.record(session, probe)
        session.flush()
        raise PermissionDenied("no access to site 9")

    @router.get("/carrier")
    def carrier(carrier_id: int, session: SessionDep) -> dict[str, bool]:
        return {"exists": session.get(Carrier, carrier_id) is not None}

    @router.post("/crash")
    def crash() -> None:
        raise RuntimeError("secret=hunter2 leaked in an exception")

    return router


@pytest.fixture
def probed(app: FastAPI) -> FastAPI:
    app.include_router(_probe_router())
    return app


def test_domain_error_answers_its_status_code_and_message(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.post("/probe/transition")

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "invalid_transition",
            "message": "parcel 7 cannot go from announced to picked_up",
            "fields": [],
        }
    }


def test_domain_validation_error_can_name_its_fields(probed: FastAPI, client: TestClient) -> None:
    response = client.post("/probe/rule")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "body.size", "reason": "no door of this size"}
    ]


def test_request_validation_names_each_bad_field_and_why(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.post("/probe/signup", json={"email": "not an address", "age": -1})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    fields = {item["field"]: item["reason"] for item in error["fields"]}
    assert set(fields) == {"body.email", "body.age"}
    assert "pattern" in fields["body.email"]
    assert "greater than or equal to 0" in fields["body.age"]


def test_malformed_json_is_a_validation_error_not_a_crash(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.post(
        "/probe/signup", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_a_database_uniqueness_violation_is_a_409_conflict(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.post("/probe/duplicate")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_a_conflict_found_only_at_commit_replaces_the_success_answer(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.post("/probe/duplicate-at-commit")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_a_refusal_after_a_write_rolls_the_write_back_and_keeps_its_audit_entry(
    probed: FastAPI, client: TestClient, audit_entries: Callable[..., list[AuditEntry]]
) -> None:
    response = client.post("/probe/write-then-refuse")

    assert response.status_code == 403
    with Session(probed.state.engine) as session:
        assert session.exec(select(Carrier)).all() == []
    (denied,) = audit_entries("access.denied")
    assert (denied.reason, denied.actor_type) == ("no access to site 9", "anonymous")


def test_a_refusal_after_an_audited_write_never_waits_on_its_own_audit_chain_lock(
    probed: FastAPI, client: TestClient, audit_entries: Callable[..., list[AuditEntry]]
) -> None:
    response = client.post("/probe/audit-then-refuse")

    assert response.status_code == 403
    assert audit_entries("config.probe") == []
    (denied,) = audit_entries("access.denied")
    assert denied.reason == "no access to site 9"


def test_a_number_too_large_for_the_database_is_a_validation_error(
    probed: FastAPI, client: TestClient
) -> None:
    response = client.get("/probe/carrier", params={"carrier_id": 2**70})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_an_unexpected_error_is_a_generic_500_with_an_id_found_in_the_log(
    probed: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(probed, raise_server_exceptions=False) as client:
        response = client.post("/probe/crash")

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "hunter2" not in response.text
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(error["error_id"] in r.getMessage() for r in logged)


def test_oversized_ids_and_unknown_routes_get_the_envelope(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    huge = client.get(f"/api/v1/users/{2**70}", headers=admin_headers)
    missing = client.get("/api/v1/no-such-thing")
    wrong_method = client.delete("/api/v1/users/me", headers=admin_headers)

    assert huge.status_code == 422
    assert huge.json()["error"]["fields"][0]["field"] == "path.user_id"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_healthz_answers_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def app_without_database(tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/locker_no_such_database",
    )
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


def test_healthz_answers_503_when_the_database_is_unreachable(
    app_without_database: FastAPI,
) -> None:
    with TestClient(app_without_database) as client:
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_openapi_offers_the_password_flow_for_swagger_authorize(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schema["paths"]["/api/v1/users"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]
