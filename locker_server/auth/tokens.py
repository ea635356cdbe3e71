"""Access tokens: short-lived JWTs (HS256, key ``token_signing_key`` outside the database).

Why a JWT rather than an opaque token: nothing to store per login, and the signature
check needs no database. What a JWT alone cannot do (revocation) is covered by loading
the user on every request: a deactivated user or a changed role invalidates the token
at once (the ``role`` claim must still match the stored role), and a new password ends
every token issued before it: the ``stp`` claim is a keyed fingerprint of the password
hash the token was issued under, and it must still match the stored hash (a new hash has
a new salt, so even setting the same password again ends the old tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from locker_server.auth.errors import CredentialsRejected

ALGORITHM = "HS256"
ISSUER = "locker-server"
_REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "jti", "iss", "stp"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str
    stamp: str


def password_stamp(key: bytes, password_hash: str) -> str:
    """A keyed fingerprint of a stored password hash: changes whenever the password does."""
    digest = hmac.new(key, b"password-stamp\x00" + password_hash.encode(), hashlib.sha256)
    return digest.hexdigest()[:22]


def issue_access_token(
    key: bytes,
    *,
    user_id: int,
    role: str,
    stamp: str,
    lifetime: timedelta,
    now: datetime | None = None,
) -> IssuedToken:
    """A signed token; ``stamp`` is ``password_stamp`` of the user's current password hash."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "stp": stamp,
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
    subject, role, jti, stamp = claims["sub"], claims["role"], claims["jti"], claims["stp"]
    if not (isinstance(subject, str) and subject.isdigit()):
        raise CredentialsRejected("token invalid")
    if not (isinstance(role, str) and isinstance(jti, str) and isinstance(stamp, str)):
        raise CredentialsRejected("token invalid")
    return TokenClaims(user_id=int(subject), role=role, jti=jti, stamp=stamp)
