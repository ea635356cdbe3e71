"""Security staff over the API: list, verify and export the log, limited to their sites."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from locker_server.audit import AuditLog, canonical
from locker_server.audit.export import entry_values
from locker_server.auth.roles import Role
from locker_server.db import is_sqlite, session_scope
from tests.audit.conftest import SQLITE_TRIGGERS, sample_event

pytestmark = pytest.mark.usefixtures("client")

MakeUser = Callable[..., dict[str, str]]


@pytest.fixture
def logged(app: FastAPI) -> Callable[[int], None]:
    """Append sample entries through the app's own log (site 2 odd numbers, site 1 even)."""

    def fill(count: int) -> None:
        audit: AuditLog = app.state.audit
        with session_scope(app.state.engine) as session:
            for number in range(1, count + 1):
                audit.record(session, sample_event(number))

    return fill


def _sample_seqs(items: list[dict[str, object]]) -> list[object]:
    return [item["parcel_id"] for item in items if item["action"] == "pickup.attempt"]


def test_security_officer_lists_entries_with_filters_and_paging(
    client: TestClient, make_user: MakeUser, logged: Callable[[int], None]
) -> None:
    headers = make_user(Role.security)
    logged(10)

    first = client.get(
        "/api/v1/audit/events",
        params={"action": "pickup.", "site_id": 1, "limit": 3},
        headers=headers,
    )
    second = client.get(
        "/api/v1/audit/events",
        params={"action": "pickup.", "site_id": 1, "limit": 3, "offset": 3},
        headers=headers,
    )

    assert first.status_code == 200, first.text
    assert first.json()["total"] == 5
    assert _sample_seqs(first.json()["items"]) == [502, 504, 506]
    assert _sample_seqs(second.json()["items"]) == [508, 510]
    entry = first.json()["items"][0]
    assert canonical.entry_hash(entry["prev_hash"], entry_values(entry)) == entry["entry_hash"]


def test_every_view_of_the_log_is_itself_recorded(
    client: TestClient,
    make_user: MakeUser,
    audit_entries: Callable[..., list[object]],
) -> None:
    headers = make_user(Role.security)

    client.get("/api/v1/audit/events", params={"cabinet_id": 7}, headers=headers)

    (viewed,) = audit_entries("audit.viewed")
    assert viewed.actor_id == str(headers.user_id)  # type: ignore[attr-defined]
    assert viewed.channel == "api"
    assert json.loads(viewed.details)["filter"]["cabinet_id"] == 7  # type: ignore[attr-defined]


def test_site_limited_officer_sees_only_their_sites_entries(
    client: TestClient,
    make_user: MakeUser,
    make_site: Callable[[str], int],
    logged: Callable[[int], None],
) -> None:
    site = make_site("North")
    headers = make_user(Role.security, sites=[site])
    logged(4)
    assert site in (1, 2)  # a fresh database: sample entries use sites 1 and 2

    response = client.get("/api/v1/audit/events", params={"limit": 500}, headers=headers)

    sites = {item["site_id"] for item in response.json()["items"]}
    assert response.status_code == 200
    assert sites == {site}


def test_site_limited_officer_asking_for_another_site_is_refused_and_audited(
    client: TestClient,
    make_user: MakeUser,
    make_site: Callable[[str], int],
    audit_entries: Callable[..., list[object]],
) -> None:
    site = make_site("North")
    headers = make_user(Role.security, sites=[site])

    response = client.get("/api/v1/audit/events", params={"site_id": site + 1}, headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert len(audit_entries("access.denied")) == 1


@pytest.mark.parametrize("role", [Role.operator, Role.courier])
def test_roles_other_than_security_and_admin_cannot_read_the_log(
    client: TestClient, make_user: MakeUser, role: Role
) -> None:
    headers = make_user(role)

    for path in ("/api/v1/audit/events", "/api/v1/audit/verify", "/api/v1/audit/export"):
        assert client.get(path, headers=headers).status_code == 403


def test_verify_endpoint_reports_intact_log_then_the_first_bad_entry(
    client: TestClient, app: FastAPI, make_user: MakeUser, logged: Callable[[int], None]
) -> None:
    headers = make_user(Role.admin)
    logged(6)
    intact = client.get("/api/v1/audit/verify", headers=headers).json()
    _edit_entry(app, seq=intact["last_seq"] - 2)

    tampered = client.get("/api/v1/audit/verify", headers=headers).json()

    assert intact["ok"] is True
    assert tampered["ok"] is False
    assert (tampered["kind"], tampered["first_bad_seq"]) == ("edited", intact["last_seq"] - 2)


def _edit_entry(app: FastAPI, *, seq: int) -> None:
    with app.state.engine.begin() as conn:
        if is_sqlite(app.state.engine):
            for trigger in SQLITE_TRIGGERS:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit_entries SET reason = 'nothing' WHERE seq = :s"), {"s": seq})


def test_export_streams_csv_and_jsonl_and_is_recorded(
    client: TestClient,
    make_user: MakeUser,
    logged: Callable[[int], None],
    audit_entries: Callable[..., list[object]],
) -> None:
    headers = make_user(Role.security)
    logged(6)
    params = {"action": "pickup.attempt", "site_id": 2}

    as_csv = client.get("/api/v1/audit/export", params={**params, "format": "csv"}, headers=headers)
    as_jsonl = client.get("/api/v1/audit/export", params=params, headers=headers)

    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [row["parcel_id"] for row in rows] == ["501", "503", "505"]
    assert [line["parcel_id"] for line in lines] == [501, 503, 505]
    assert len(audit_entries("audit.exported")) == 2


def test_bad_filters_are_validation_errors_not_crashes(
    client: TestClient, make_user: MakeUser
) -> None:
    headers = make_user(Role.security)

    for params in (
        {"from": "not a time"},
        {"action": "Parcel; DROP"},
        {"site_id": 0},
        {"format": "xml"},
        {"from": "9999-12-31T23:59:59-14:00"},
    ):
        response = client.get("/api/v1/audit/export", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "validation_failed"
