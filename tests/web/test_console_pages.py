"""The console as a browser sees it: sign-in, where each role may go, CSRF, languages,
the audit log page and the cabinet board. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from locker_server.audit import Actor, AuditEvent
from locker_server.db import session_scope
from locker_server.models import Cabinet, Door, SizeClass
from tests.api.conftest import TEST_PASSWORD, AuthHeaders, MakeUser
from tests.web.conftest import SignIn, csrf_of, unique_name

PAGES = ("/audit", "/cabinets")


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.rows = 0
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.names.append(dict(attrs).get("name") or "")
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self.rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False


def _parsed(html: str) -> _Inputs:
    parser = _Inputs()
    parser.feed(html)
    return parser


def _record(app: FastAPI, count: int, **fields: object) -> None:
    with session_scope(app.state.engine) as session:
        for number in range(count):
            app.state.audit.record(
                session,
                AuditEvent(
                    action=str(fields.get("action", "test.entry")),
                    actor=Actor(type="system"),
                    outcome=str(fields.get("outcome", "success")),
                    channel="cli",
                    reason=f"{fields.get('reason', 'entry')} {number}",
                    site_id=fields.get("site_id"),  # type: ignore[arg-type]
                ),
            )


# --- anonymous visitors and signing in -------------------------------------------------------


@pytest.mark.parametrize("page", ["/", *PAGES])
def test_an_anonymous_visitor_is_sent_to_the_sign_in_form_and_back(
    browser: Callable[[], TestClient], page: str
) -> None:
    jar = browser()
    answer = jar.get(page)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in?next=")
    form = jar.get(answer.headers["location"])
    assert form.status_code == 200
    assert {"username", "password"} <= set(_parsed(form.text).names)
    assert f'name="next" value="{page}"' in form.text


@pytest.mark.parametrize(("role", "landing"), [("security", "/audit"), ("operator", "/cabinets")])
def test_signing_in_lands_on_the_page_of_the_role(
    browser: Callable[[], TestClient], make_user: MakeUser, role: str, landing: str
) -> None:
    username = unique_name(role)
    make_user(role, username=username)
    jar = browser()
    csrf = csrf_of(jar.get("/sign-in").text)
    answer = jar.post(
        "/sign-in", data={"username": username, "password": TEST_PASSWORD, "csrf_token": csrf}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == landing
    cookie = answer.headers["set-cookie"]
    assert "locker_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert jar.get("/").headers["location"] == landing
    assert jar.get(landing).status_code == 200


def test_a_wrong_password_shows_the_form_again_and_is_audited(
    browser: Callable[[], TestClient], make_user: MakeUser, audit_entries: Callable[..., list]
) -> None:
    username = unique_name("security")
    user = make_user("security", username=username)
    jar = browser()
    csrf = csrf_of(jar.get("/sign-in").text)
    answer = jar.post(
        "/sign-in", data={"username": username, "password": "wrong", "csrf_token": csrf}
    )
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    assert "locker_session" not in answer.headers.get("set-cookie", "")
    failed = audit_entries("auth.login_failed")
    assert failed
    assert failed[-1].actor_id == str(user.user_id)
    assert failed[-1].channel == "web"


def test_a_sign_in_without_the_forms_csrf_token_is_refused(
    browser: Callable[[], TestClient], make_user: MakeUser, audit_entries: Callable[..., list]
) -> None:
    username = unique_name("security")
    make_user("security", username=username)
    jar = browser()
    jar.get("/sign-in")  # sets the form's cookie; the post below does not echo it
    answer = jar.post(
        "/sign-in", data={"username": username, "password": TEST_PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403
    assert "locker_session" not in answer.headers.get("set-cookie", "")
    assert any("CSRF" in (entry.reason or "") for entry in audit_entries("access.denied"))


def test_signing_out_needs_the_csrf_token_and_ends_the_session(
    signed_in: SignIn, audit_entries: Callable[..., list]
) -> None:
    jar = signed_in("security")
    page = jar.get("/audit")
    assert jar.post("/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert jar.get("/audit").status_code == 200
    answer = jar.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert jar.get("/audit").status_code == 303
    assert audit_entries("auth.logout")


def test_a_new_password_ends_the_console_session(
    signed_in: SignIn, admin_headers: AuthHeaders
) -> None:
    jar = signed_in("security")
    assert jar.get("/audit").status_code == 200
    changed = jar.patch(
        f"/api/v1/users/{jar.user_id}",  # type: ignore[attr-defined]
        json={"password": "another long password 123"},
        headers=admin_headers,
    )
    assert changed.status_code == 200, changed.text
    assert jar.get("/audit").status_code == 303


# --- who may open what ----------------------------------------------------------------------

#: Which page each role may open (200) or not (403); admins may open every page.
PAGE_ROLES = {
    "/audit": {"security"},
    "/parcels": {"security", "operator"},
    "/alarms": {"security", "operator"},
    "/cabinets": {"operator"},
    "/notifications": {"operator"},
    "/users": set(),
    "/couriers": set(),
}
ALLOWED = {
    (role, page): 200 if role == "admin" or role in roles else 403
    for page, roles in PAGE_ROLES.items()
    for role in ("security", "operator", "admin", "courier")
}


@pytest.mark.parametrize(("role", "page"), sorted(ALLOWED))
def test_role_by_page(
    signed_in: SignIn, audit_entries: Callable[..., list], role: str, page: str
) -> None:
    jar = signed_in(role)
    answer = jar.get(page)
    assert answer.status_code == ALLOWED[(role, page)]
    denied = [e for e in audit_entries("access.denied") if e.actor_id == str(jar.user_id)]  # type: ignore[attr-defined]
    assert bool(denied) == (answer.status_code == 403)


# --- languages -------------------------------------------------------------------------------


def test_the_language_switches_with_lang_and_stays_switched(signed_in: SignIn) -> None:
    jar = signed_in("security")
    assert "Audit log" in jar.get("/audit").text
    chinese = jar.get("/audit?lang=zh-CN")
    assert '<html lang="zh-CN">' in chinese.text
    assert "审计日志" in chinese.text
    assert "审计日志" in jar.get("/audit").text
    assert "Audit log" in jar.get("/audit?lang=en").text


def test_the_sign_in_form_follows_the_browsers_language(browser: Callable[[], TestClient]) -> None:
    form = browser().get("/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "用户名" in form.text


# --- the audit log page ----------------------------------------------------------------------


def test_audit_entries_are_table_rows_newest_first_and_the_view_is_audited(
    app: FastAPI, signed_in: SignIn, audit_entries: Callable[..., list]
) -> None:
    _record(app, 3, action="test.visible")
    jar = signed_in("security")
    page = jar.get("/audit?action=test.visible")
    assert page.status_code == 200
    assert _parsed(page.text).rows == 3
    seqs = [int(seq) for seq in re.findall(r'<tr data-seq="(\d+)"', page.text)]
    assert seqs == sorted(seqs, reverse=True)
    viewed = audit_entries("audit.viewed")[-1]
    assert viewed.actor_id == str(jar.user_id)  # type: ignore[attr-defined]
    assert viewed.channel == "web"


def test_audit_paging_is_keyset_and_loses_nothing(app: FastAPI, signed_in: SignIn) -> None:
    _record(app, 120, action="test.paged")
    jar = signed_in("security")
    seen: list[int] = []
    url: str | None = "/audit?action=test.paged"
    while url:
        page = jar.get(url)
        seen += [int(seq) for seq in re.findall(r'<tr data-seq="(\d+)"', page.text)]
        older = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert len(seen) == 120
    assert seen == sorted(set(seen), reverse=True)


def test_audit_filters_by_outcome_and_text(app: FastAPI, signed_in: SignIn) -> None:
    _record(app, 2, action="test.mixed", outcome="denied", reason="needle")
    _record(app, 3, action="test.mixed", outcome="success", reason="hay")
    jar = signed_in("security")
    assert _parsed(jar.get("/audit?action=test.mixed&outcome=denied").text).rows == 2
    assert _parsed(jar.get("/audit?action=test.mixed&q=NEEDLE").text).rows == 2
    assert _parsed(jar.get("/audit?action=test.mixed").text).rows == 5


def test_a_site_limited_officer_sees_only_their_sites_entries(
    app: FastAPI, signed_in: SignIn, make_site: Callable[[str], int]
) -> None:
    mine, theirs = make_site("Mine"), make_site("Theirs")
    _record(app, 2, action="test.sited", site_id=mine)
    _record(app, 4, action="test.sited", site_id=theirs)
    jar = signed_in("security", sites=[mine])
    assert _parsed(jar.get("/audit?action=test.sited").text).rows == 2
    refused = jar.get(f"/audit?action=test.sited&site={theirs}")
    assert "no access to site" in refused.text
    assert _parsed(refused.text).rows == 2


def test_a_bad_filter_is_said_not_answered_with_an_error(signed_in: SignIn) -> None:
    jar = signed_in("security")
    page = jar.get("/audit?from=yesterday&door=abc")
    assert page.status_code == 200
    assert "from: not a date and time" in page.text
    assert "door: not a number" in page.text


# --- the cabinet board -----------------------------------------------------------------------


def _cabinet(app: FastAPI, site_id: int, code: str, doors: dict[int, str]) -> None:
    with session_scope(app.state.engine) as session:
        cabinet = Cabinet(code=code, name=f"Lobby {code}", site_id=site_id)
        session.add(cabinet)
        session.flush()
        assert cabinet.id is not None
        for number, state in doors.items():
            session.add(
                Door(
                    cabinet_id=cabinet.id, number=number, size_class_id=_size(session),
                    board=1, lock=number, door_state=state,
                    door_state_at=datetime.now(UTC),
                )
            )  # fmt: skip


def _size(session: Session) -> int:
    size = session.exec(select(SizeClass)).first()
    assert size is not None
    assert size.id is not None
    return size.id


def test_the_board_shows_each_cabinet_of_the_operators_sites_with_its_doors(
    app: FastAPI, signed_in: SignIn, make_site: Callable[[str], int]
) -> None:
    mine, theirs = make_site("Mine"), make_site("Theirs")
    _cabinet(app, mine, "CAB-MINE", {1: "open", 2: "closed"})
    _cabinet(app, theirs, "CAB-THEIRS", {1: "closed"})
    jar = signed_in("operator", sites=[mine])
    board = jar.get("/cabinets")
    assert 'data-cabinet="CAB-MINE"' in board.text
    assert "CAB-THEIRS" not in board.text
    assert 'data-door="1" data-state="open"' in board.text
    assert 'data-door="2" data-state="closed"' in board.text
    assert 'data-status="offline"' in board.text
    fragment = jar.get("/cabinets?fragment=board")
    assert "<html" not in fragment.text
    assert 'data-cabinet="CAB-MINE"' in fragment.text


def test_both_languages_have_every_text() -> None:
    from locker_server.web.i18n import CATALOG

    assert set(CATALOG["en"]) == set(CATALOG["zh-CN"])


def test_a_users_language_follows_them_to_another_browser(
    signed_in: SignIn, browser: Callable[[], TestClient]
) -> None:
    jar = signed_in("security")
    assert "审计日志" in jar.get("/audit?lang=zh-CN").text
    other = browser()  # the same user, another browser: no language cookie there
    csrf = csrf_of(other.get("/sign-in").text)
    signed = other.post(
        "/sign-in",
        data={"username": jar.username, "password": TEST_PASSWORD, "csrf_token": csrf},  # type: ignore[attr-defined]
    )
    assert signed.status_code == 303
    assert "审计日志" in other.get("/audit").text
    assert "Audit log" in other.get("/audit?lang=en").text
    assert "Audit log" in jar.get("/audit").text  # the choice is the user's, not the browser's
