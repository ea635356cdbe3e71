"""Helpers for driving the console in headless Chromium: serve an app on a real port, start
Debian's chromium through chromedriver (Selenium), sign in through the form."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.api.conftest import TEST_PASSWORD
from tests.waiting import wait_until

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
#: where the browser tests save their screenshots: docs/images refreshes the docs'
#: (``LOCKER_SCREENSHOTS_DIR=docs/images scripts/test tests/web tests/kiosk``); by
#: default a temporary folder, so a test run leaves the working tree as it was
SCREENSHOTS = Path(
    os.environ.get("LOCKER_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "locker-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/test installs them)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a free local port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium_driver() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: WebDriver, base: str, username: str, page: str = "/") -> None:
    """Open ``page``, be sent to the sign-in form, sign in as ``username``."""
    driver.get(base + page)
    assert wait_until(lambda: "/sign-in" in driver.current_url, 10)
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(TEST_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def data_attribute(driver: WebDriver, selector: str, name: str) -> str | None:
    """An element's ``data-*`` attribute read in one script (the element may be replaced
    between two WebDriver calls on a live page)."""
    value: str | None = driver.execute_script(
        "const element = document.querySelector(arguments[0]);"
        " return element ? element.dataset[arguments[1]] : null;",
        selector,
        name,
    )
    return value
