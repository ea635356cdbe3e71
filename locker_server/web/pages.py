"""The console's pages: sign-in, the audit log for security staff, the cabinet board for
operators. Server-rendered (Jinja2, autoescaped), one small script for live updates.

Who may open what (admins may open everything):

=============  ==============================================
``/``          anyone signed in: sent to their role's page
``/sign-in``   anyone (the form: ``username``, ``password``)
``/audit``     security staff
``/cabinets``  operators
=============  ==============================================

An anonymous visitor is sent to ``/sign-in`` (and back afterwards); a signed-in user on a
page not for their role gets a 403 page, audited as ``access.denied`` like any refusal.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from locker_server.api.deps import (
    AuditDep,
    ClientContext,
    KeysDep,
    SessionDep,
    SettingsDep,
    record_refusal,
)
from locker_server.api.signin import sign_in
from locker_server.audit.export import EntryFilter
from locker_server.audit.service import Reader, browse_entries
from locker_server.auth.errors import CredentialsRejected, LoginRefused, TooManyAttempts
from locker_server.auth.principal import Principal
from locker_server.auth.principals import authenticate_credential
from locker_server.auth.roles import Role
from locker_server.auth.users import user_id_by_name, usernames
from locker_server.keys import ServerKeys
from locker_server.services import console
from locker_server.web.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGE_NAMES,
    LANGUAGES,
    Translator,
    pick_language,
)
from locker_server.web.session import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    new_sign_in_csrf_token,
    safe_next,
    session_csrf_token,
    set_cookie,
    tokens_match,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))

#: Entries per audit page.
AUDIT_PAGE_SIZE = 50
#: Outcomes the audit filter offers (the log may hold others; the text filter finds them).
OUTCOMES = ("success", "failure", "denied", "refused", "alarm", "locked_out", "unmatched")
_LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
_SIGN_IN_FORM_AGE = 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a page request, and the CSRF token of their forms."""

    principal: Principal
    csrf: str


# --- rendering ---------------------------------------------------------------------------


def _language(request: Request) -> str:
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )


def _render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = _language(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": Translator(language),
            "lang": language,
            "languages": LANGUAGE_NAMES,
            "viewer": viewer,
            "lang_links": {code: _with_query(request, lang=code) for code in LANGUAGES},
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=_LANGUAGE_COOKIE_AGE, samesite="lax", path="/"
        )
    return response


def _with_query(request: Request, **changes: str | int | None) -> str:
    """This page's path with its query changed (``None`` removes a parameter)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


# --- who is looking ------------------------------------------------------------------------


def _viewer(request: Request, session: Session, keys: ServerKeys) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = authenticate_credential(session, keys, token)
    except CredentialsRejected as exc:
        record_refusal(request, action="auth.token_rejected", reason=exc.reason)
        return None
    if principal.kind != "user":
        return None  # a session cookie holds a user's token, never an API key
    request.state.principal = principal
    return Viewer(principal, session_csrf_token(keys.token_signing_key, token))


def _landing(principal: Principal) -> str:
    return "/audit" if principal.role is Role.security else "/cabinets"


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?{urlencode({'next': target})}", status_code=303)


def _gate(request: Request, session: Session, keys: ServerKeys, role: Role) -> Viewer | Response:
    """The viewer if they may open this page; else where they go instead."""
    viewer = _viewer(request, session, keys)
    if viewer is None:
        return _to_sign_in(request)
    principal = viewer.principal
    if principal.role not in (role, Role.admin):
        record_refusal(
            request,
            action="access.denied",
            reason=f"role {principal.role.value} may not open {request.url.path}",
        )
        return _render(request, "denied.html", viewer=viewer, status_code=403)
    return viewer


# --- sign-in -------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = _viewer(request, session, keys)
    if viewer is None:
        return _to_sign_in(request)
    return RedirectResponse(_landing(viewer.principal), status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = _viewer(request, session, keys)
    if viewer is not None:
        return RedirectResponse(_landing(viewer.principal), status_code=303)
    return _sign_in_page(request, next_page=request.query_params.get("next"))


def _sign_in_page(
    request: Request,
    *,
    next_page: str | None,
    problem: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    csrf = new_sign_in_csrf_token()
    response = _render(
        request,
        "sign_in.html",
        csrf=csrf,
        next_page=safe_next(next_page) or "",
        problem=problem,
        status_code=status_code,
    )
    set_cookie(request, response, SIGN_IN_CSRF_COOKIE, csrf, _SIGN_IN_FORM_AGE)
    response.headers.update(headers or {})
    return response


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    username: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = "",
) -> Response:
    t = Translator(_language(request))
    if not tokens_match(request.cookies.get(SIGN_IN_CSRF_COOKIE), csrf_token):
        record_refusal(
            request, action="access.denied", reason="sign-in form without a valid CSRF token"
        )
        return _sign_in_page(
            request, next_page=next_page, problem=t("sign_in.expired_form"), status_code=403
        )
    try:
        user, token = sign_in(
            request, session, username=username, password=password, client=client,
            settings=settings, keys=keys, audit=audit,
        )  # fmt: skip
    except LoginRefused:
        return _sign_in_page(
            request, next_page=next_page, problem=t("sign_in.failed"), status_code=401
        )
    except TooManyAttempts as exc:
        seconds = exc.retry_after or 60
        return _sign_in_page(
            request,
            next_page=next_page,
            problem=t("sign_in.throttled", seconds=seconds),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    landing = "/audit" if user.role == Role.security else "/cabinets"
    response = RedirectResponse(safe_next(next_page) or landing, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token.access_token, token.expires_in)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    viewer = _viewer(request, session, keys)
    if viewer is not None:
        if not tokens_match(viewer.csrf, csrf_token):
            record_refusal(
                request, action="access.denied", reason="sign-out without a valid CSRF token"
            )
            return _render(request, "denied.html", viewer=viewer, status_code=403)
        reader = Reader(actor=viewer.principal.actor, channel=client.channel, source=client.source)
        audit.record(session, reader.event("auth.logout", "success", {}))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the audit log -------------------------------------------------------------------------


@dataclasses.dataclass
class AuditQuery:
    """The audit page's filters as typed (for the form) and as applied (for the query)."""

    typed: dict[str, str]
    entry_filter: EntryFilter
    before: int | None
    problems: list[str]


