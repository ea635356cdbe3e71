"""Keeping each cabinet's offline allow-list (and clock) in step with the server.

Design: **diff, not hooks.** The server remembers what it last told each cabinet
(``link_allow_list_entries``). :func:`push_delta` compares that with the database (every
collectable parcel in the cabinet with its live credential hashes) and publishes only the
difference; :func:`push_deltas` does it for every online cabinet and is run by the
bridge's background loop every few seconds. No service has to remember to call us, so a
deposit, a re-issue, a cancel, a pickup, an expiry or an extension (which moves
``expires_at``) all reach the cabinet the same way, whichever process made the change.

:func:`on_cabinet_online` (called by the bridge when a cabinet comes online) sends
``time`` and then a FULL list. Every sync message of a cabinet takes the next value of
its ``sync_version`` (allocated under the cabinet's control-row lock), so versions
strictly increase per cabinet across every kind: the cabinet relies on that to ignore a
replayed allow-list or time sync. The snapshot and the version are committed **before**
publishing; if publishing fails the next allow-list message is a full one. Every sync is
signed with the server's command key (:mod:`locker_server.services.outbound`): a cabinet
acts on no sync that does not verify.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from locker_contract import topics
from locker_contract.bodies import (
    AllowListEntry,
    ReservationEntry,
    UnsignedAllowListSync,
    UnsignedReservationSync,
    UnsignedTimeSync,
)
from locker_contract.credentials import tracking_hash
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import (
    Cabinet,
    CredentialKind,
    Door,
    Parcel,
    ParcelState,
    PickupCredential,
)
from locker_server.models.commands import LinkAllowListEntry, LinkCabinetControl
from locker_server.models.links import CabinetLink
from locker_server.models.sites import SizeClass
from locker_server.models.types import utcnow
from locker_server.services import outbound
from locker_server.services.cabinets import get_cabinet
from locker_server.services.commands import ensure_control, expire_overdue_commands, next_value
from locker_server.services.context import AuditRecorder
from locker_server.services.credentials import cabinet_key
from locker_server.services.lifecycle import COLLECTABLE
from locker_server.services.outbound import Publisher

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """One parcel's allow-list line as the database has it now."""

    parcel_id: int
    door: int
    code_hash: str | None
    qr_hash: str | None
    expires_at: datetime

    def same_as(self, sent: LinkAllowListEntry) -> bool:
        return (self.door, self.code_hash, self.qr_hash, self.expires_at) == (
            sent.door,
            sent.code_hash,
            sent.qr_hash,
            sent.expires_at,
        )

    def hashes_of(self, sent: LinkAllowListEntry) -> bool:
        return (self.code_hash, self.qr_hash) == (sent.code_hash, sent.qr_hash)

    def to_contract(self) -> AllowListEntry:
        return AllowListEntry(
            parcel_id=self.parcel_id,
            door=self.door,
            code_hash=self.code_hash,
            qr_hash=self.qr_hash,
            expires_at=self.expires_at,
        )


# --- what the database says now, what the cabinet was told ----------------------------------


def current_entries(session: Session, cabinet_id: int) -> dict[int, Entry]:
    """Every collectable parcel of the cabinet with its live (unused, unvoided) hashes."""
    query = (
        select(Parcel.id, Door.number, PickupCredential)
        .join(Door, col(Door.id) == col(Parcel.door_id))
        .join(PickupCredential, col(PickupCredential.parcel_id) == col(Parcel.id))
        .where(
            Parcel.cabinet_id == cabinet_id,
            col(Parcel.state).in_(COLLECTABLE),
            col(PickupCredential.used_at).is_(None),
            col(PickupCredential.voided_at).is_(None),
        )
    )
    hashes: dict[int, dict[str, str]] = {}
    places: dict[int, tuple[int, datetime]] = {}
    for parcel_id, door, credential in session.exec(query).all():
        assert parcel_id is not None
        hashes.setdefault(parcel_id, {})[credential.kind] = credential.credential_hash
        places[parcel_id] = (door, credential.expires_at)
    return {
        parcel_id: Entry(
            parcel_id=parcel_id,
            door=places[parcel_id][0],
            code_hash=found.get(CredentialKind.code),
            qr_hash=found.get(CredentialKind.qr),
            expires_at=places[parcel_id][1],
        )
        for parcel_id, found in hashes.items()
    }


def sent_entries(session: Session, cabinet_id: int) -> dict[int, LinkAllowListEntry]:
    query = select(LinkAllowListEntry).where(LinkAllowListEntry.cabinet_id == cabinet_id)
    return {row.parcel_id: row for row in session.exec(query).all()}


# --- publishing ------------------------------------------------------------------------------


