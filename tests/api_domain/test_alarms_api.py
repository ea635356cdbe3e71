"""``/api/v1/alarms``: listed in the page envelope with filters, read, acknowledged once with
a note; operators and security staff only, each within its sites (404 elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_server.auth.roles import Role
from locker_server.auth.users import alarm_contacts
from locker_server.db import session_scope
from locker_server.services import DomainDeps, alarms
from locker_server.services.cabinets import cabinet_caller
from tests.api.conftest import AuthHeaders, MakeUser
from tests.api_domain.conftest import Setup, ok


@pytest.fixture
def raise_alarm(app: FastAPI) -> Any:
    """Raise an alarm through the service, as a cabinet report would; answers its id."""
    state = app.state
    deps = DomainDeps(
        settings=state.settings, keys=state.keys, audit=state.audit, notifier=state.notifier,
        staff=alarm_contacts,
    )  # fmt: skip

    def _raise(site_id: int, cabinet_id: int, kind: str, door: int | None = None) -> int:
        place = alarms.Place(alarms.CabinetAt(cabinet_id, site_id), door_number=door)
        with session_scope(app.state.engine) as session:
            raised = alarms.raise_alarm(
                session, deps, place=place, kind=kind, caller=cabinet_caller("CAB")
            )
            assert raised.alarm.id is not None
            return raised.alarm.id

    return _raise


@pytest.fixture
def other_cabinet(client: TestClient, admin_headers: AuthHeaders) -> tuple[int, int]:
    """A second site with a cabinet: (site id, cabinet id)."""
    site = ok(client.post("/api/v1/sites", json={"name": "Depot"}, headers=admin_headers), 201)
    body = {"site_id": site["id"], "code": "CAB-2", "name": "Gate"}
    cabinet = ok(client.post("/api/v1/cabinets", json=body, headers=admin_headers), 201)
    return site["id"], cabinet["id"]


def test_operators_and_security_staff_list_alarms_newest_first_in_the_page_envelope(
    client: TestClient, setup: Setup, make_user: MakeUser, raise_alarm: Any
) -> None:
    first = raise_alarm(setup.site_id, setup.cabinet_id, "door_forced_open", 2)
    second = raise_alarm(setup.site_id, setup.cabinet_id, "camera_lost")

    for role in (Role.operator, Role.security):
        page = ok(client.get("/api/v1/alarms?limit=1", headers=make_user(role)))
        assert (page["total"], page["limit"], page["offset"]) == (2, 1, 0)
        assert [item["id"] for item in page["items"]] == [second]

    alarm = ok(client.get(f"/api/v1/alarms/{first}", headers=make_user(Role.operator)))
    assert {k: alarm[k] for k in ("kind", "state", "site_id", "cabinet_id", "door_number")} == {
        "kind": "door_forced_open",
        "state": "open",
        "site_id": setup.site_id,
        "cabinet_id": setup.cabinet_id,
        "door_number": 2,
    }
    assert (alarm["repeats"], alarm["acknowledged_at"], alarm["note"]) == (0, None, None)


def test_alarms_are_filtered_by_state_site_cabinet_and_kind(
    client: TestClient,
    setup: Setup,
    admin_headers: AuthHeaders,
    other_cabinet: tuple[int, int],
    raise_alarm: Any,
) -> None:
    other_site, other_cab = other_cabinet
    forced = raise_alarm(setup.site_id, setup.cabinet_id, "door_forced_open", 1)
    handled = raise_alarm(setup.site_id, setup.cabinet_id, "scanner_lost")
    offline = raise_alarm(other_site, other_cab, "cabinet_offline")
    ok(
        client.post(
            f"/api/v1/alarms/{handled}/acknowledge", json={"note": "ok"}, headers=admin_headers
        )
    )

    def ids(query: str) -> list[int]:
        page = ok(client.get(f"/api/v1/alarms?{query}", headers=admin_headers))
        assert page["total"] == len(page["items"])
        return sorted(item["id"] for item in page["items"])

    assert ids("state=open") == sorted([forced, offline])
    assert ids("state=acknowledged") == [handled]
    assert ids("state=cleared") == []
    assert ids(f"site_id={other_site}") == [offline]
    assert ids(f"cabinet_id={setup.cabinet_id}&state=open") == [forced]
    assert ids("kind=door_forced_open") == [forced]
    bad = client.get("/api/v1/alarms?state=closed", headers=admin_headers)
    assert bad.status_code == 422


def test_a_site_limited_user_sees_and_acknowledges_only_the_alarms_of_its_sites(
    client: TestClient,
    setup: Setup,
    make_user: MakeUser,
    other_cabinet: tuple[int, int],
    raise_alarm: Any,
) -> None:
    other_site, other_cab = other_cabinet
    own = raise_alarm(setup.site_id, setup.cabinet_id, "door_jammed", 3)
    foreign = raise_alarm(other_site, other_cab, "door_jammed", 3)
    for role in (Role.operator, Role.security):
        limited = make_user(role, sites=[setup.site_id])

        page = ok(client.get("/api/v1/alarms", headers=limited))
        assert [item["id"] for item in page["items"]] == [own]
        assert (
            ok(client.get(f"/api/v1/alarms?site_id={other_site}", headers=limited))["items"] == []
        )
        assert client.get(f"/api/v1/alarms/{foreign}", headers=limited).status_code == 404
        refused = client.post(
            f"/api/v1/alarms/{foreign}/acknowledge", json={"note": "x"}, headers=limited
        )
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"


def test_security_staff_acknowledge_with_a_note_and_a_second_acknowledgement_is_a_409(
    client: TestClient,
    setup: Setup,
    make_user: MakeUser,
    raise_alarm: Any,
    audit_entries: Any,
) -> None:
    alarm_id = raise_alarm(setup.site_id, setup.cabinet_id, "door_forced_open", 1)
    guard = make_user(Role.security)

    done = ok(
        client.post(
            f"/api/v1/alarms/{alarm_id}/acknowledge",
            json={"note": "door checked, parcel intact"},
            headers=guard,
        )
    )
    again = client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": "me too"}, headers=guard
    )

    assert (done["state"], done["note"], done["acknowledged_by"]) == (
        "acknowledged",
        "door checked, parcel intact",
        guard.user_id,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "alarm_already_acknowledged"
    [entry] = audit_entries("alarm.acknowledged")
    assert (entry.actor_id, entry.site_id, entry.reason) == (
        str(guard.user_id),
        setup.site_id,
        "door checked, parcel intact",
    )


def test_an_acknowledgement_needs_a_visible_note(
    client: TestClient, setup: Setup, admin_headers: AuthHeaders, raise_alarm: Any
) -> None:
    alarm_id = raise_alarm(setup.site_id, setup.cabinet_id, "camera_lost")
    url = f"/api/v1/alarms/{alarm_id}/acknowledge"

    for body in ({}, {"note": "   "}, {"note": "ok", "by": "me"}):
        answer = client.post(url, json=body, headers=admin_headers)
        assert answer.status_code == 422, body
    assert ok(client.get(f"/api/v1/alarms/{alarm_id}", headers=admin_headers))["state"] == "open"


def test_couriers_and_carrier_keys_are_refused_and_the_refusal_is_audited(
    client: TestClient, setup: Setup, raise_alarm: Any, audit_entries: Any
) -> None:
    alarm_id = raise_alarm(setup.site_id, setup.cabinet_id, "camera_lost")

    listing = client.get("/api/v1/alarms", headers=setup.courier)
    acknowledging = client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": "x"}, headers=setup.courier
    )

    assert (listing.status_code, acknowledging.status_code) == (403, 403)
    denied = audit_entries("access.denied")
    assert [e.actor_id for e in denied[-2:]] == [str(setup.courier.user_id)] * 2
    assert audit_entries("alarm.acknowledged") == []
