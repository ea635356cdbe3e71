"""The console in headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against the application served by uvicorn: sign in, land on the audit log, filter it,
switch the language, see the cabinet board update by itself. Saves the screenshots that
docs/web.md shows."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlmodel import Session, select

from locker_server.audit import Actor, AuditEvent
from locker_server.db import session_scope
from locker_server.models import Cabinet, Door, SizeClass
from tests.api.conftest import TEST_PASSWORD, MakeUser
from tests.waiting import wait_until
from tests.web.conftest import unique_name

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (scripts/test installs them)",
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    """The whole application on a real port; its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 20)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _sign_in(driver: WebDriver, base: str, username: str, page: str = "/") -> None:
    driver.get(base + page)
    assert wait_until(lambda: "/sign-in" in driver.current_url, 10)
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(TEST_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


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
        # Read in one script: the board is replaced every few seconds, so an element found
        # by one call may be gone by the next.
        state: str | None = chromium.execute_script(
            "const door = document.querySelector(arguments[0]);"
            " return door ? door.dataset.state : null;",
            door,
        )
        return state

    assert shown_state() == "closed"
    chromium.execute_script("window.notReloaded = true;")
    _set_door(app, cabinet_id, "open")  # as the cabinet link records a door event
    assert wait_until(lambda: shown_state() == "open", 15)
    assert chromium.execute_script("return window.notReloaded === true;")
    chromium.save_screenshot(str(SCREENSHOTS / "console-cabinets.png"))