def _publish(
    publisher: Publisher, keys: ServerKeys, cabinet: Cabinet, body: outbound.UnsignedSync
) -> bool:
    payload = outbound.sync(keys, cabinet.code, body)
    try:
        publisher.publish(topics.sync(cabinet.code), payload, qos=1, retain=False)
    except Exception as exc:
        logger.warning("sync to cabinet %s failed: %s", cabinet.code, exc)
        return False
    return True


def _remember_failure(session: Session, cabinet_id: int) -> None:
    control = session.get(LinkCabinetControl, cabinet_id)
    assert control is not None
    control.allow_list_resync = True
    session.add(control)
    session.commit()


def _needs_full(session: Session, cabinet_id: int) -> bool:
    control = session.get(LinkCabinetControl, cabinet_id, populate_existing=True)
    return control is None or control.allow_list_resync


def _store_snapshot(
    session: Session,
    cabinet_id: int,
    version: int,
    changed: Iterable[Entry],
    removed: Iterable[int],
    sent: dict[int, LinkAllowListEntry],
) -> None:
    gone = list(removed)
    if gone:
        session.exec(
            delete(LinkAllowListEntry).where(
                col(LinkAllowListEntry.cabinet_id) == cabinet_id,
                col(LinkAllowListEntry.parcel_id).in_(gone),
            )
        )
    for entry in changed:
        _upsert(session, cabinet_id, version, entry, sent.get(entry.parcel_id))


def _upsert(
    session: Session,
    cabinet_id: int,
    version: int,
    entry: Entry,
    previous: LinkAllowListEntry | None,
) -> None:
    same_hashes = previous is not None and entry.hashes_of(previous)
    row = previous or LinkAllowListEntry(
        cabinet_id=cabinet_id,
        parcel_id=entry.parcel_id,
        door=entry.door,
        expires_at=entry.expires_at,
        version=version,
        hashes_version=version,
    )
    row.door, row.code_hash, row.qr_hash = entry.door, entry.code_hash, entry.qr_hash
    row.expires_at, row.version = entry.expires_at, version
    row.hashes_version = row.hashes_version if same_hashes else version
    session.add(row)


def _allow_list_body(
    keys: ServerKeys,
    version: int,
    now: datetime,
    *,
    full: bool,
    entries: list[Entry],
    removed: list[int],
) -> UnsignedAllowListSync:
    return UnsignedAllowListSync(
        kind="allow_list",
        version=version,
        server_time=now,
        full=full,
        entries=[entry.to_contract() for entry in sorted(entries, key=lambda e: e.parcel_id)],
        removed=sorted(removed),
        key_id=outbound.key_id(keys),
    )


def _send_allow_list(
    session: Session,
    publisher: Publisher,
    keys: ServerKeys,
    cabinet: Cabinet,
    *,
    full: bool,
    now: datetime,
) -> int | None:
    """Diff, store, commit, publish. Returns the version sent (None: nothing to send)."""
    assert cabinet.id is not None
    current, sent = current_entries(session, cabinet.id), sent_entries(session, cabinet.id)
    changed = [e for pid, e in current.items() if pid not in sent or not e.same_as(sent[pid])]
    removed = [pid for pid in sent if pid not in current]
    if not full and not changed and not removed:
        return None
    version = next_value(session, cabinet.id, "sync_version")
    _store_snapshot(
        session, cabinet.id, version, current.values() if full else changed, removed, sent
    )
    _clear_resync(session, cabinet.id)
    session.commit()
    body = _allow_list_body(
        keys,
        version,
        now,
        full=full,
        entries=list(current.values()) if full else changed,
        removed=[] if full else removed,
    )
    if not _publish(publisher, keys, cabinet, body):
        _remember_failure(session, cabinet.id)
    return version


def _clear_resync(session: Session, cabinet_id: int) -> None:
    control = session.get(LinkCabinetControl, cabinet_id, populate_existing=True)
    assert control is not None
    control.allow_list_resync = False
    session.add(control)


def send_time(
    session: Session, publisher: Publisher, keys: ServerKeys, cabinet: Cabinet, now: datetime
) -> int:
    assert cabinet.id is not None
    version = next_value(session, cabinet.id, "sync_version")
    session.commit()
    body = UnsignedTimeSync(
        kind="time", version=version, server_time=now, key_id=outbound.key_id(keys)
    )
    _publish(publisher, keys, cabinet, body)
    return version


