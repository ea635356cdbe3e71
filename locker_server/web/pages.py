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
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine
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
from locker_server.audit import export
from locker_server.audit.export import EntryFilter
from locker_server.audit.service import (
    Reader,
    browse_entries,
    last_verification,
    record_export,
    verify_log,
)
from locker_server.auth.errors import LoginRefused, TooManyAttempts
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.auth.users import user_id_by_name, usernames
from locker_server.services import console
from locker_server.web.common import (
    csrf_refused,
    gate,
    landing_of,
    language_of,
    render,
    to_sign_in,
    viewer_of,
    with_query,
)
from locker_server.web.i18n import Translator
from locker_server.web.session import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    new_sign_in_csrf_token,
    safe_next,
    set_cookie,
    tokens_match,
)

router = APIRouter(include_in_schema=False)

#: Entries per audit page.
AUDIT_PAGE_SIZE = 50
#: Outcomes the audit filter offers (the log may hold others; the text filter finds them).
OUTCOMES = ("success", "failure", "denied", "refused", "alarm", "locked_out", "unmatched")
_SIGN_IN_FORM_AGE = 3600


# --- sign-in -------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = viewer_of(request, session, keys)
    if viewer is None:
        return to_sign_in(request)
    return RedirectResponse(landing_of(viewer.principal), status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, session: SessionDep, keys: KeysDep) -> Response:
    viewer = viewer_of(request, session, keys)
    if viewer is not None:
        return RedirectResponse(landing_of(viewer.principal), status_code=303)
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
    response = render(
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
    t = Translator(language_of(request))
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
    viewer = viewer_of(request, session, keys)
    if viewer is not None:
        if not tokens_match(viewer.csrf, csrf_token):
            record_refusal(
                request, action="access.denied", reason="sign-out without a valid CSRF token"
            )
            return render(request, "denied.html", viewer=viewer, status_code=403)
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
    viewer = gate(request, session, keys, Role.security)
    if isinstance(viewer, Response):
        return viewer
    principal = viewer.principal
    query = _audit_query(request, session, principal)
    for problem in query.problems:
        record_refusal(request, action="access.denied", outcome="refused", reason=problem[:200])
    reader = Reader(actor=principal.actor, channel=client.channel, source=client.source)
    page = browse_entries(
        audit, session, reader, query.entry_filter, before=query.before, limit=AUDIT_PAGE_SIZE
    )
    users = usernames(session, _user_ids(page.entries))
    return render(
        request,
        "audit.html",
        viewer=viewer,
        query=query,
        page=page,
        names=console.entry_names(session, page.entries),
        users=users,
        sites=console.sites_in_scope(session, principal.site_ids),
        cabinets=console.cabinets_in_scope(session, principal.site_ids),
        outcomes=OUTCOMES,
        last_verified=last_verification(session),
        export_links={
            kind: with_query(request, "/audit/export", format=kind, before=None)
            for kind in ("csv", "jsonl")
        },
        bundle_command=bundle_command(query.entry_filter),
        older_link=with_query(request, before=page.older_than) if page.older_than else None,
        newest_link=with_query(request, before=None) if query.before else None,
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
    viewer = gate(request, session, keys, Role.operator)
    if isinstance(viewer, Response):
        return viewer
    board = console.cabinet_board(session, viewer.principal.site_ids)
    template = "_board.html" if request.query_params.get("fragment") == "board" else "cabinets.html"
    return render(request, template, viewer=viewer, board=board)


def bundle_command(entry_filter: EntryFilter) -> str:
    """The CLI command that exports exactly this filtered set as a verification bundle."""
    flags = {
        "--from": entry_filter.since.isoformat() if entry_filter.since else None,
        "--to": entry_filter.until.isoformat() if entry_filter.until else None,
        "--action": entry_filter.action_prefix,
        "--site": entry_filter.site_id,
        "--cabinet": entry_filter.cabinet_id,
        "--door": entry_filter.door_id,
        "--parcel": entry_filter.parcel_id,
        "--outcome": entry_filter.outcome,
        "--actor": entry_filter.actor,
        "--text": entry_filter.text,
    }
    words = ["locker-server", "audit", "export", "--format", "bundle", "--out", "audit-bundle.zip"]
    for flag, value in flags.items():
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


@router.get("/audit/export")
def audit_export(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
) -> Response:
    """Exactly the entries the audit page's filters select, as CSV or JSON Lines."""
    viewer = gate(request, session, keys, Role.security)
    if isinstance(viewer, Response):
        return viewer
    export_format = request.query_params.get("format", "jsonl")
    if export_format not in ("csv", "jsonl"):
        export_format = "jsonl"
    query = _audit_query(request, session, viewer.principal)
    reader = Reader(actor=viewer.principal.actor, channel=client.channel, source=client.source)
    record_export(audit, session, reader, query.entry_filter, export_format=export_format)
    session.commit()  # recorded before the first byte leaves
    media_type = "text/csv" if export_format == "csv" else "application/x-ndjson"
    headers = {
        "Content-Disposition": f'attachment; filename="audit-export.{export_format}"',
        "Cache-Control": "no-store",
    }
    lines = _export_lines(request.app.state.engine, export_format, query.entry_filter)
    return StreamingResponse(lines, media_type=media_type, headers=headers)


def _export_lines(engine: Engine, export_format: str, entry_filter: EntryFilter) -> Iterator[str]:
    # Its own session: the request's session is closed before the body streams.
    with Session(engine) as session:
        if export_format == "csv":
            yield from export.csv_lines(session, entry_filter)
        else:
            yield from export.jsonl_lines(session, entry_filter)


@router.post("/audit/verify")
def audit_verify(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Verify the whole log now (chain, checkpoints, cadence, witness) and say the verdict."""
    viewer = gate(request, session, keys, Role.security)
    if isinstance(viewer, Response):
        return viewer
    refused = csrf_refused(request, viewer, csrf_token)
    if refused is not None:
        return refused
    reader = Reader(actor=viewer.principal.actor, channel=client.channel, source=client.source)
    report = verify_log(audit, session, reader)
    return render(request, "verified.html", viewer=viewer, report=report)
