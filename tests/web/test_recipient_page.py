"""The recipients' page over HTTP, on SQLite and PostgreSQL: a parcel deposited through the
API, its link made from the QR token sealed in its pickup message (as the worker makes
it), then opened as the recipient would, and altered, expired and outdated links."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from locker_server.auth.roles import Role
from locker_server.keys import ServerKeys
from locker_server.models import Parcel
from locker_server.models.types import utcnow
from locker_server.notifications import NotificationMessage
from locker_server.notifications.recipient_link import (
    LinkKeys,
    RecipientLink,
    form_token,
    link_expiry,
    seal_link,
)
from locker_server.notifications.sealing import unseal
from locker_server.web.recipient import RedactRecipientLinks
from tests.api.conftest import AuthHeaders, MakeUser
from tests.web.conftest import csrf_of


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@dataclass(frozen=True)
class Waiting:
    parcel_id: int
    recipient_id: int


@pytest.fixture
def waiting(client: TestClient, admin_headers: AuthHeaders, make_user: MakeUser) -> Waiting:
    """A parcel deposited in a cabinet of a site with an address, in Shanghai time."""
    h = admin_headers
    site = _ok(client.post("/api/v1/sites", headers=h, json={
        "name": "North campus", "timezone": "Asia/Shanghai", "address": "1 Library Road",
    }), 201)  # fmt: skip
    cabinet = _ok(client.post("/api/v1/cabinets", headers=h, json={
        "site_id": site["id"], "code": "CAB-LIB", "name": "Library lobby",
    }), 201)  # fmt: skip
    _ok(client.post(f"/api/v1/cabinets/{cabinet['id']}/doors", headers=h,
                    json={"number": 7, "size": "M", "board": 1, "lock": 7}), 201)  # fmt: skip
    recipient = _ok(client.post("/api/v1/recipients", headers=h, json={
        "name": "Wang Fang", "email": "wang@example.org", "consent_locker_delivery": True,
    }), 201)  # fmt: skip
    courier = make_user(Role.courier)
    parcel = _ok(client.post("/api/v1/parcels", headers=courier, json={
        "tracking_number": "SF0000000001", "recipient_id": recipient["id"], "size": "M",
    }), 201)  # fmt: skip
    _ok(client.post(f"/api/v1/parcels/{parcel['id']}/reserve", headers=courier,
                    json={"cabinet_id": cabinet["id"]}))  # fmt: skip
    _ok(client.post(f"/api/v1/parcels/{parcel['id']}/deposit", headers=courier, json={}))
    return Waiting(parcel_id=parcel["id"], recipient_id=recipient["id"])


def _link_keys(app: FastAPI) -> LinkKeys:
    keys: ServerKeys = app.state.keys
    return LinkKeys.derive(keys.outbox_sealing_key)


def _sent_qr_token(app: FastAPI, parcel_id: int) -> str:
    """The QR token of the parcel's newest pickup e-mail, as the worker will unseal it."""
    with Session(app.state.engine) as session:
        message = session.exec(
            select(NotificationMessage)
            .where(NotificationMessage.parcel_id == parcel_id, NotificationMessage.kind == "email")
            .where(NotificationMessage.event == "pickup_ready")
            .order_by(col(NotificationMessage.id).desc())
        ).first()
    assert message is not None
    assert message.sealed_secret is not None
    secret = unseal(
        app.state.keys.outbox_sealing_key, message.sealed_secret,
        event_id=message.event_id, kind=message.kind,
    )  # fmt: skip
    return secret.qr_token


def _deadline(app: FastAPI, parcel_id: int) -> Any:
    with Session(app.state.engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        return parcel.pickup_deadline


def _link(app: FastAPI, parcel: Waiting, *, expires_in: timedelta | None = None) -> str:
    expires_at = (
        utcnow() + expires_in
        if expires_in is not None
        else link_expiry(_deadline(app, parcel.parcel_id))
    )
    link = RecipientLink(
        parcel_id=parcel.parcel_id, recipient_id=parcel.recipient_id, expires_at=expires_at,
        qr_token=_sent_qr_token(app, parcel.parcel_id),
    )  # fmt: skip
    return "/p/" + seal_link(_link_keys(app), link)


def _deadline_in(app: FastAPI, parcel_id: int, hours: float) -> None:
    """Move the deadline (as time passing would), e.g. into the extension window."""
    with Session(app.state.engine) as session:
        parcel = session.get(Parcel, parcel_id)
        assert parcel is not None
        parcel.pickup_deadline = utcnow().replace(microsecond=0) + timedelta(hours=hours)
        session.add(parcel)
        session.commit()


def _refusals(audit_entries: Any, action: str) -> list[Any]:
    return list(audit_entries(action=action))


def test_a_recipient_sees_status_place_address_deadline_and_the_qr_code(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any
) -> None:
    page = client.get(_link(app, waiting))

    assert page.status_code == 200
    assert "Waiting for you in the locker" in page.text
    assert "Library lobby" in page.text
    assert "door 7" in page.text
    assert "North campus" in page.text
    assert "1 Library Road" in page.text
    assert "(Asia/Shanghai)" in page.text  # the deadline in the site's time zone
    assert re.search(r'<img id="pickup-qr" src="data:image/png;base64,[A-Za-z0-9+/=]+"', page.text)
    assert "SF0000000001" not in page.text
    assert "wang@example.org" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert 'id="extend"' not in page.text  # 72 hours left: too early
    assert "You can extend the pickup time from" in page.text
    (viewed,) = audit_entries(action="recipient.page_viewed")
    assert (viewed.actor_type, viewed.actor_id) == ("recipient", str(waiting.recipient_id))
    assert viewed.parcel_id == waiting.parcel_id


def test_the_page_speaks_chinese_when_asked(
    client: TestClient, app: FastAPI, waiting: Waiting
) -> None:
    page = client.get(_link(app, waiting) + "?lang=zh-CN")

    assert page.status_code == 200
    assert "您的包裹" in page.text
    assert "已存入快递柜，等待取件" in page.text
    assert "北京时间" in page.text
    assert 'lang="zh-CN"' in page.text


@pytest.mark.parametrize("change", ["flip", "cut", "garbage", "long"])
def test_an_altered_link_gets_the_friendly_not_valid_page_and_is_audited(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any, change: str
) -> None:
    link = _link(app, waiting)
    altered = {
        "flip": link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:],
        "cut": link[:-10],
        "garbage": "/p/not-a-link",
        "long": link + "A" * 600,
    }[change]

    page = client.get(altered)

    assert page.status_code == 404
    assert "This link is not valid or has expired." in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    (refusal,) = audit_entries(action="recipient.link_rejected")
    assert refusal.outcome == "denied"
    assert json.loads(refusal.details)["path"] == "/p/…"  # the audit log never holds the link
    assert altered[3:] not in refusal.details
    assert refusal.parcel_id is None


