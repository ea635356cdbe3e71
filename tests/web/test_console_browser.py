"""The console in headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against the application served by uvicorn: sign in, land on the audit log, filter it,
switch the language, see the cabinet board update by itself. Saves the screenshots that
docs/web.md shows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlmodel import Session, select

from locker_server.audit import Actor, AuditEvent
from locker_server.db import session_scope
from locker_server.models import Cabinet, Door, SizeClass
from tests.api.conftest import MakeUser
from tests.waiting import wait_until
from tests.web.browser import (
    SCREENSHOTS,
    chromium_driver,
    data_attribute,
    needs_chromium,
    serving,
)
from tests.web.browser import sign_in as _sign_in
from tests.web.conftest import unique_name

pytestmark = [needs_chromium]


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    with serving(app) as base:
        yield base


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
    with chromium_driver() as driver:
        yield driver


def _rows(driver: WebDriver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#audit-entries tbody tr"))


def test_security_staff_sign_in_land_on_the_audit_log_and_filter_it(
    app: FastAPI, served: str, chromium: WebDriver, make_user: MakeUser
) -> None:
    username = unique_name("security")
    make_user("security", username=username)
    with session_scope(app.state.engine) as session:
        for outcome in ("denied", "denied", "success"):
            app.state.audit.record(
                session,
                AuditEvent(action="pickup.attempt", actor=Actor(type="cabinet", id="CAB-1"),
                           outcome=outcome, channel="cabinet", reason="wrong code"),
            )  # fmt: skip
    _sign_in(chromium, served, username)
    assert wait_until(lambda: chromium.current_url.endswith("/audit"), 10)
    assert _rows(chromium) >= 4  # the three above and the sign-in itself
    chromium.find_element(By.NAME, "action").send_keys("pickup.")
    outcome = chromium.find_element(By.NAME, "outcome")
    outcome.find_element(By.CSS_SELECTOR, "option[value=denied]").click()
    chromium.find_element(By.CSS_SELECTOR, "form[method=get] button[type=submit]").click()
    assert wait_until(lambda: "outcome=denied" in chromium.current_url, 10)
    assert _rows(chromium) == 2
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chromium.save_screenshot(str(SCREENSHOTS / "console-audit.png"))
    chromium.find_element(By.LINK_TEXT, "中文").click()
    assert wait_until(lambda: "审计日志" in chromium.page_source, 10)
    assert _rows(chromium) == 2  # the filters survive the switch


def _cabinet_with_a_closed_door(app: FastAPI, make_site: Callable[[str], int]) -> int:
    site_id = make_site("City hall")
    with session_scope(app.state.engine) as session:
        cabinet = Cabinet(code="CAB-LOBBY", name="Lobby", site_id=site_id)
        session.add(cabinet)
        session.flush()
        size = session.exec(select(SizeClass)).first()
        assert size is not None
        assert size.id is not None
        assert cabinet.id is not None
        session.add(Door(cabinet_id=cabinet.id, number=1, size_class_id=size.id, board=1,
                         lock=1, door_state="closed", door_state_at=datetime.now(UTC)))  # fmt: skip
        return cabinet.id


def _set_door(app: FastAPI, cabinet_id: int, state: str) -> None:
    with Session(app.state.engine) as session:
        door = session.exec(select(Door).where(Door.cabinet_id == cabinet_id)).one()
        door.door_state = state
        session.add(door)
        session.commit()


def test_the_operators_board_shows_a_door_opening_without_a_reload(
    app: FastAPI,
    served: str,
    chromium: WebDriver,
    make_user: MakeUser,
    make_site: Callable[[str], int],
) -> None:
    cabinet_id = _cabinet_with_a_closed_door(app, make_site)
    username = unique_name("operator")
    make_user("operator", username=username)
    _sign_in(chromium, served, username)
    assert wait_until(lambda: chromium.current_url.endswith("/cabinets"), 10)
    door = "[data-cabinet='CAB-LOBBY'] [data-door='1']"

    def shown_state() -> str | None:
        return data_attribute(chromium, door, "state")

    assert shown_state() == "closed"
    chromium.execute_script("window.notReloaded = true;")
    _set_door(app, cabinet_id, "open")  # as the cabinet link records a door event
    assert wait_until(lambda: shown_state() == "open", 15)
    assert chromium.execute_script("return window.notReloaded === true;")
    chromium.save_screenshot(str(SCREENSHOTS / "console-cabinets.png"))


def _failed_notification(app: FastAPI, parcel_id: int) -> int:
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


def test_security_staff_follow_a_parcels_timeline_verify_and_export(
    served: str, chromium: WebDriver, make_user: MakeUser, delivered: dict[str, Any]
) -> None:
    username = unique_name("security")
    make_user("security", username=username)
    _sign_in(chromium, served, username, page="/parcels")
    assert wait_until(lambda: chromium.current_url.endswith("/parcels"), 10)
    chromium.find_element(By.NAME, "q").send_keys("SF1234")
    chromium.find_element(By.CSS_SELECTOR, "form[action='/parcels'] button").click()
    assert wait_until(lambda: "q=SF1234" in chromium.current_url, 10)  # the results page
    chromium.find_element(By.LINK_TEXT, "SF1234567890").click()
    parcel_page = f"/parcels/{delivered['parcel']['id']}"
    assert wait_until(lambda: chromium.current_url.endswith(parcel_page), 10)
    steps: list[str] = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#timeline li'), li => li.dataset.action);"
    )
    assert steps.index("parcel.announced") < steps.index("parcel.deposited")
    chromium.save_screenshot(str(SCREENSHOTS / "console-parcel-timeline.png"))

    chromium.get(served + f"/audit?parcel=%23{delivered['parcel']['id']}")
    chromium.find_element(By.CSS_SELECTOR, "form[action='/audit/verify'] button").click()
    assert wait_until(lambda: "/audit/verify" in chromium.current_url, 10)
    assert chromium.find_elements(By.CSS_SELECTOR, "[data-verified='ok']")
    chromium.get(served + f"/audit?parcel=%23{delivered['parcel']['id']}")
    assert chromium.find_elements(By.CSS_SELECTOR, "[data-last-verified='ok']")
    href = chromium.find_element(By.LINK_TEXT, "JSON Lines").get_attribute("href")
    exported: str = chromium.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        " fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);",
        href,
    )
    assert exported.startswith("{"), exported[:300]
    parcels = {json.loads(line)["parcel_id"] for line in exported.splitlines()}
    assert parcels == {delivered["parcel"]["id"]}


def test_an_operator_resends_a_failed_notification(
    app: FastAPI, served: str, chromium: WebDriver, make_user: MakeUser, delivered: dict[str, Any]
) -> None:
    message_id = _failed_notification(app, delivered["parcel"]["id"])
    username = unique_name("operator")
    make_user("operator", username=username)
    _sign_in(chromium, served, username, page="/notifications")
    assert wait_until(lambda: chromium.current_url.endswith("/notifications"), 10)
    row = f"[data-notification='{message_id}']"
    assert data_attribute(chromium, row, "status") == "failed"
    chromium.find_element(By.CSS_SELECTOR, f"{row} button").click()
    assert wait_until(lambda: "resent=1" in chromium.current_url, 10)
    chromium.get(served + "/notifications?status=all")
    assert data_attribute(chromium, row, "status") == "pending"
