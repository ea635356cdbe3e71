"""``POST /api/v1/auth/token``: the OAuth2 password flow, answering a bearer token.

The checks, the throttle and what is audited are those of every password sign-in
(``locker_server.api.signin``): one 401 for unknown user, wrong password and deactivated
user; 429 ``too_many_attempts`` with ``Retry-After`` after too many failures. The address
is the client's as ``get_client_info`` sees it (forwarded only via a trusted proxy).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from locker_server.api.deps import AuditDep, ClientContext, KeysDep, SessionDep, SettingsDep
from locker_server.api.signin import sign_in

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
    _user, token = sign_in(
        request,
        session,
        username=form.username,
        password=form.password,
        client=client,
        settings=settings,
        keys=keys,
        audit=audit,
    )
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)