def test_an_expired_link_is_refused_with_the_same_page(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any
) -> None:
    page = client.get(_link(app, waiting, expires_in=timedelta(seconds=-1)))

    assert page.status_code == 404
    assert "This link is not valid or has expired." in page.text
    (refusal,) = audit_entries(action="recipient.link_rejected")
    assert refusal.reason == "recipient link expired"
    assert refusal.parcel_id == waiting.parcel_id


def test_after_a_new_code_the_old_link_shows_no_qr_and_cannot_extend(
    client: TestClient, app: FastAPI, waiting: Waiting, admin_headers: AuthHeaders
) -> None:
    old = _link(app, waiting)
    _ok(client.post(f"/api/v1/parcels/{waiting.parcel_id}/reissue", headers=admin_headers))
    _deadline_in(app, waiting.parcel_id, 2)

    page = client.get(old)

    assert page.status_code == 200
    assert "pickup-qr" not in page.text
    assert 'id="extend"' not in page.text
    assert "A new pickup code was sent to you" in page.text
    assert "pickup-qr" in client.get(_link(app, waiting)).text  # the new link shows the new QR


def test_a_picked_up_or_cancelled_parcel_shows_its_status_without_a_qr_code(
    client: TestClient, app: FastAPI, waiting: Waiting, admin_headers: AuthHeaders
) -> None:
    link = _link(app, waiting)
    _ok(client.post(f"/api/v1/parcels/{waiting.parcel_id}/cancel", headers=admin_headers,
                    json={"reason": "damaged"}))  # fmt: skip

    page = client.get(link)

    assert page.status_code == 200
    assert 'data-state="cancelled"' in page.text
    assert "pickup-qr" not in page.text
    assert 'id="extend"' not in page.text


def test_a_recipient_extends_once_in_the_window_and_is_told_the_second_time(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any
) -> None:
    link = _link(app, waiting)
    _deadline_in(app, waiting.parcel_id, 2)
    before = _deadline(app, waiting.parcel_id)
    form = csrf_of(client.get(link).text)

    done = client.post(link + "/extend", data={"csrf_token": form}, follow_redirects=False)

    assert done.status_code == 303
    assert done.headers["location"] == link + "?extended=1"
    page = client.get(done.headers["location"])
    assert "Done: your parcel now waits for you until" in page.text
    assert _deadline(app, waiting.parcel_id) == before + timedelta(hours=48)
    (extended,) = audit_entries(action="parcel.extended")
    assert (extended.actor_type, extended.actor_id) == ("recipient", str(waiting.recipient_id))
    assert extended.channel == "web"
    assert 'id="extend"' not in page.text

    again = client.post(link + "/extend", data={"csrf_token": form})

    assert again.status_code == 409
    assert "already extended; it cannot be extended again" in again.text
    (refused,) = audit_entries(action="parcel.extension_refused")
    assert refused.outcome == "refused"
    assert json.loads(refused.details)["path"] == "/p/…"


def test_extending_too_early_is_refused_and_said_on_the_page(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any
) -> None:
    link = _link(app, waiting)
    form = form_token(_link_keys(app), link[3:])  # the page shows no form yet: made by hand

    early = client.post(link + "/extend", data={"csrf_token": form})

    assert early.status_code == 422
    assert "You can extend the pickup time from" in early.text
    assert audit_entries(action="parcel.extension_refused")
    assert not audit_entries(action="parcel.extended")


def test_a_form_without_the_links_token_cannot_extend(
    client: TestClient, app: FastAPI, waiting: Waiting, audit_entries: Any
) -> None:
    link = _link(app, waiting)
    _deadline_in(app, waiting.parcel_id, 2)
    other_link = _link(app, waiting)

    for token in ("", "forged", csrf_of(client.get(other_link).text)):
        answer = client.post(link + "/extend", data={"csrf_token": token})
        assert answer.status_code == 403

    assert not audit_entries(action="parcel.extended")
    assert len(audit_entries(action="access.denied")) == 3


def test_the_access_log_never_holds_a_link() -> None:
    line = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/p/AZUNAGRMwWvO_mtc05-ZSu?lang=en", "1.1", 200), None,
    )  # fmt: skip

    assert RedactRecipientLinks().filter(line)
    assert line.getMessage() == '127.0.0.1:5000 - "GET /p/…?lang=en HTTP/1.1" 200'
