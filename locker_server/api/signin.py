"""Password sign-in, shared by the token endpoint and the console's sign-in form.

Unknown user, wrong password and deactivated user get the same refusal (and take as
long: a dummy hash is verified for unknown users). Every failure is audited as
``auth.login_failed`` in its own transaction: with the user id when the name belongs to
a user, else only a keyed fingerprint of the name. Too many failures raise
``TooManyAttempts`` with ``retry_after`` (the rule is in ``locker_server.auth.login``).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from sqlmodel import Session

from locker_server.api.deps import ClientInfo, record_refusal
from locker_server.audit import Actor, AuditLog
from locker_server.auth.errors import LoginRefused, TooManyAttempts
from locker_server.auth.login import LoginThrottle, authenticate_user, username_fingerprint
from locker_server.auth.models import User
from locker_server.auth.origin import Origin
from locker_server.auth.tokens import IssuedToken, issue_access_token, password_stamp
from locker_server.config import Settings
from locker_server.keys import ServerKeys


def sign_in(
    request: Request,
    session: Session,
    *,
    username: str,
    password: str,
    client: ClientInfo,
    settings: Settings,
    keys: ServerKeys,
    audit: AuditLog,
) -> tuple[User, IssuedToken]:
    """Check the password (throttled), audit ``auth.login``, issue an access token."""
    _check_throttle(request, keys, username, client.source)
    try:
        user = authenticate_user(session, username, password)
    except LoginRefused as exc:
        _login_failed(request, keys, username, client.source, exc)
        raise
    assert user.id is not None
    _throttle(request).record_success(username, client.source)
    token = issue_access_token(
        keys.token_signing_key,
        user_id=user.id,
        role=user.role,
        stamp=password_stamp(keys.token_signing_key, user.password_hash),
        lifetime=timedelta(minutes=settings.access_token_minutes),
    )
    origin = Origin(Actor(type="user", id=str(user.id)), client.channel, client.source)
    audit.record(session, origin.event("auth.login", details={"role": user.role}))
    return user, token


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
