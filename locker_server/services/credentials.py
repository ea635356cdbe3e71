"""Pickup credentials: issue, hash, match in constant time, void; and the lockout counters.

A credential is an 8-digit code (``secrets``) and a QR token of 192 random bits. Only a
keyed hash is stored, in the contract's per-cabinet scheme shared with the cabinet agent
(``locker_contract.credentials``)::

    cabinet_key = HMAC-SHA256(pickup_hmac_key, "lockers/v1/cabinet-pickup-key" 0x00 cabinet id)
    hash        = HMAC-SHA256(cabinet_key, "lockers/v1/pickup/" kind 0x00 value)

The server key lives outside the database, so a stolen database does not yield codes
(10^8 codes would otherwise be trivial to brute-force from a plain hash). A provisioned
cabinet holds only *its* ``cabinet_key``, so it can check a typed code against its offline
allow-list while the link is down; a stolen cabinet key exposes (by brute force) only the
codes of parcels in that one cabinet, which its thief could reach physically anyway. The
plaintext exists only in ``IssuedCredentials``, handed to the notifier, whose ``repr``
hides it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from locker_contract import credentials as contract_credentials
from locker_contract.lockout import LockoutPolicy
from locker_server.config import Settings
from locker_server.models import CredentialKind, PickupCredential, PickupFailure

_COURIER_DOMAIN = b"locker/courier-code/v1"
_COURIER_SESSION_DOMAIN = b"locker/courier-session/v1"
QR_TOKEN_BYTES = 24  # 192 bits; the issue asks for at least 128
_MAX_DRAWS = 20


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """The plaintext credentials of one parcel: for the notifier only, never logged."""

    code: str = field(repr=False)
    qr_token: str = field(repr=False)


def lockout_policy(settings: Settings) -> LockoutPolicy:
    """The configured lockout; cabinets deciding offline apply the same rule."""
    return LockoutPolicy(
        door_threshold=settings.lockout_threshold,
        cabinet_threshold=settings.lockout_cabinet_threshold,
        window=timedelta(minutes=settings.lockout_minutes),
    )


def cabinet_key(key: bytes, cabinet_id: int) -> bytes:
    """The cabinet's own pickup key (what its agent is provisioned with)."""
    return contract_credentials.cabinet_pickup_key(key, cabinet_id)


def credential_hash(key: bytes, kind: CredentialKind, cabinet_id: int, value: str) -> str:
    """The stored hash of ``value`` at ``cabinet_id``, from the server's pickup key."""
    return contract_credentials.credential_hash(cabinet_key(key, cabinet_id), kind.value, value)


def courier_code_hash(key: bytes, code: str) -> str:
    return hmac.new(key, _COURIER_DOMAIN + b"\x00" + code.encode(), hashlib.sha256).hexdigest()


