"""The recipient directory, carriers and couriers (courier codes kept only as keyed hashes).

Recipients' personal data stays in this table; audit entries name them by id only.
The ``*_query`` functions build the filtered, ordered queries that the API pages
(``locker_server.services.listing.paged``) and the CLI lists whole.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from locker_server.errors import NotFound
from locker_server.models import (
    Carrier,
    CarrierCreate,
    CarrierUpdate,
    Courier,
    CourierCreate,
    Recipient,
    RecipientCreate,
    RecipientUpdate,
)
from locker_server.notifications import carrier_webhook_secret
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.credentials import courier_code_hash
from locker_server.services.layout import _flush_unique


def get_recipient(session: Session, recipient_id: int) -> Recipient:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id} not found")
    return recipient


def recipients_query(
    *, active_only: bool = False, search: str | None = None
) -> SelectOfScalar[Recipient]:
    """Recipients by id; ``search`` finds a part of the name or e-mail, in any case."""
    query = select(Recipient).order_by(col(Recipient.id))
    if active_only:
        query = query.where(col(Recipient.active).is_(True))
    if search:
        query = query.where(
            or_(
                col(Recipient.name).icontains(search, autoescape=True),
                col(Recipient.email).icontains(search, autoescape=True),
            )
        )
    return query


#: what people write between a phone number's digits (the stored form may keep them)
PHONE_SEPARATORS = " ()-"


def phone_digits(phone: str) -> str:
    """``phone`` without its separators: "+86 (138) 0000-0000" → "+8613800000000"."""
    return phone.translate({ord(separator): None for separator in PHONE_SEPARATORS})


def _stored_phone_digits() -> Any:
    """The stored phone without separators, in SQL (the same on SQLite and PostgreSQL)."""
    expression: Any = col(Recipient.phone)
    for separator in PHONE_SEPARATORS:
        expression = func.replace(expression, separator, "")
    return expression


def find_recipient(session: Session, *, kind: str, value: str) -> Recipient | None:
    """The recipient a courier names by ``email`` (any case) or ``phone`` (separators
    ignored on both sides), if exactly one matches: an ambiguous key finds nobody rather
    than the wrong person."""
    wanted = value.strip()
    if kind == "email":
        condition = func.lower(col(Recipient.email)) == wanted.lower()
    elif kind == "phone":
        condition = _stored_phone_digits() == phone_digits(wanted)
    else:
        return None
    found = session.exec(select(Recipient).where(condition).limit(2)).all()
    return found[0] if len(found) == 1 else None


def list_recipients(session: Session, *, active_only: bool = False) -> list[Recipient]:
    return list(session.exec(recipients_query(active_only=active_only)).all())


def create_recipient(
    session: Session, deps: DomainDeps, body: RecipientCreate, *, caller: Caller
) -> Recipient:
    recipient = Recipient.model_validate(body)
    session.add(recipient)
    session.flush()
    audit(
        session,
        deps,
        action="config.recipient_created",
        caller=caller,
        target=Target(recipient_id=recipient.id),
    )
    return recipient


def update_recipient(
    session: Session,
    deps: DomainDeps,
    recipient_id: int,
    body: RecipientUpdate,
    *,
    caller: Caller,
) -> Recipient:
    recipient = get_recipient(session, recipient_id)
    changes = body.model_dump(exclude_unset=True)
    recipient.sqlmodel_update(changes)
    session.add(recipient)
    audit(
        session,
        deps,
        action="config.recipient_updated",
        caller=caller,
        target=Target(recipient_id=recipient_id),
        details={"fields": sorted(changes)},
    )
    return recipient


def get_carrier(session: Session, carrier_id: int) -> Carrier:
    carrier = session.get(Carrier, carrier_id)
    if carrier is None:
        raise NotFound(f"carrier {carrier_id} not found")
    return carrier


def carriers_query(*, carrier_id: int | None = None) -> SelectOfScalar[Carrier]:
    query = select(Carrier).order_by(col(Carrier.id))
    if carrier_id is not None:
        query = query.where(Carrier.id == carrier_id)
    return query


def list_carriers(session: Session, *, carrier_id: int | None = None) -> list[Carrier]:
    return list(session.exec(carriers_query(carrier_id=carrier_id)).all())


def create_carrier(
    session: Session, deps: DomainDeps, body: CarrierCreate, *, caller: Caller
) -> Carrier:
    carrier = Carrier.model_validate(body)
    session.add(carrier)
    _flush_unique(session, f"a carrier named {body.name}")
    audit(
        session,
        deps,
        action="config.carrier_created",
        caller=caller,
        target=Target(),
        details={"carrier_id": carrier.id},
    )
    return carrier


def update_carrier(
    session: Session, deps: DomainDeps, carrier_id: int, body: CarrierUpdate, *, caller: Caller
) -> Carrier:
    carrier = get_carrier(session, carrier_id)
    changes = body.model_dump(exclude_unset=True)
    carrier.sqlmodel_update(changes)
    session.add(carrier)
    _flush_unique(session, "a carrier with that name")
    audit(
        session,
        deps,
        action="config.carrier_updated",
        caller=caller,
        target=Target(),
        details={"carrier_id": carrier_id, "fields": sorted(changes)},
    )
    return carrier


def reveal_webhook_secret(
    session: Session, deps: DomainDeps, carrier_id: int, *, caller: Caller
) -> bytes:
    """The secret that signs ``carrier_id``'s webhooks, for an admin to hand to the carrier.

    Every look is audited (the entry names the carrier, never the secret).
    """
    get_carrier(session, carrier_id)  # NotFound for an unknown id: no secret for nobody
    audit(
        session,
        deps,
        action="carrier.webhook_secret_viewed",
        caller=caller,
        target=Target(),
        details={"carrier_id": carrier_id},
    )
    return carrier_webhook_secret(deps.keys, carrier_id)


def couriers_query(*, carrier_id: int | None = None) -> SelectOfScalar[Courier]:
    query = select(Courier).order_by(col(Courier.id))
    if carrier_id is not None:
        query = query.where(Courier.carrier_id == carrier_id)
    return query


def list_couriers(session: Session, *, carrier_id: int | None = None) -> list[Courier]:
    return list(session.exec(couriers_query(carrier_id=carrier_id)).all())


def create_courier(
    session: Session, deps: DomainDeps, body: CourierCreate, *, caller: Caller
) -> Courier:
    """Register a courier; its code is kept only as a keyed hash."""
    get_carrier(session, body.carrier_id)
    courier = Courier(
        carrier_id=body.carrier_id,
        name=body.name,
        code_hash=courier_code_hash(deps.pickup_hmac_key, body.code),
    )
    session.add(courier)
    _flush_unique(session, "a courier with that code")
    audit(
        session,
        deps,
        action="config.courier_created",
        caller=caller,
        target=Target(),
        details={"courier_id": courier.id, "carrier_id": courier.carrier_id},
    )
    return courier


def authenticate_courier(session: Session, key: bytes, code: str) -> Courier | None:
    """The active courier whose code this is (for the cabinet link), or ``None``."""
    presented = courier_code_hash(key, code)
    courier = session.exec(select(Courier).where(Courier.code_hash == presented)).first()
    if courier is None or not courier.active:
        return None
    return courier if hmac.compare_digest(courier.code_hash, presented) else None


def set_courier_active(
    session: Session, deps: DomainDeps, courier_id: int, *, active: bool, caller: Caller
) -> Courier:
    """Deactivate a courier (their code stops working at every cabinet) or reactivate one."""
    courier = session.get(Courier, courier_id)
    if courier is None:
        raise NotFound(f"courier {courier_id} not found")
    courier.active = active
    session.add(courier)
    audit(
        session,
        deps,
        action="config.courier_updated",
        caller=caller,
        target=Target(),
        details={"courier_id": courier_id, "active": active},
    )
    return courier