_AUDIT_FIELDS = (
    "from",
    "to",
    "site",
    "cabinet",
    "door",
    "parcel",
    "actor",
    "action",
    "outcome",
    "q",
)


@router.get("/audit")
def audit_page(
    request: Request, session: SessionDep, keys: KeysDep, audit: AuditDep, client: ClientContext
) -> Response:
    gate = _gate(request, session, keys, Role.security)
    if isinstance(gate, Response):
        return gate
    principal = gate.principal
    query = _audit_query(request, session, principal)
    for problem in query.problems:
        record_refusal(request, action="access.denied", outcome="refused", reason=problem[:200])
    reader = Reader(actor=principal.actor, channel=client.channel, source=client.source)
    page = browse_entries(
        audit, session, reader, query.entry_filter, before=query.before, limit=AUDIT_PAGE_SIZE
    )
    users = usernames(session, _user_ids(page.entries))
    return _render(
        request,
        "audit.html",
        viewer=gate,
        query=query,
        page=page,
        names=console.entry_names(session, page.entries),
        users=users,
        sites=console.sites_in_scope(session, principal.site_ids),
        cabinets=console.cabinets_in_scope(session, principal.site_ids),
        outcomes=OUTCOMES,
        older_link=_with_query(request, before=page.older_than) if page.older_than else None,
        newest_link=_with_query(request, before=None) if query.before else None,
    )


def _user_ids(entries: list[dict[str, Any]]) -> list[int]:
    return [
        int(entry["actor_id"])
        for entry in entries
        if entry["actor_type"] == "user" and str(entry["actor_id"]).isdigit()
    ]


def _audit_query(request: Request, session: Session, principal: Principal) -> AuditQuery:
    params = request.query_params
    typed = {name: params.get(name, "").strip()[:200] for name in _AUDIT_FIELDS}
    problems: list[str] = []
    values: dict[str, Any] = {}

    def number(name: str) -> int | None:
        text = typed[name]
        if not text:
            return None
        if text.isdigit() and 0 < int(text) < 2**31:
            return int(text)
        problems.append(f"{name}: not a number")
        return None

    values["since"] = _time(typed["from"], "from", problems)
    values["until"] = _time(typed["to"], "to", problems)
    site_id = number("site")
    if site_id is not None and not principal.can_access_site(site_id):
        problems.append(f"site: no access to site {site_id}")
        site_id = None
    values["site_id"] = site_id
    values["cabinet_id"] = number("cabinet")
    door_number = number("door")
    if door_number is not None:
        if values["cabinet_id"] is None:
            problems.append("door: choose the cabinet too")
        else:
            values["door_id"] = console.door_id_of(session, values["cabinet_id"], door_number) or 0
    if typed["parcel"]:
        values["parcel_id"] = console.parcel_id_of(session, typed["parcel"]) or 0
    if typed["actor"]:
        values["actor"] = _actor(session, typed["actor"])
    if typed["action"]:
        values["action_prefix"] = typed["action"].lower()
    if typed["outcome"]:
        values["outcome"] = typed["outcome"]
    if typed["q"]:
        values["text"] = typed["q"]
    before_text = params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 19 else None
    entry_filter = EntryFilter(allowed_sites=principal.site_ids, **values)
    return AuditQuery(typed=typed, entry_filter=entry_filter, before=before, problems=problems)


def _time(text: str, name: str, problems: list[str]) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: not a date and time")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _actor(session: Session, typed: str) -> str:
    """``cabinet``, ``system``, ``user:3`` as they are; a user name becomes ``user:<id>``."""
    if ":" in typed or typed in ("cabinet", "system", "anonymous", "api_key", "user"):
        return typed
    user_id = user_id_by_name(session, typed)
    return f"user:{user_id}" if user_id is not None else "user:0"


# --- the cabinet board ---------------------------------------------------------------------


@router.get("/cabinets")
def cabinets_page(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    gate = _gate(request, session, keys, Role.operator)
    if isinstance(gate, Response):
        return gate
    board = console.cabinet_board(session, gate.principal.site_ids)
    template = "_board.html" if request.query_params.get("fragment") == "board" else "cabinets.html"
    return _render(request, template, viewer=gate, board=board)
