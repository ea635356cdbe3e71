"""The kiosk page in headless Chromium on a simulated cabinet running the real agent.

A person types a code (keyboard and on-screen keypad), reads which door to go to, sees
a wrong code refused with the attempts left, and switches the language; a courier signs
in, scans a label and deposits it. The screenshots of the main screens are saved as
kiosk-*.png where ``tests.web.browser.SCREENSHOTS`` says (docs/images for docs/kiosk.md
when ``LOCKER_SCREENSHOTS_DIR`` names it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from starlette.types import ASGIApp

from locker_agent.kiosk.courier import RecordDeposit
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.kiosk.service import KioskService
from locker_agent.kiosk.web import KioskWebServer, create_app
from simulators.courier_desk import FakeCourierDesk
from tests import waiting
from tests.agent_link.rig import entry
from tests.kiosk.conftest import KioskCabinet, KioskCabinetFactory
from tests.kiosk.late_answers import LateFirstKey, OvertakenScreen
from tests.kiosk.test_courier_service import Deposits
from tests.web.browser import SCREENSHOTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CODE = "36925814"
WAIT = 10.0

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Chromium and its driver (apt packages chromium, chromium-driver)",
)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


Wrapper = Callable[[ASGIApp], ASGIApp]
PageThrough = Callable[[KioskCabinet, Wrapper], str]


@pytest.fixture
def page_through(monkeypatch: pytest.MonkeyPatch) -> Iterator[PageThrough]:
    """``page_through(rig, wrapper)``: the URL of the rig's kiosk page served (by a second
    server over the same kiosk) through ``wrapper`` around the real app."""
    servers: list[KioskWebServer] = []

    def serve(rig: KioskCabinet, wrapper: Wrapper) -> str:
        def wrapped_app(service: KioskService) -> ASGIApp:
            return wrapper(create_app(service))

        monkeypatch.setattr("locker_agent.kiosk.web.create_app", wrapped_app)
        servers.append(KioskWebServer(rig.kiosk, "127.0.0.1", 0).start())
        return servers[-1].url

    yield serve
    for server in servers:
        server.stop()


def open_page(browser: WebDriver, rig: KioskCabinet) -> None:
    web = rig.cabinet.runtime.kiosk_web
    assert web is not None
    browser.get(web.url)


def text_of(browser: WebDriver, selector: str) -> str:
    """The element's text; read again if a screen update replaced it while reading."""
    waiting = WebDriverWait(browser, WAIT, ignored_exceptions=[StaleElementReferenceException])
    return str(waiting.until(lambda driver: driver.find_element(By.CSS_SELECTOR, selector).text))


def wait_for(browser: WebDriver, selector: str, words: str = "") -> str:
    """Wait until ``selector`` is on the page (and its text holds ``words``); its text."""

    def shown(driver: WebDriver) -> str | bool:
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        return bool(found) and words in found[0].text and (found[0].text or True)

    waiting = WebDriverWait(browser, WAIT, ignored_exceptions=[StaleElementReferenceException])
    waiting.until(shown, f"{selector} never showed {words!r}")
    return text_of(browser, selector)


def filled_slots(browser: WebDriver, count: int) -> None:
    """Wait until the code field shows exactly ``count`` typed (masked) digits."""
    WebDriverWait(browser, WAIT).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#code .slot.filled")) == count,
        f"the code field never showed {count} digits",
    )


def screenshot(browser: WebDriver, name: str) -> None:
    assert browser.save_screenshot(str(SCREENSHOTS / f"kiosk-{name}.png"))


def press(browser: WebDriver, keys: str) -> None:
    browser.find_element(By.TAG_NAME, "body").send_keys(keys)


def test_a_code_typed_on_keyboard_and_keypad_opens_its_door_and_the_page_names_it(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver
) -> None:
    rig = make_kiosk_cabinet(language="en", help_contact="400-800-1234")
    rig.supply(entry(51, 2, CODE), entry(52, 5, "11223344"))
    open_page(browser, rig)
    wait_for(browser, "#title", "Collect a parcel")
    screenshot(browser, "home")

    press(browser, CODE[:4])
    filled_slots(browser, 4)
    screenshot(browser, "typing")
    for digit in CODE[4:]:
        browser.find_element(By.CSS_SELECTOR, f'#keypad button[data-key="{digit}"]').click()

    wait_for(browser, '#doors li[data-door="2"][data-status="open"]')
    assert text_of(browser, "#title") == "Go to door 2"
    assert "take your parcel and close the door" in text_of(browser, "#doors")
    assert rig.cabinet.door(2).unlock_pulses == 1
    assert rig.cabinet.door(5).unlock_pulses == 0
    screenshot(browser, "door-open")

    rig.cabinet.door(2).close()

    wait_for(browser, "#title", "Thank you")
    screenshot(browser, "thanks")
    assert rig.cabinet.door(2).unlock_pulses == 1


