"""Turning a presented credential (bearer token or API key) into a ``Principal``.

The database is consulted on every request, so a deactivated user, a changed role, a
changed password or a revoked key stops working at once even while a token is still
unexpired.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from sqlmodel import Session, select

from locker_server.auth.apikeys import api_key_matches, looks_like_api_key, parse_api_key
from locker_server.auth.errors import CredentialsRejected
from locker_server.auth.models import ApiKey, User, UserSite
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.auth.tokens import decode_access_token, password_stamp
from locker_server.keys import ServerKeys
from locker_server.models import Courier


def authenticate_credential(session: Session, keys: ServerKeys, credential: str) -> Principal:
    """Resolve a bearer credential; raise ``CredentialsRejected`` (with a reason) if invalid."""
    if looks_like_api_key(credential):
        return _principal_for_api_key(session, keys, credential)
    claims = decode_access_token(keys.token_signing_key, credential)
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        raise CredentialsRejected("user unknown or deactivated")
    if user.role != claims.role:
        raise CredentialsRejected("role changed since the token was issued")
    if not hmac.compare_digest(
        claims.stamp, password_stamp(keys.token_signing_key, user.password_hash)
    ):
        raise CredentialsRejected("password changed since the token was issued")
    return principal_for_user(session, user)


def principal_for_user(session: Session, user: User) -> Principal:
    assert user.id is not None
    role = Role(user.role)
    return Principal(
        kind="user",
        id=user.id,
        name=user.username,
        role=role,
        site_ids=user_site_ids(session, user),
        carrier_id=_carrier_of_courier(session, user.courier_id),
        courier_id=user.courier_id,
    )


def user_site_ids(session: Session, user: User) -> frozenset[int] | None:
    """``None`` when the user may see every site (always so for admins and couriers)."""
    if user.all_sites or user.role not in (Role.operator, Role.security):
        return None
    rows = session.exec(select(UserSite.site_id).where(UserSite.user_id == user.id))
    return frozenset(rows.all())


def _carrier_of_courier(session: Session, courier_id: int | None) -> int | None:
    if courier_id is None:
        return None
    courier = session.get(Courier, courier_id)
    if courier is None or not courier.active:
        raise CredentialsRejected("courier unknown or deactivated")
    return courier.carrier_id


def _principal_for_api_key(session: Session, keys: ServerKeys, credential: str) -> Principal:
    presented = parse_api_key(credential)
    if presented is None:
        raise CredentialsRejected("api key malformed")
    row = session.exec(select(ApiKey).where(ApiKey.prefix == presented.prefix)).first()
    if row is None or not api_key_matches(keys.token_signing_key, presented.key, row.secret_hash):
        raise CredentialsRejected("api key unknown")
    if row.revoked_at is not None:
        raise CredentialsRejected("api key revoked")
    row.last_used_at = datetime.now(UTC)
    session.add(row)
    assert row.id is not None
    return Principal(
        kind="api_key", id=row.id, name=row.name, role=Role(row.role), carrier_id=row.carrier_id
    )
