"""The console's cookie session and its CSRF tokens.

The session cookie carries the same signed access token the API issues (so a changed
password, a changed role or a deactivated account ends a console session exactly as it
ends a bearer token: the user is loaded on every request). It is ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page sends it) and ``Secure`` when the
request came over HTTPS.

Every form carries a CSRF token. Signed in, it is a keyed hash of the session token:
another site can neither read it nor compute it. On the sign-in form, where there is no
session yet, it is a random value also set as a cookie (double submit), so a foreign
page cannot sign a visitor in to an attacker's account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE: Final = "locker_session"
SIGN_IN_CSRF_COOKIE: Final = "locker_sign_in"
CSRF_FIELD: Final = "csrf_token"


def session_csrf_token(key: bytes, session_token: str) -> str:
    digest = hmac.new(key, b"console-csrf\x00" + session_token.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def new_sign_in_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def tokens_match(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def safe_next(target: str | None) -> str | None:
    """A path of this site to return to after signing in; never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 0x20 for char in target):
        return None
    return target