def test_keys_typed_fast_reach_the_kiosk_in_order_when_the_first_one_is_slow(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver, page_through: PageThrough
) -> None:
    rig = make_kiosk_cabinet(language="en")
    rig.supply(entry(51, 2, CODE))
    browser.get(page_through(rig, LateFirstKey))
    wait_for(browser, "#title", "Collect a parcel")

    press(browser, CODE)

    wait_for(browser, '#doors li[data-door="2"][data-status="open"]')
    assert rig.cabinet.door(2).unlock_pulses == 1


def test_a_screen_answered_late_never_replaces_the_newer_one_shown(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver, page_through: PageThrough
) -> None:
    rig = make_kiosk_cabinet(language="en")
    late = OvertakenScreen()
    browser.get(page_through(rig, late.wrap))
    wait_for(browser, "#title", "Collect a parcel")

    press(browser, CODE[:4])

    rig.wait_screen(lambda screen: screen.digits_entered == 4)
    newest = rig.kiosk.screen()[0]
    # the page asks past a version once it shows it, and the late screen is in by then:
    # from here on nothing changes, so the field shows all 4 digits or it never will
    assert waiting.wait_until(lambda: late.asked_after >= newest, WAIT), "the page stopped asking"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#code .slot.filled")) == 4


def test_a_wrong_code_shows_the_attempts_left_and_keys_edit_the_code(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver
) -> None:
    rig = make_kiosk_cabinet(language="en", help_contact="400-800-1234")
    rig.supply(entry(51, 2, CODE))
    open_page(browser, rig)
    wait_for(browser, "#title", "Collect a parcel")

    press(browser, "123")
    filled_slots(browser, 3)
    press(browser, Keys.BACKSPACE)
    filled_slots(browser, 2)
    press(browser, Keys.ESCAPE)
    wait_for(browser, "#title", "Collect a parcel")
    filled_slots(browser, 0)

    press(browser, "1111222")
    filled_slots(browser, 7)
    press(browser, "2")

    wait_for(browser, "#title", "Wrong code")
    assert "4 more wrong codes" in text_of(browser, ".message")
    assert text_of(browser, "#help") == "Need help? Call 400-800-1234."
    screenshot(browser, "wrong-code")
    assert sum(rig.cabinet.door(n).unlock_pulses for n in range(1, 9)) == 0


def test_one_touch_switches_the_page_to_chinese(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver
) -> None:
    rig = make_kiosk_cabinet(language="en")
    open_page(browser, rig)
    wait_for(browser, "#title", "Collect a parcel")

    browser.find_element(By.ID, "language-switch").click()

    wait_for(browser, "#title", "取件")
    assert "请输入 8 位取件码" in text_of(browser, ".message")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert text_of(browser, "#language-switch") == "English"
    screenshot(browser, "home-zh")


def test_a_courier_signs_in_scans_a_label_and_the_deposit_counts_when_the_door_closes(
    make_kiosk_cabinet: KioskCabinetFactory, browser: WebDriver
) -> None:
    desk = FakeCourierDesk(couriers={"4711": 7}, free_doors={"M": [5, 6]})
    desk.announce("SF1234567890", parcel_id=41, size="M")
    deposits = Deposits()
    rig = make_kiosk_cabinet(language="en", courier=CourierHooks(desk, deposits))
    open_page(browser, rig)
    wait_for(browser, "#title", "Collect a parcel")
    screenshot(browser, "courier-home")

    browser.find_element(By.ID, "courier-entry").click()
    wait_for(browser, "#title", "Courier sign-in")
    screenshot(browser, "courier-sign-in")
    browser.find_element(By.ID, "courier-input").send_keys("4711", Keys.ENTER)

    wait_for(browser, "#title", "Scan a parcel")
    assert text_of(browser, "#courier-who") == "Courier 7, Fake Express"
    screenshot(browser, "courier-scan")
    rig.scanner.scan("YT0000001")  # not announced here
    wait_for(browser, "#title", "Not possible")
    assert "not announced for this cabinet" in text_of(browser, ".message")
    screenshot(browser, "courier-not-announced")
    press(browser, Keys.ESCAPE)
    wait_for(browser, "#title", "Scan a parcel")
    rig.scanner.scan("SF1234567890")

    wait_for(browser, "#title", "Door 5 is ready for parcel SF1234567890")
    screenshot(browser, "courier-confirm")
    assert rig.cabinet.door(5).unlock_pulses == 0
    browser.find_element(By.CSS_SELECTOR, 'button[data-courier="open"]').click()

    wait_for(browser, "#title", "Put the parcel in door 5")
    screenshot(browser, "courier-door-open")
    assert rig.cabinet.door(5).unlock_pulses == 1
    assert deposits.recorded == []
    rig.cabinet.door(5).close()

    wait_for(browser, ".message", "Door 5: the parcel is recorded.")
    screenshot(browser, "courier-deposited")
    assert deposits.recorded == [RecordDeposit(door=5, parcel_id=41, courier_id=7)]
    assert rig.cabinet.door(5).unlock_pulses == 1
