"""An operator opens a door from the web console, in headless Chromium, against the
running system: the console served by uvicorn with the real bridge's publisher, a private
Mosquitto with TLS and ACLs, and the real agent on simulated boards. The door springs
open on the simulated board, and the live board shows it open without a reload — only
because the cabinet's sensor reported it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlmodel import Session, select

from locker_server.auth.origin import Origin
from locker_server.auth.roles import Role
from locker_server.auth.users import NewUser, create_user
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.models import Alarm
from locker_server.web.app import create_console_app
from tests.api.conftest import TEST_PASSWORD
from tests.link_e2e.conftest import ADMIN, CABINET, LinkWorld
from tests.waiting import wait_until
from tests.web.browser import (
    SCREENSHOTS,
    chromium_driver,
    data_attribute,
    needs_chromium,
    serving,
    sign_in,
)

pytestmark = [needs_chromium]

DOOR = 3


@pytest.fixture
def console(world: LinkWorld, settings: Settings) -> Iterator[str]:
    """The console and API of the running server, publishing through its bridge."""
    assert world.server.bridge is not None
    app: FastAPI = create_console_app(settings, link_publisher=world.server.bridge.publisher)
    with serving(app) as base:
        yield base
    app.state.engine.dispose()


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
    with chromium_driver() as driver:
        yield driver


def _operator(world: LinkWorld) -> str:
    with session_scope(world.engine) as session:
        origin = Origin(ADMIN.actor, "cli")
        new = NewUser(username="duty-operator", password=TEST_PASSWORD, role=Role.operator)
        create_user(session, world.deps.audit, origin, new)
    return "duty-operator"


def test_an_operator_opens_a_door_from_the_console_and_sees_it_open_on_the_board(
    world: LinkWorld, console: str, chromium: WebDriver
) -> None:
    username = _operator(world)
    with world.cabinet() as cabinet:
        assert wait_until(lambda: cabinet.runtime.link.connected, 20)
        board = chromium
        sign_in(board, console, username)
        assert wait_until(lambda: board.current_url.endswith("/cabinets"), 10)
        door = f"[data-cabinet='{CABINET}'] [data-door='{DOOR}']"
        assert wait_until(lambda: data_attribute(board, door, "state") is not None, 10)
        assert data_attribute(board, door, "state") != "open"

        board.find_element(By.CSS_SELECTOR, door).click()  # the door's page
        assert wait_until(lambda: "/doors/" in board.current_url, 10)
        board.find_element(By.NAME, "reason").send_keys("parcel stuck, recipient on site")
        board.find_element(By.CSS_SELECTOR, "form[action$='/open'] button").click()
        assert wait_until(lambda: "command=" in board.current_url, 10)

        assert wait_until(lambda: cabinet.door(DOOR).is_open, 15), "no unlock reached the board"
        assert cabinet.door(DOOR).unlock_pulses == 1
        board.get(console + "/cabinets")
        assert wait_until(lambda: data_attribute(board, door, "state") == "open", 15)
        board.execute_script("window.notReloaded = true;")
        cabinet.door(DOOR).close()  # the operator shuts it again
        assert wait_until(lambda: data_attribute(board, door, "state") == "closed", 15)
        assert board.execute_script("return window.notReloaded === true;")
        board.save_screenshot(str(SCREENSHOTS / "console-remote-open.png"))
    details = world.audit_details("command.succeeded")
    assert len(details) == 1
    with Session(world.engine) as session:
        raised = session.exec(select(Alarm).where(Alarm.cabinet_id == world.cabinet_db_id)).all()
    remote = [(alarm.kind, alarm.door_number) for alarm in raised if alarm.kind == "remote_open"]
    assert remote == [("remote_open", DOOR)]  # for security staff to review
