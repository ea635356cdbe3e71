"""What every console page shares: rendering in the visitor's language, who is signed in,
and the gate that sends the anonymous to the sign-in form and refuses (and audits) the
signed-in on a page not meant for their role."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from locker_server.api.deps import record_refusal
from locker_server.auth.errors import CredentialsRejected
from locker_server.auth.principal import Principal
from locker_server.auth.principals import authenticate_credential
from locker_server.auth.roles import Role
from locker_server.auth.users import console_language, remember_console_language
from locker_server.keys import ServerKeys
from locker_server.web.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGE_NAMES,
    LANGUAGES,
    Translator,
    pick_language,
)
from locker_server.web.session import SESSION_COOKIE, session_csrf_token, tokens_match

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a page request, and the CSRF token of their forms."""

    principal: Principal
    csrf: str
    #: The language the user chose last time (None: never chose one).
    language: str | None = None


# --- rendering ---------------------------------------------------------------------------


def language_of(request: Request, viewer: Viewer | None = None) -> str:
    """``?lang=``, else the signed-in user's choice, else the cookie, else the browser's."""
    remembered = (viewer.language if viewer else None) or request.cookies.get(LANGUAGE_COOKIE)
    return pick_language(
        request.query_params.get("lang"), remembered, request.headers.get("accept-language")
    )


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request, viewer)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": Translator(language),
            "lang": language,
            "languages": LANGUAGE_NAMES,
            "viewer": viewer,
            "lang_links": {code: with_query(request, lang=code) for code in LANGUAGES},
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_AGE, samesite="lax", path="/"
        )
    return response


def with_query(request: Request, path: str | None = None, **changes: str | int | None) -> str:
    """This page's query changed (``None`` removes a parameter), on ``path`` (default: this
    page's path)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    query = urlencode(params)
    target = path or request.url.path
    return f"{target}?{query}" if query else target


# --- who is looking ------------------------------------------------------------------------


def viewer_of(request: Request, session: Session, keys: ServerKeys) -> Viewer | None:
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
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        remember_console_language(session, principal.id, asked)
        chosen: str | None = asked
    else:
        chosen = console_language(session, principal.id)
    return Viewer(principal, session_csrf_token(keys.token_signing_key, token), chosen)


def landing_of(principal: Principal) -> str:
    return "/audit" if principal.role is Role.security else "/cabinets"


def to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?{urlencode({'next': target})}", status_code=303)


def gate(request: Request, session: Session, keys: ServerKeys, *roles: Role) -> Viewer | Response:
    """The viewer if they may open this page; else where they go instead."""
    viewer = viewer_of(request, session, keys)
    if viewer is None:
        return to_sign_in(request)
    principal = viewer.principal
    if principal.role not in (*roles, Role.admin):
        record_refusal(
            request,
            action="access.denied",
            reason=f"role {principal.role.value} may not open {request.url.path}",
        )
        return render(request, "denied.html", viewer=viewer, status_code=403)
    return viewer


def csrf_refused(request: Request, viewer: Viewer, csrf_token: str) -> Response | None:
    """None when the form carries the session's CSRF token; else the audited 403 page."""
    if tokens_match(viewer.csrf, csrf_token):
        return None
    record_refusal(request, action="access.denied", reason="form without a valid CSRF token")
    return render(request, "denied.html", viewer=viewer, status_code=403)
