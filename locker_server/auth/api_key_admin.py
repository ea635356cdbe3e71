"""Creating, listing and revoking carrier API keys (audited as configuration changes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from locker_server.audit import AuditLog
from locker_server.auth.apikeys import generate_api_key, hash_api_key
from locker_server.auth.models import ApiKey
from locker_server.auth.origin import Origin
from locker_server.auth.roles import Role
from locker_server.errors import Conflict, NotFound, ValidationFailed
from locker_server.keys import ServerKeys
from locker_server.models import Carrier


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """The stored row and the full key, which is never shown again."""

    row: ApiKey
    key: str


def create_api_key(
    session: Session,
    audit: AuditLog,
    keys: ServerKeys,
    origin: Origin,
    *,
    carrier_id: int,
    name: str,
    created_by: int | None = None,
) -> CreatedApiKey:
    if not name.strip() or len(name) > 100:
        raise ValidationFailed("an API key name has 1-100 characters")
    if session.get(Carrier, carrier_id) is None:
        raise NotFound(f"carrier {carrier_id} not found")
    new = generate_api_key()
    row = ApiKey(
        prefix=new.prefix,
        secret_hash=hash_api_key(keys.token_signing_key, new.key),
        name=name,
        role=Role.carrier.value,
        carrier_id=carrier_id,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    details = {"api_key_id": row.id, "carrier_id": carrier_id, "prefix": row.prefix}
    audit.record(session, origin.event("config.api_key_created", details=details))
    return CreatedApiKey(row=row, key=new.key)


def revoke_api_key(session: Session, audit: AuditLog, origin: Origin, api_key_id: int) -> ApiKey:
    row = session.get(ApiKey, api_key_id)
    if row is None:
        raise NotFound(f"API key {api_key_id} not found")
    if row.revoked_at is not None:
        raise Conflict(f"API key {api_key_id} is already revoked")
    row.revoked_at = datetime.now(UTC)
    session.add(row)
    details = {"api_key_id": row.id, "carrier_id": row.carrier_id, "prefix": row.prefix}
    audit.record(session, origin.event("config.api_key_revoked", details=details))
    return row


def list_api_keys(
    session: Session, *, carrier_id: int | None, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    query = select(ApiKey)
    counter = select(func.count()).select_from(ApiKey)
    if carrier_id is not None:
        query = query.where(ApiKey.carrier_id == carrier_id)
        counter = counter.where(ApiKey.carrier_id == carrier_id)
    rows = session.exec(query.order_by(col(ApiKey.id)).limit(limit).offset(offset)).all()
    return list(rows), int(session.exec(counter).one())
