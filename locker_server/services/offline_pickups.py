"""Pickups a cabinet validated offline, applied on the server exactly once.

While the link is down the agent checks a typed code or QR token against its allow-list
and journals a ``pickup`` event (``mode: offline``); the bridge hands it to
:func:`apply_offline_pickup` once (it deduplicates by event id), and the parcel transition
here is idempotent as well (a parcel already picked up is left alone).

The door physically opened and the parcel left, so the report is a fact, not a request.
The rules, per parcel, by the state the server holds when the report arrives:

=======================  ==========================================================
``deposited/notified``   ``picked_up`` (device time recorded). If the credential had been
                         re-issued during the outage the cabinet accepted the old one,
                         which was still in its list: accepted, audited with
                         ``stale_credential_used_offline``.
``expired``              ``picked_up`` as well (the cabinet's own clock check allowed it;
                         the server's sweep only ran first), audited
                         ``expired_before_reconciliation``. The transition table has this
                         edge for offline reports only (online pickups refuse an expired
                         parcel before moving it).
``picked_up``            nothing (already applied), audited ``already_picked_up``.
``cancelled`` and every  the state is KEPT (a final or return-path state is never
other state              rewritten by a late report) and an operator alarm
                         ``pickup.offline_conflict`` is raised, with a same-state step in
                         the parcel's history naming the offline pickup.
=======================  ==========================================================

A parcel that is not in this cabinet is never touched (alarm
``pickup.offline_conflict`` with ``wrong_cabinet``).
"""

from __future__ import annotations

import dataclasses
import logging

from sqlmodel import Session, col, select

from locker_contract.bodies import Event, OfflinePickupData
from locker_server.models import Cabinet, CredentialKind, Parcel, ParcelState, PickupCredential
from locker_server.models.commands import LinkAllowListEntry
from locker_server.services import allocation, credentials
from locker_server.services.cabinets import cabinet_caller, get_cabinet
from locker_server.services.context import AuditRecorder, Caller, DomainDeps, Target, audit
from locker_server.services.lifecycle import (
    COLLECTABLE,
    move,
    parcel_target,
    record_step,
)
from locker_server.services.parcels import carrier_event, get_parcel

logger = logging.getLogger(__name__)
S = ParcelState


def apply_offline_pickup(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    event: Event,
    audit: AuditRecorder,
) -> None:
    """Apply one offline ``pickup`` event (in the caller's transaction; nothing committed).

    ``audit`` receives every entry written here, including the services' own.
    """
    data = event.typed_data()
    if not isinstance(data, OfflinePickupData):
        raise ValueError(f"event {event.event_id} is not an offline pickup")
    deps = dataclasses.replace(deps, audit=audit)
    cabinet = get_cabinet(session, cabinet_id)
    parcels = [get_parcel(session, pid, lock=True) for pid in sorted(set(data.parcel_ids))]
    allocation.lock_doors(session, [p.door_id for p in parcels if p.cabinet_id == cabinet_id])
    for parcel in parcels:
        _apply_one(session, deps, cabinet, parcel, event, data)


def _apply_one(
    session: Session,
    deps: DomainDeps,
    cabinet: Cabinet,
    parcel: Parcel,
    event: Event,
    data: OfflinePickupData,
) -> None:
    caller = cabinet_caller(cabinet.code)
    if parcel.cabinet_id != cabinet.id:
        _conflict(session, deps, cabinet, parcel, event, caller, "wrong_cabinet", record=False)
    elif parcel.state == S.picked_up:
        _offline_audit(session, deps, parcel, event, caller, "already_picked_up", {})
    elif parcel.state in COLLECTABLE or parcel.state == S.expired:
        _collect(session, deps, parcel, event, data, caller)
    else:
        _conflict(session, deps, cabinet, parcel, event, caller, f"parcel_{parcel.state}")


def _collect(
    session: Session,
    deps: DomainDeps,
    parcel: Parcel,
    event: Event,
    data: OfflinePickupData,
    caller: Caller,
) -> None:
    now = deps.clock()
    was = parcel.state
    findings = {"stale_credential_used_offline": _stale(session, parcel, data)}
    findings["expired_before_reconciliation"] = was == S.expired
    reason = "picked up offline (reported by the cabinet)"
    parcel.picked_up_at = event.device_time
    move(
        session,
        deps,
        parcel,
        S.picked_up,
        caller=caller,
        now=now,
        reason=reason,
        device_time=event.device_time,
    )
    assert parcel.id is not None
    credentials.void_credentials(session, parcel.id, now=now)
    deps.notifier.cancel_pending(session, parcel_id=parcel.id)
    if parcel.door_id is not None:
        allocation.release_door(session, parcel.door_id)
    carrier_event(session, deps, parcel, "parcel.picked_up")
    flags = [name for name, found in findings.items() if found]
    outcome = "accepted_with_notes" if flags else "accepted"
    _offline_audit(session, deps, parcel, event, caller, outcome, {"findings": flags})


def _stale(session: Session, parcel: Parcel, data: OfflinePickupData) -> bool:
    """Did the cabinet accept a credential the server had already replaced?

    Yes when the hashes live now were first sent in a version newer than the cabinet's
    list, or were never sent at all while older ones had been.
    """
    sent = session.get(LinkAllowListEntry, (parcel.cabinet_id, parcel.id))
    if sent is None:
        return _was_reissued(session, parcel)
    kind = CredentialKind(data.credential)
    live = {
        c.kind: c.credential_hash for c in credentials.parcel_credentials(session, parcel.id or 0)
    }
    sent_hash = sent.code_hash if kind == CredentialKind.code else sent.qr_hash
    return sent.hashes_version > data.allow_list_version or live.get(kind, sent_hash) != sent_hash


def _was_reissued(session: Session, parcel: Parcel) -> bool:
    voided = session.exec(
        select(PickupCredential.id).where(
            PickupCredential.parcel_id == parcel.id,
            col(PickupCredential.voided_at).is_not(None),
            col(PickupCredential.used_at).is_(None),
        )
    ).first()
    return voided is not None


def _conflict(
    session: Session,
    deps: DomainDeps,
    cabinet: Cabinet,
    parcel: Parcel,
    event: Event,
    caller: Caller,
    why: str,
    *,
    record: bool = True,
) -> None:
    """Keep the parcel's state; tell the operators (alarm) and note it in its history."""
    logger.warning("offline pickup of parcel %s conflicts: %s", parcel.id, why)
    if record:
        record_step(
            session,
            parcel,
            parcel.state,
            parcel.state,
            caller=caller,
            now=deps.clock(),
            reason=f"offline pickup reported by the cabinet ({why})",
            device_time=event.device_time,
        )
    audit(
        session,
        deps,
        action="pickup.offline_conflict",
        caller=caller,
        target=Target(
            site_id=cabinet.site_id,
            cabinet_id=cabinet.id,
            door_id=None,
            parcel_id=parcel.id,
            recipient_id=parcel.recipient_id,
        ),
        outcome="alarm",
        device_time=event.device_time,
        details={"conflict": why, "event_id": event.event_id, "state_kept": parcel.state},
    )


def _offline_audit(
    session: Session,
    deps: DomainDeps,
    parcel: Parcel,
    event: Event,
    caller: Caller,
    outcome: str,
    details: dict[str, object],
) -> None:
    audit(
        session,
        deps,
        action="pickup.offline",
        caller=caller,
        target=parcel_target(parcel),
        outcome=outcome,
        device_time=event.device_time,
        details={"event_id": event.event_id, "door_number": event.door} | details,
    )
