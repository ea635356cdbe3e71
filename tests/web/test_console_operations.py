"""Parcels, doors and integrity in the console: search, chain of custody, operators'
actions through the parcel services, a door's timeline, remote open without a link, the
Verify button and exports of exactly the filtered set. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.web.conftest import SignIn, csrf_of


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_search_finds_a_parcel_by_tracking_number_and_by_recipient(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    jar = signed_in("operator")
    for text in ("1234567", "wang@example", "Fang"):
        page = jar.get(f"/parcels?q={text}")
        assert f'data-parcel="{delivered["parcel"]["id"]}"' in page.text, text
    assert "SF1234567890" not in jar.get("/parcels?q=nothing-like-it").text
    assert "SF1234567890" not in jar.get("/parcels?state=picked_up").text


def test_a_parcels_page_shows_its_chain_of_custody_in_order(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    jar = signed_in("security")
    page = jar.get(f"/parcels/{delivered['parcel']['id']}")
    assert page.status_code == 200
    actions = re.findall(r'data-action="([^"]+)"', page.text)
    assert actions.index("parcel.announced") < actions.index("parcel.reserved")
    assert actions.index("parcel.reserved") < actions.index("parcel.deposited")
    seqs = [int(s) for s in re.findall(r'<li data-seq="(\d+)"', page.text)]
    assert seqs == sorted(seqs)
    assert "parcel.extend" not in page.text or "/extend" not in page.text  # security: no actions
    assert f'action="/parcels/{delivered["parcel"]["id"]}/extend"' not in page.text


def test_an_operator_acts_on_a_parcel_through_the_parcel_rules(
    signed_in: SignIn, delivered: dict[str, Any], audit_entries: Any
) -> None:
    parcel_id = delivered["parcel"]["id"]
    jar = signed_in("operator")
    page = jar.get(f"/parcels/{parcel_id}")
    csrf = csrf_of(page.text)
    early = jar.post(f"/parcels/{parcel_id}/extend", data={"csrf_token": csrf, "hours": "24"})
    assert early.status_code == 422  # the recipient-extension rule, said on the page
    assert "extensions are possible only in the last" in early.text
    reissued = jar.post(f"/parcels/{parcel_id}/reissue", data={"csrf_token": csrf})
    assert reissued.status_code == 303
    assert jar.get(reissued.headers["location"]).status_code == 200
    forged = jar.post(f"/parcels/{parcel_id}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    cancelled = jar.post(
        f"/parcels/{parcel_id}/cancel", data={"csrf_token": csrf, "reason": "damaged box"}
    )
    assert cancelled.status_code == 303
    assert 'data-state="cancelled"' in jar.get(f"/parcels/{parcel_id}").text
    assert [e for e in audit_entries() if e.action.startswith("parcel.") and e.channel == "web"]


def test_security_staff_cannot_act_on_a_parcel(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    jar = signed_in("security")
    csrf = csrf_of(jar.get(f"/parcels/{delivered['parcel']['id']}").text)
    answer = jar.post(f"/parcels/{delivered['parcel']['id']}/cancel", data={"csrf_token": csrf})
    assert answer.status_code == 403


def test_a_parcel_or_door_of_another_site_is_not_found(
    signed_in: SignIn, delivered: dict[str, Any], make_site: Any
) -> None:
    jar = signed_in("operator", sites=[make_site("Elsewhere")])
    assert jar.get(f"/parcels/{delivered['parcel']['id']}").status_code == 404
    assert jar.get(f"/doors/{delivered['door_id']}").status_code == 404
    assert "SF1234567890" not in jar.get("/parcels?q=SF").text


def test_a_doors_timeline_and_a_remote_open_needs_a_reason_and_a_link(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    jar = signed_in("operator")
    page = jar.get(f"/doors/{delivered['door_id']}")
    assert page.status_code == 200
    assert 'data-action="parcel.deposited"' in page.text
    csrf = csrf_of(page.text)
    no_reason = jar.post(f"/doors/{delivered['door_id']}/open", data={"csrf_token": csrf})
    assert no_reason.status_code == 422
    assert "reason" in no_reason.text
    no_link = jar.post(
        f"/doors/{delivered['door_id']}/open", data={"csrf_token": csrf, "reason": "stuck parcel"}
    )
    assert no_link.status_code == 422
    assert 'role="alert"' in no_link.text  # this app runs without a cabinet link


def test_the_verify_button_checks_the_log_and_the_page_shows_the_last_result(
    signed_in: SignIn,
) -> None:
    jar = signed_in("security")
    assert "Not verified yet." in jar.get("/audit").text
    csrf = csrf_of(jar.get("/audit").text)
    result = jar.post("/audit/verify", data={"csrf_token": csrf})
    assert result.status_code == 200
    assert 'data-verified="ok"' in result.text
    assert 'data-last-verified="ok"' in jar.get("/audit").text
    assert jar.post("/audit/verify", data={"csrf_token": "x"}).status_code == 403


def test_export_carries_exactly_the_filtered_entries(
    signed_in: SignIn, delivered: dict[str, Any], audit_entries: Any
) -> None:
    jar = signed_in("security")
    parcel_id = delivered["parcel"]["id"]
    query = f"parcel=%23{parcel_id}&action=parcel."
    exported = jar.get(f"/audit/export?{query}&format=jsonl")
    assert exported.status_code == 200
    lines = [json.loads(line) for line in exported.text.splitlines()]
    expected = [
        e.seq
        for e in audit_entries()
        if e.parcel_id == parcel_id and e.action.startswith("parcel.")
    ]
    assert [line["seq"] for line in lines] == expected
    assert audit_entries("audit.exported")
    page = jar.get(f"/audit?{query}")
    assert f'href="/audit/export?{query.replace("&", "&amp;")}&amp;format=csv"' in page.text
    assert f"--parcel {parcel_id}" in page.text
    assert "--action parcel." in page.text


def _failed_notification(app: Any, parcel_id: int) -> int:
    from locker_server.db import session_scope
    from locker_server.notifications.models import NotificationMessage, Status

    with session_scope(app.state.engine) as session:
        message = NotificationMessage(
            kind="email", event="parcel.reminder", parcel_id=parcel_id,
            destination="wang@example.org", status=Status.failed, last_error="550 mailbox full",
        )  # fmt: skip
        session.add(message)
        session.flush()
        assert message.id is not None
        return message.id


def test_an_operator_resends_a_failed_notification(
    app: Any, signed_in: SignIn, delivered: dict[str, Any], audit_entries: Any, make_site: Any
) -> None:
    message_id = _failed_notification(app, delivered["parcel"]["id"])
    outsider = signed_in("operator", sites=[make_site("Elsewhere")])
    assert f'data-notification="{message_id}"' not in outsider.get("/notifications").text
    jar = signed_in("operator")
    page = jar.get("/notifications")
    assert f'data-notification="{message_id}" data-status="failed"' in page.text
    foreign = outsider.post(
        f"/notifications/{message_id}/resend", data={"csrf_token": csrf_of(page.text)}
    )
    assert foreign.status_code == 403  # the CSRF token is the other operator's
    resent = jar.post(
        f"/notifications/{message_id}/resend", data={"csrf_token": csrf_of(page.text)}
    )
    assert resent.status_code == 303
    assert f'data-notification="{message_id}"' not in jar.get("/notifications").text
    assert (
        f'data-notification="{message_id}" data-status="pending"'
        in jar.get("/notifications?status=all").text
    )
    resends = audit_entries("notification.resent")
    assert [entry.channel for entry in resends] == ["web"]
    again = jar.post(f"/notifications/{message_id}/resend", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409  # pending now: nothing to resend


def test_doors_and_cabinets_go_into_and_out_of_service(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    jar = signed_in("operator")
    door = f"/doors/{delivered['door_id']}"
    csrf = csrf_of(jar.get(door).text)
    no_reason = jar.post(
        f"{door}/service", data={"csrf_token": csrf, "service_state": "out_of_service"}
    )
    assert no_reason.status_code == 422
    out = jar.post(
        f"{door}/service",
        data={"csrf_token": csrf, "service_state": "out_of_service", "reason": "hinge broken"},
    )
    assert out.status_code == 303
    assert "hinge broken" in jar.get(door).text
    back = jar.post(f"{door}/service", data={"csrf_token": csrf, "service_state": "in_service"})
    assert back.status_code == 303
    cabinet = delivered["cabinet"]
    started = jar.post(
        f"/cabinets/{cabinet}/maintenance",
        data={"csrf_token": csrf, "maintenance": "on", "reason": "cleaning"},
    )
    assert started.status_code == 303
    assert "End maintenance" in jar.get("/cabinets").text
    ended = jar.post(
        f"/cabinets/{cabinet}/maintenance", data={"csrf_token": csrf, "maintenance": "off"}
    )
    assert ended.status_code == 303
    assert "Start maintenance" in jar.get("/cabinets").text


def test_an_admin_creates_deactivates_and_resets_a_user(
    signed_in: SignIn, browser: Any, audit_entries: Any
) -> None:
    from tests.api.conftest import TEST_PASSWORD

    admin = signed_in("admin")
    csrf = csrf_of(admin.get("/users").text)
    created = admin.post(
        "/users",
        data={"csrf_token": csrf, "username": "guard-1", "role": "security",
              "password": TEST_PASSWORD},
    )  # fmt: skip
    assert created.status_code == 303
    page = admin.get("/users")
    assert 'data-user="guard-1" data-active="yes"' in page.text
    user_id = re.search(r"<td>(\d+)</td><td>guard-1</td>", page.text)
    assert user_id is not None
    guard = browser()
    form = csrf_of(guard.get("/sign-in").text)
    signed = guard.post(
        "/sign-in", data={"username": "guard-1", "password": TEST_PASSWORD, "csrf_token": form}
    )
    assert signed.status_code == 303
    assert guard.get("/audit").status_code == 200
    reset = admin.post(f"/users/{user_id.group(1)}/reset-password", data={"csrf_token": csrf})
    assert "data-new-password" in reset.text
    assert guard.get("/audit").status_code == 303  # the reset ended the guard's session
    off = admin.post(f"/users/{user_id.group(1)}/deactivate", data={"csrf_token": csrf})
    assert off.status_code == 303
    assert 'data-user="guard-1" data-active="no"' in admin.get("/users").text
    assert [e for e in audit_entries("user.updated") if e.channel == "web"]


def test_users_and_couriers_pages_are_for_admins_only(signed_in: SignIn) -> None:
    operator = signed_in("operator")
    assert operator.get("/users").status_code == 403
    assert operator.get("/couriers").status_code == 403


def test_an_admin_registers_and_deactivates_a_courier(
    signed_in: SignIn, delivered: dict[str, Any]
) -> None:
    admin = signed_in("admin")
    page = admin.get("/couriers")
    csrf = csrf_of(page.text)
    carrier = re.search(r'<option value="(\d+)">', page.text)
    assert carrier is not None
    short = admin.post(
        "/couriers",
        data={"csrf_token": csrf, "carrier_id": carrier.group(1), "name": "Li", "code": "12"},
    )
    assert short.status_code == 422
    made = admin.post(
        "/couriers",
        data={"csrf_token": csrf, "carrier_id": carrier.group(1), "name": "Li Lei",
              "code": "LI778899"},
    )  # fmt: skip
    assert made.status_code == 303
    listed = admin.get("/couriers").text
    courier = re.search(
        r'<tr data-courier="(\d+)" data-active="yes">\s*<td>\d+</td><td>Li Lei', listed
    )
    assert courier is not None
    assert "LI778899" not in listed
    off = admin.post(f"/couriers/{courier.group(1)}/deactivate", data={"csrf_token": csrf})
    assert off.status_code == 303
    assert f'data-courier="{courier.group(1)}" data-active="no"' in admin.get("/couriers").text


def test_alarms_are_listed_and_acknowledged_with_a_note(
    app: Any, signed_in: SignIn, delivered: dict[str, Any], audit_entries: Any
) -> None:
    from locker_server.api.routes._domain import get_domain_deps
    from locker_server.audit import Actor
    from locker_server.db import session_scope
    from locker_server.models import Cabinet
    from locker_server.services import Caller, alarms

    class _Request:  # what get_domain_deps reads of a request
        def __init__(self) -> None:
            self.app = app

    deps = get_domain_deps(_Request())  # type: ignore[arg-type]
    with session_scope(app.state.engine) as session:
        cabinet = session.get(Cabinet, delivered["cabinet"])
        assert cabinet is not None
        alarms.raise_alarm(
            session, deps, place=alarms.Place(cabinet, door_number=1, door_id=None),
            kind="door_forced_open", caller=Caller(actor=Actor(type="system")),
            detail="opened without a command",
        )  # fmt: skip
    guard = signed_in("security")
    page = guard.get("/alarms")
    assert 'data-kind="door_forced_open" data-state="open"' in page.text
    alarm_id = re.search(r'data-alarm="(\d+)"', page.text)
    assert alarm_id is not None
    csrf = csrf_of(page.text)
    no_note = guard.post(f"/alarms/{alarm_id.group(1)}/acknowledge", data={"csrf_token": csrf})
    assert no_note.status_code == 422
    done = guard.post(
        f"/alarms/{alarm_id.group(1)}/acknowledge",
        data={"csrf_token": csrf, "note": "checked on camera: cleaner"},
    )
    assert done.status_code == 303
    assert 'data-state="acknowledged"' in guard.get("/alarms?state=acknowledged").text
    assert [e for e in audit_entries("alarm.acknowledged") if e.channel == "web"]
