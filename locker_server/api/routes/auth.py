"""``POST /api/v1/auth/token``: the OAuth2 password flow, answering a bearer token.

Unknown user, wrong password and deactivated user get the same 401 (and take as
long: a dummy hash is verified for unknown users). Every failure is audited as
``auth.login_failed`` in its own transaction: with the user id when the name belongs
to a user, else only a keyed fingerprint of the name. Too many failures → 429
``too_many_attempts`` with ``Retry-After`` (the rule is in ``locker_server.auth.login``).
The address is the client's as ``get_client_info`` sees it (forwarded only via a
trusted proxy).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from locker_server.api.deps import (
    AuditDep,
    ClientContext,
    KeysDep,
    SessionDep,
    SettingsDep,
    record_refusal,
)
from locker_server.audit import Actor
from locker_server.auth.errors import LoginRefused, TooManyAttempts
from locker_server.auth.login import LoginThrottle, authenticate_user, username_fingerprint
from locker_server.auth.origin import Origin
from locker_server.auth.tokens import issue_access_token, password_stamp
from locker_server.keys import ServerKeys

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the OAuth2 token type)
    expires_in: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Incorrect username or password"},
    429: {"description": "Too many failed logins"},
}


@router.post("/token", responses=_ERRORS, summary="Log in (OAuth2 password flow)")
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    audit: AuditDep,
    client: ClientContext,
) -> TokenResponse:
    _check_throttle(request, keys, form.username, client.source)
    try:
        user = authenticate_user(session, form.username, form.password)
    except LoginRefused as exc:
        _login_failed(request, keys, form.username, client.source, exc)
        raise
    assert user.id is not None
    _throttle(request).record_success(form.username, client.source)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    token = issue_access_token(
        keys.token_signing_key,
        user_id=user.id,
        role=user.role,
        stamp=password_stamp(keys.token_signing_key, user.password_hash),
        lifetime=lifetime,
    )
    origin = Origin(Actor(type="user", id=str(user.id)), client.channel, client.source)
    audit.record(session, origin.event("auth.login", details={"role": user.role}))
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _check_throttle(request: Request, keys: ServerKeys, username: str, source: str | None) -> None:
    try:
        _throttle(request).check(username, source)
    except TooManyAttempts:
        details = {"login": username_fingerprint(keys.token_signing_key, username)}
        record_refusal(
            request,
            action="auth.login_failed",
            outcome="locked_out",
            reason="too many failed logins",
            actor=Actor(type="anonymous"),
            details=details,
        )
        raise


def _login_failed(
    request: Request, keys: ServerKeys, username: str, source: str | None, exc: LoginRefused
) -> None:
    _throttle(request).record_failure(username, source)
    if exc.user_id is not None:
        actor, details = Actor(type="user", id=str(exc.user_id)), {}
    else:
        actor = Actor(type="anonymous")
        details = {"login": username_fingerprint(keys.token_signing_key, username)}
    record_refusal(
        request,
        action="auth.login_failed",
        outcome="failure",
        reason=exc.reason,
        actor=actor,
        details=details,
    )