def courier_session_token(
    key: bytes, *, cabinet_code: str, courier_id: int, expires_at: datetime
) -> str:
    """The keyed hash that proves ``courier_id`` signed in at ``cabinet_code`` until
    ``expires_at``: the server checks it on every later request and stores nothing."""
    parts = (cabinet_code, str(courier_id), expires_at.astimezone(UTC).isoformat())
    message = _COURIER_SESSION_DOMAIN + b"\x00" + "\x00".join(parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_code(digits: int) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def live_credentials(
    session: Session, cabinet_id: int, kind: CredentialKind
) -> list[PickupCredential]:
    """Credentials of the cabinet that are neither used nor voided (expired ones included)."""
    query = select(PickupCredential).where(
        PickupCredential.cabinet_id == cabinet_id,
        PickupCredential.kind == kind,
        col(PickupCredential.used_at).is_(None),
        col(PickupCredential.voided_at).is_(None),
    )
    return list(session.exec(query).all())


def match_credential(
    session: Session, key: bytes, *, cabinet_id: int, kind: CredentialKind, value: str
) -> PickupCredential | None:
    """The live credential whose HMAC equals the presented value's, compared in constant time.

    Every candidate is compared (no early exit), so timing does not reveal which, if any,
    stored hash shares a prefix with the presented one.
    """
    presented = credential_hash(key, kind, cabinet_id, value)
    found: PickupCredential | None = None
    for candidate in live_credentials(session, cabinet_id, kind):
        if hmac.compare_digest(candidate.credential_hash, presented):
            found = candidate
    return found


def _unused_code(session: Session, key: bytes, cabinet_id: int, digits: int) -> str:
    taken = {c.credential_hash for c in live_credentials(session, cabinet_id, CredentialKind.code)}
    for _ in range(_MAX_DRAWS):
        code = new_code(digits)
        if credential_hash(key, CredentialKind.code, cabinet_id, code) not in taken:
            return code
    raise RuntimeError("could not draw a pickup code not already live in this cabinet")


def issue_credentials(
    session: Session,
    key: bytes,
    *,
    parcel_id: int,
    cabinet_id: int,
    digits: int,
    expires_at: datetime,
    now: datetime,
) -> IssuedCredentials:
    """Create a fresh code and QR token for the parcel; store only their HMACs."""
    issued = IssuedCredentials(
        code=_unused_code(session, key, cabinet_id, digits),
        qr_token=secrets.token_urlsafe(QR_TOKEN_BYTES),
    )
    for kind, value in ((CredentialKind.code, issued.code), (CredentialKind.qr, issued.qr_token)):
        session.add(
            PickupCredential(
                parcel_id=parcel_id,
                cabinet_id=cabinet_id,
                kind=kind,
                credential_hash=credential_hash(key, kind, cabinet_id, value),
                created_at=now,
                expires_at=expires_at,
            )
        )
    return issued


def parcel_credentials(session: Session, parcel_id: int) -> list[PickupCredential]:
    query = select(PickupCredential).where(
        PickupCredential.parcel_id == parcel_id,
        col(PickupCredential.used_at).is_(None),
        col(PickupCredential.voided_at).is_(None),
    )
    return list(session.exec(query).all())


def is_live_credential(
    session: Session, key: bytes, *, parcel_id: int, kind: CredentialKind, value: str
) -> bool:
    """Whether ``value`` is one of the parcel's credentials still able to open its door
    (not used, not voided by a re-issue or a final state), compared in constant time."""
    found = False
    for candidate in parcel_credentials(session, parcel_id):
        presented = credential_hash(key, kind, candidate.cabinet_id, value)
        if candidate.kind == kind and hmac.compare_digest(candidate.credential_hash, presented):
            found = True
    return found


def void_credentials(session: Session, parcel_id: int, *, now: datetime) -> None:
    for credential in parcel_credentials(session, parcel_id):
        credential.voided_at = now
        session.add(credential)


def move_expiry(session: Session, parcel_id: int, *, expires_at: datetime) -> None:
    for credential in parcel_credentials(session, parcel_id):
        credential.expires_at = expires_at
        session.add(credential)


# --- lockout ---------------------------------------------------------------------------------


def record_failure(
    session: Session, *, cabinet_id: int, door_number: int | None, now: datetime
) -> None:
    session.add(PickupFailure(cabinet_id=cabinet_id, door_number=door_number, at=now))


def _failures_since(
    session: Session, cabinet_id: int, since: datetime, door_number: int | None = None
) -> int:
    query = select(func.count()).where(
        PickupFailure.cabinet_id == cabinet_id, col(PickupFailure.at) > since
    )
    if door_number is not None:
        query = query.where(PickupFailure.door_number == door_number)
    return int(session.exec(query).one())


def is_locked_out(
    session: Session,
    policy: LockoutPolicy,
    *,
    cabinet_id: int,
    door_number: int | None,
    now: datetime,
) -> bool:
    """Locked while the window holds ``threshold`` failures for the cabinet or for the door."""
    since = now - policy.window
    at_cabinet = _failures_since(session, cabinet_id, since)
    at_door = (
        None if door_number is None else _failures_since(session, cabinet_id, since, door_number)
    )
    return policy.locks(cabinet_failures=at_cabinet, door_failures=at_door)
