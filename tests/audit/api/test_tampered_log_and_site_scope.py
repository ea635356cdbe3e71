"""Security staff over the API when the log has been tampered with, and at their own sites."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from locker_server.auth.roles import Role
from tests.audit.conftest import entry_hash_at, forged_entry, insert_entry

pytestmark = pytest.mark.usefixtures("client")

MakeUser = Callable[..., dict[str, str]]
Tamper = Callable[..., None]


def _last_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT max(seq) FROM audit_entries").scalar_one())


def test_audited_writes_keep_working_after_rows_are_written_around_the_chain_head(
    client: TestClient, make_user: MakeUser, engine: Engine, tamper: Tamper
) -> None:
    admin = make_user(Role.admin)
    tip = _last_seq(engine)
    forged = forged_entry(tip + 1, entry_hash_at(engine, tip), datetime.now(UTC))
    tamper(insert_entry(forged))

    created = client.post("/api/v1/sites", json={"name": "After the break-in"}, headers=admin)
    report = client.get("/api/v1/audit/verify", headers=admin)

    assert created.status_code == 201, created.text
    assert report.status_code == 200, report.text
    assert (report.json()["kind"], report.json()["first_bad_seq"]) == ("inserted", tip + 1)
    assert report.json()["findings"][0]["kind"] == "inserted"


def _cabinet(client: TestClient, admin: dict[str, str], site_id: int, code: str) -> int:
    response = client.post(
        "/api/v1/cabinets",
        headers=admin,
        json={"site_id": site_id, "code": code, "name": code},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_site_limited_officer_sees_wrong_codes_and_the_lockout_at_their_own_cabinet(
    client: TestClient, make_user: MakeUser, make_site: Callable[[str], int]
) -> None:
    admin = make_user(Role.admin)
    north, south = make_site("North"), make_site("South")
    at_north = _cabinet(client, admin, north, "CAB-N")
    at_south = _cabinet(client, admin, south, "CAB-S")
    operator = make_user(Role.operator)
    for cabinet_id in (at_north,) * 6 + (at_south,):
        attempt = {"cabinet_id": cabinet_id, "code": "00000000"}
        refused = client.post("/api/v1/pickups", headers=operator, json=attempt)
        assert refused.status_code in (403, 429), refused.text
    officer = make_user(Role.security, sites=[north])

    response = client.get(
        "/api/v1/audit/events", params={"action": "pickup.attempt"}, headers=officer
    )

    assert response.status_code == 200, response.text
    seen = [(e["site_id"], e["cabinet_id"], e["outcome"]) for e in response.json()["items"]]
    assert seen == [(north, at_north, "wrong_code")] * 5 + [(north, at_north, "locked_out")]