def current_reservations(
    session: Session, keys: ServerKeys, cabinet_id: int
) -> list[ReservationEntry]:
    """Every door reserved at the cabinet now, its tracking number keyed-hashed."""
    query = (
        select(Parcel, Door.number, SizeClass.code)
        .join(Door, col(Door.id) == col(Parcel.door_id))
        .join(SizeClass, col(SizeClass.id) == col(Door.size_class_id))
        .where(Parcel.cabinet_id == cabinet_id, Parcel.state == ParcelState.reserved)
        .order_by(col(Parcel.id))
    )
    key = cabinet_key(keys.pickup_hmac_key, cabinet_id)
    return [
        ReservationEntry(
            parcel_id=parcel.id or 0,
            carrier_id=parcel.carrier_id,
            door=number,
            size=size,
            tracking_hash=tracking_hash(key, parcel.tracking_number),
            reserved_until=parcel.reserved_until or utcnow(),
        )
        for parcel, number, size in session.exec(query).all()
    ]


def send_reservations(
    session: Session, publisher: Publisher, *, keys: ServerKeys, cabinet_id: int
) -> int:
    """Send the cabinet its full list of reserved doors (so a courier can deposit an
    announced parcel while the link is down). Commits the version before publishing."""
    cabinet = get_cabinet(session, cabinet_id)
    ensure_control(session, cabinet_id)
    entries = current_reservations(session, keys, cabinet_id)
    version = next_value(session, cabinet_id, "sync_version")
    session.commit()
    body = UnsignedReservationSync(
        kind="reservations",
        version=version,
        server_time=utcnow(),
        entries=entries,
        key_id=outbound.key_id(keys),
    )
    _publish(publisher, keys, cabinet, body)
    return version


def try_send_reservations(
    session: Session, publisher: Publisher, *, keys: ServerKeys, cabinet_id: int
) -> bool:
    """:func:`send_reservations` where the change that called for it stands on its own
    (committed first): a failure is logged, never raised; the cabinet then gets its
    reservations at its next connect."""
    try:
        send_reservations(session, publisher, keys=keys, cabinet_id=cabinet_id)
    except Exception:
        session.rollback()
        logger.exception("reservations sync to cabinet %s failed", cabinet_id)
        return False
    return True


def on_cabinet_online(
    session: Session, publisher: Publisher, *, keys: ServerKeys, cabinet_id: int
) -> None:
    """A cabinet came (back) online: send ``time``, its FULL allow-list, its reservations.

    Commits the session (the versions and the snapshot) before each publish.
    """
    now = utcnow()
    cabinet = get_cabinet(session, cabinet_id)
    ensure_control(session, cabinet_id)
    send_time(session, publisher, keys, cabinet, now)
    _send_allow_list(session, publisher, keys, cabinet, full=True, now=now)
    send_reservations(session, publisher, keys=keys, cabinet_id=cabinet_id)


def push_delta(
    session: Session,
    publisher: Publisher,
    *,
    keys: ServerKeys,
    cabinet_id: int,
    now: datetime | None = None,
) -> int | None:
    """Send the cabinet what changed since its last allow-list message (if anything did).

    A full list instead when the previous publish failed or nothing was ever sent.
    Returns the version sent, or None when the cabinet is already up to date.
    """
    cabinet = get_cabinet(session, cabinet_id)
    full = _needs_full(session, cabinet_id)
    ensure_control(session, cabinet_id)
    return _send_allow_list(session, publisher, keys, cabinet, full=full, now=now or utcnow())


def online_cabinet_ids(session: Session) -> list[int]:
    query = select(CabinetLink.cabinet_id).where(col(CabinetLink.online).is_(True))
    return sorted(session.exec(query).all())


def push_deltas(
    session: Session, publisher: Publisher, *, keys: ServerKeys, now: datetime | None = None
) -> int:
    """One pass for every online cabinet (offline ones get a full list when they return).

    Returns how many cabinets were sent an allow-list message.
    """
    sent = 0
    for cabinet_id in online_cabinet_ids(session):
        try:
            sent += (
                push_delta(session, publisher, keys=keys, cabinet_id=cabinet_id, now=now)
                is not None
            )
        except Exception:  # one cabinet's trouble must not starve the others
            session.rollback()
            logger.exception("allow-list delta for cabinet %s failed", cabinet_id)
    return sent


def housekeeping(
    engine: Engine,
    publisher: Publisher,
    *,
    keys: ServerKeys,
    audit: AuditRecorder,
    now: datetime | None = None,
) -> tuple[int, int]:
    """One periodic pass beside the bridge: time out overdue commands (``outcome_unknown``,
    never resent), then push allow-list deltas to online cabinets. Each in its own
    transaction. Returns (commands timed out, cabinets sent a delta)."""
    moment = now or utcnow()
    with session_scope(engine) as session:
        timed_out = expire_overdue_commands(session, now=moment, audit=audit)
    with session_scope(engine) as session:
        pushed = push_deltas(session, publisher, keys=keys, now=moment)
    return timed_out, pushed
