"""The recipient's page: ``/p/<token>``, opened from the pickup message, no account needed.

The link is the capability (``locker_server.notifications.recipient_link``): it carries,
sealed, the parcel, the recipient, its expiry and the QR token sent with it. The page
shows the parcel's status, where it is, the pickup deadline in the site's time zone, the
QR code again while that token still opens the door (not after a re-issue, a pickup or a
cancellation), and an Extend button when the recipient-extension rule allows it now.

The URL is a secret: pages say ``Referrer-Policy: no-referrer`` and ``Cache-Control:
no-store``, may not be framed, and the token is cut from the access log and from every
audit entry. A link that does not open, or has expired, gets one friendly 404 page and is
audited as ``recipient.link_rejected``. The Extend form carries a keyed hash of the link,
so a page elsewhere cannot submit it; a refused extension is said on the page and audited
as ``parcel.extension_refused``.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from locker_server.api.deps import (
    ClientContext,
    ClientInfo,
    KeysDep,
    SessionDep,
    SettingsDep,
    record_refusal,
)
from locker_server.api.routes._domain import DomainDepsDep
from locker_server.audit import Actor, AuditEvent
from locker_server.errors import DomainError
from locker_server.keys import ServerKeys
from locker_server.models import Cabinet, CredentialKind, Door, Parcel, Site
from locker_server.notifications.errors import LinkRejected
from locker_server.notifications.qr import qr_png
from locker_server.notifications.recipient_link import (
    LINK_PATH,
    LinkKeys,
    RecipientLink,
    form_token,
    open_link,
)
from locker_server.notifications.templates import format_when
from locker_server.services import Caller, parcels
from locker_server.services.credentials import is_live_credential
from locker_server.services.lifecycle import COLLECTABLE
from locker_server.services.parcels import ExtensionOutlook
from locker_server.web.common import language_of, render
from locker_server.web.i18n import Translator
from locker_server.web.session import tokens_match

router = APIRouter(include_in_schema=False)

#: What the audit log and the access log show instead of a link's token.
REDACTED_PATH = LINK_PATH + "…"
_TOKEN_IN_PATH = re.compile(re.escape(LINK_PATH) + r"[A-Za-z0-9_-]+")
_PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
#: Any text: a token that is too long or not base64 gets the same friendly page as a forged one.
TokenPath = str


@dataclass(frozen=True, slots=True)
class ParcelView:
    """One opened link and what it points at."""

    link: RecipientLink
    parcel: Parcel
    site: Site | None
    cabinet: Cabinet | None
    door: Door | None
    #: The link's QR token still opens the door (not re-issued, used or voided).
    qr_current: bool

    @property
    def recipient(self) -> Actor:
        return Actor(type="recipient", id=str(self.link.recipient_id))

    def targets(self) -> dict[str, Any]:
        return {
            "site_id": self.parcel.site_id,
            "cabinet_id": self.parcel.cabinet_id,
            "door_id": self.parcel.door_id,
            "parcel_id": self.parcel.id,
            "recipient_id": self.link.recipient_id,
        }


class RedactRecipientLinks(logging.Filter):
    """Cuts link tokens from access-log lines (uvicorn logs each request's path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub(REDACTED_PATH, arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log(logger_name: str = "uvicorn.access") -> None:
    """Install :class:`RedactRecipientLinks` on the access log once."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactRecipientLinks) for f in logger.filters):
        logger.addFilter(RedactRecipientLinks())


# --- opening a link ------------------------------------------------------------------------


def _link_keys(keys: ServerKeys) -> LinkKeys:
    return LinkKeys.derive(keys.outbox_sealing_key)


def _refuse_link(request: Request, reason: str, link: RecipientLink | None) -> Response:
    record_refusal(
        request,
        action="recipient.link_rejected",
        reason=reason,
        actor=Actor(type="anonymous"),
        details={"path": REDACTED_PATH},
        parcel_id=link.parcel_id if link is not None else None,
    )
    return _page(request, "recipient_invalid.html", status_code=404)


def _open(
    request: Request, session: Session, keys: ServerKeys, token: str, now: datetime
) -> ParcelView | Response:
    """The link's parcel, or the refusal page (audited) if the link does not stand."""
    try:
        link = open_link(_link_keys(keys), token, now=now)
    except LinkRejected as exc:
        return _refuse_link(request, f"recipient link {exc.reason}", exc.link)
    parcel = session.get(Parcel, link.parcel_id)
    if parcel is None or parcel.recipient_id != link.recipient_id:
        return _refuse_link(request, "recipient link names no parcel of its recipient", link)
    live = parcel.state in COLLECTABLE and is_live_credential(
        session, keys.pickup_hmac_key, parcel_id=link.parcel_id,
        kind=CredentialKind.qr, value=link.qr_token,
    )  # fmt: skip
    return ParcelView(
        link=link,
        parcel=parcel,
        site=session.get(Site, parcel.site_id) if parcel.site_id else None,
        cabinet=session.get(Cabinet, parcel.cabinet_id) if parcel.cabinet_id else None,
        door=session.get(Door, parcel.door_id) if parcel.door_id else None,
        qr_current=live,
    )


# --- showing the page ----------------------------------------------------------------------


def _page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    response = render(request, template, status_code=status_code, **context)
    response.headers.update(_PAGE_HEADERS)
    return response


def _when(moment: datetime | None, view: ParcelView, language: str) -> str:
    if moment is None:
        return ""
    timezone = view.site.timezone if view.site is not None else "UTC"
    return format_when(moment.isoformat(), timezone, language)


def _outlook(view: ParcelView, now: datetime, request: Request) -> ExtensionOutlook:
    outlook = parcels.recipient_extension_outlook(view.parcel, request.app.state.settings, now)
    if outlook.refusal != "not_waiting" and not view.qr_current:
        # A re-issued code (lost message, suspected leak) takes this link's power with it.
        return ExtensionOutlook("replaced", outlook.hours)
    return outlook


def _show(
    request: Request,
    view: ParcelView,
    token: str,
    now: datetime,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    language = language_of(request)
    outlook = _outlook(view, now, request)
    return _page(
        request,
        "recipient.html",
        status_code=status_code,
        view=view,
        deadline=_when(view.parcel.pickup_deadline, view, language),
        qr_image=_data_uri(qr_png(view.link.qr_token)) if view.qr_current else None,
        outlook=outlook,
        opens_at=_when(outlook.opens_at, view, language),
        form_action=f"{LINK_PATH}{token}/extend",
        form_token=form_token(_link_keys(request.app.state.keys), token),
        extended=problem is None
        and request.query_params.get("extended") == "1"
        and view.parcel.extensions_used > 0,
        problem=problem,
    )


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _record_view(session: Session, request: Request, view: ParcelView, client: ClientInfo) -> None:
    """A shown QR code is a credential handed out: the chain of custody says when and where."""
    request.app.state.audit.record(
        session,
        AuditEvent(
            action="recipient.page_viewed", actor=view.recipient, outcome="success",
            channel=client.channel, source=client.source, details={"qr_shown": view.qr_current},
            **view.targets(),
        ),
    )  # fmt: skip


@router.get("/p/{token}")
def recipient_page(
    token: TokenPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    deps: DomainDepsDep,
    client: ClientContext,
) -> Response:
    now = deps.clock()
    view = _open(request, session, keys, token, now)
    if isinstance(view, Response):
        return view
    _record_view(session, request, view, client)
    return _show(request, view, token, now)


# --- the recipient's extension -------------------------------------------------------------


def _refusal_text(t: Translator, outlook: ExtensionOutlook, opens_at: str) -> str:
    key = outlook.refusal or "used"
    return t(f"recipient.refusal.{key}", when=opens_at)


@router.post("/p/{token}/extend")
def recipient_extend(
    token: TokenPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    settings: SettingsDep,
    deps: DomainDepsDep,
    client: ClientContext,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    now = deps.clock()
    view = _open(request, session, keys, token, now)
    if isinstance(view, Response):
        return view
    t = Translator(language_of(request))
    if not tokens_match(form_token(_link_keys(keys), token), csrf_token):
        _refuse_extension(request, view, "form without a valid link token", "access.denied")
        return _show(
            request, view, token, now, problem=t("recipient.form_expired"), status_code=403
        )
    outlook = _outlook(view, now, request)
    if outlook.refusal == "replaced":
        _refuse_extension(request, view, "the link's code was replaced")
        return _show(request, view, token, now, problem=t("recipient.replaced"), status_code=409)
    caller = Caller(actor=view.recipient, channel=client.channel, source=client.source)
    try:
        parcels.extend_for_recipient(
            session, deps, parcel_id=view.link.parcel_id, hours=settings.max_extension_hours,
            caller=caller,
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        _refuse_extension(request, view, str(exc)[:200])
        problem = _refusal_text(t, outlook, _when(outlook.opens_at, view, t.language))
        return _show(request, view, token, now, problem=problem, status_code=exc.http_status)
    return RedirectResponse(f"{LINK_PATH}{token}?extended=1", status_code=303)


def _refuse_extension(
    request: Request, view: ParcelView, reason: str, action: str = "parcel.extension_refused"
) -> None:
    record_refusal(
        request, action=action, reason=reason, outcome="refused", actor=view.recipient,
        details={"path": REDACTED_PATH}, **view.targets(),
    )  # fmt: skip
