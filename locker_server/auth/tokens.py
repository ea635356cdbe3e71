"""Access tokens: short-lived JWTs (HS256, key ``token_signing_key`` outside the database).

Why a JWT rather than an opaque token: nothing to store per login, and the signature
check needs no database. What a JWT alone cannot do (revocation) is covered by loading
the user on every request: a deactivated user or a changed role invalidates the token
at once (the ``role`` claim must still match the stored role).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from locker_server.auth.errors import CredentialsRejected

ALGORITHM = "HS256"
ISSUER = "locker-server"
_REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "jti", "iss"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str


def issue_access_token(
    key: bytes, *, user_id: int, role: str, lifetime: timedelta, now: datetime | None = None
) -> IssuedToken:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
        "iss": ISSUER,
    }
    token = jwt.encode(claims, key, algorithm=ALGORITHM)
    return IssuedToken(access_token=token, expires_in=int(lifetime.total_seconds()))


def decode_access_token(key: bytes, token: str) -> TokenClaims:
    """Verify signature, expiry and issuer; raise ``CredentialsRejected`` with the reason."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise CredentialsRejected("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise CredentialsRejected("token invalid") from exc
    return _claims(claims)


def _claims(claims: dict[str, object]) -> TokenClaims:
    subject, role, jti = claims["sub"], claims["role"], claims["jti"]
    if not (isinstance(subject, str) and subject.isdigit()):
        raise CredentialsRejected("token invalid")
    if not (isinstance(role, str) and isinstance(jti, str)):
        raise CredentialsRejected("token invalid")
    return TokenClaims(user_id=int(subject), role=role, jti=jti)
