"""A recipient opens their page from the real e-mail and extends, in headless Chromium.

The parcel is deposited through the domain services, the notification worker sends the
pickup e-mail to a real SMTP server (aiosmtpd), and the browser, sized like a phone,
follows the link read from that e-mail to the application served by uvicorn. Saves the
screenshot docs/web.md shows."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlmodel import Session

from locker_contract.pickup_qr import parse_pickup_qr
from locker_server.audit import Actor
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    DoorCreate,
    Parcel,
    RecipientCreate,
    SiteCreate,
)
from locker_server.models.types import utcnow
from locker_server.notifications import NotificationWorker
from locker_server.services import Caller, DomainDeps, directory, layout
from locker_server.services.parcels import Announcement, announce, record_deposit, reserve
from tests.notifications.notification_support import MailSink, free_port
from tests.waiting import wait_until
from tests.web.browser import CHROMEDRIVER, CHROMIUM, SCREENSHOTS, needs_chromium, serving

pytestmark = [needs_chromium]


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    with serving(app) as base:
        yield base


OPERATOR = Caller(actor=Actor(type="user", id="1"), channel="api")
COURIER = Caller(actor=Actor(type="courier", id="2"), channel="api")


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def phone() -> Iterator[WebDriver]:
    """Headless Chromium the size of a phone screen."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=412,1000", "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _deposit_parcel(app: FastAPI) -> int:
    """A parcel in door 3 of the library's locker, its pickup e-mail queued."""
    state = app.state
    deps = DomainDeps(
        settings=state.settings, keys=state.keys, audit=state.audit, notifier=state.notifier
    )
    with session_scope(state.engine) as session:
        site = layout.create_site(session, deps, SiteCreate(
            name="North campus", timezone="Europe/Paris", address="1 Library Road, Lyon",
        ), caller=OPERATOR)  # fmt: skip
        cabinet = layout.create_cabinet(session, deps, CabinetCreate(
            site_id=site.id or 0, code="CAB-LIB", name="Library lobby",
        ), caller=OPERATOR)  # fmt: skip
        layout.add_doors(session, deps, cabinet.id or 0, [
            DoorCreate(number=3, size="M", board=1, lock=3, accessible_height=False),
        ], caller=OPERATOR)  # fmt: skip
        carrier = directory.create_carrier(
            session, deps, CarrierCreate(name="SwiftPost"), caller=OPERATOR
        )
        recipient = directory.create_recipient(session, deps, RecipientCreate(
            name="Alice Martin", email="alice@example.org", consent_locker_delivery=True,
        ), caller=OPERATOR)  # fmt: skip
        spec = Announcement(carrier.id or 0, "TRK-BROWSER-1", recipient.id or 0)
        parcel = announce(session, deps, spec, caller=COURIER)
        parcel_id = parcel.id or 0
        reserve(session, deps, parcel_id=parcel_id, cabinet_id=cabinet.id or 0, caller=COURIER)
        cabinet_id = cabinet.id or 0
    with session_scope(state.engine) as session:
        record_deposit(session, deps, cabinet_id=cabinet_id, door_number=3, parcel_id=parcel_id,
                       caller=COURIER)  # fmt: skip
    return parcel_id


def _two_hours_left(app: FastAPI, parcel_id: int) -> None:
    """Time passes: the deadline comes within the recipient's extension window."""
    with Session(app.state.engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        parcel.pickup_deadline = utcnow().replace(microsecond=0) + timedelta(hours=2)
        session.add(parcel)
        session.commit()


def _send_mail(app: FastAPI, mail_sink: MailSink, base_url: str) -> EmailMessage:
    settings: Settings = app.state.settings
    worker_settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": mail_sink.port, "public_base_url": base_url}
    )
    NotificationWorker(app.state.engine, worker_settings, app.state.keys).run_once()
    (email,) = mail_sink.messages
    return email


def _link_in(email: EmailMessage, base_url: str) -> str:
    body = email.get_body(("plain",))
    assert body is not None
    match = re.search(re.escape(base_url) + r"/p/[A-Za-z0-9_-]+\?lang=en", body.get_content())
    assert match, "the e-mail carries no link to the recipient's page"
    return match.group(0)


def _qr_token_in_png(png: bytes) -> str | None:
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return parse_pickup_qr(barcode.text)


def _emailed_qr_token(email: EmailMessage) -> str | None:
    (part,) = [p for p in email.walk() if p.get_content_type() == "image/png"]
    png = part.get_payload(decode=True)
    assert isinstance(png, bytes)
    return _qr_token_in_png(png)


def _text_of(driver: WebDriver, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def test_a_recipient_opens_their_page_from_the_email_and_extends(
    app: FastAPI, served: str, phone: WebDriver, mail_sink: MailSink
) -> None:
    parcel_id = _deposit_parcel(app)
    _two_hours_left(app, parcel_id)
    email = _send_mail(app, mail_sink, served)

    phone.get(_link_in(email, served))

    assert wait_until(lambda: bool(phone.find_elements(By.ID, "pickup-qr")), 10)
    shown = phone.find_element(By.ID, "pickup-qr")
    assert phone.execute_script("return arguments[0].naturalWidth > 0;", shown)
    src = shown.get_attribute("src") or ""
    page_qr = _qr_token_in_png(base64.b64decode(src.split(",", 1)[1]))
    assert page_qr is not None
    assert page_qr == _emailed_qr_token(email)  # the same QR code as in the e-mail
    before = _text_of(phone, "#deadline")
    assert "(Europe/Paris)" in before
    assert "1 Library Road, Lyon" in phone.page_source

    phone.find_element(By.ID, "extend").click()

    assert wait_until(lambda: bool(phone.find_elements(By.ID, "extended")), 10)
    after = _text_of(phone, "#deadline")
    assert after != before
    assert after in _text_of(phone, "#extended")
    assert not phone.find_elements(By.ID, "extend")  # one extension only
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.save_screenshot(str(SCREENSHOTS / "recipient-page.png"))
