"""The parcel lifecycle as a table of allowed transitions, and the one function that moves.

::

    announced ──▶ reserved ──▶ deposited ──▶ notified ──▶ picked_up
        │  ▲          │            │            │
        │  └──────────┘ reservation│expired     ├──▶ expired ──▶ collected_for_return ──▶ returned
        ▼             ▼            ▼            ▼
    cancelled ◀───────┴────────────┴────────────┘   (after deposit: operators only)

``expired ──▶ picked_up`` is taken only by a pickup the cabinet validated offline and
reported late (:mod:`locker_server.services.offline_pickups`): the parcel has left its
door. An online pickup of an expired parcel is refused before it reaches this table.

Every move writes a ``ParcelTransition`` row (who, when, why) and an audit entry
``parcel.<to_state>`` in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from locker_server.errors import InvalidTransition
from locker_server.models import Parcel, ParcelState, ParcelTransition
from locker_server.services.context import Caller, DomainDeps, Target, audit

S = ParcelState

ALLOWED_TRANSITIONS: Mapping[ParcelState, frozenset[ParcelState]] = {
    S.announced: frozenset({S.reserved, S.cancelled}),
    S.reserved: frozenset({S.deposited, S.announced, S.cancelled}),
    S.deposited: frozenset({S.notified, S.picked_up, S.expired, S.cancelled}),
    S.notified: frozenset({S.picked_up, S.expired, S.cancelled}),
    S.expired: frozenset({S.collected_for_return, S.picked_up}),
    S.collected_for_return: frozenset({S.returned}),
    S.picked_up: frozenset(),
    S.returned: frozenset(),
    S.cancelled: frozenset(),
}

#: States in which a parcel sits in (or holds) a door.
HOLDS_DOOR = frozenset({S.reserved, S.deposited, S.notified, S.expired})
#: States in which the parcel is physically inside its door.
INSIDE_DOOR = frozenset({S.deposited, S.notified, S.expired})
#: States in which the recipient may collect the parcel.
COLLECTABLE = frozenset({S.deposited, S.notified})
#: States an operator may still cancel only with the operator's authority (after deposit).
CANCEL_NEEDS_OPERATOR = frozenset({S.deposited, S.notified})


def parcel_target(parcel: Parcel) -> Target:
    return Target(
        site_id=parcel.site_id,
        cabinet_id=parcel.cabinet_id,
        door_id=parcel.door_id,
        parcel_id=parcel.id,
        recipient_id=parcel.recipient_id,
    )


def ensure_can_move(parcel: Parcel, to_state: ParcelState) -> None:
    current = ParcelState(parcel.state)
    if to_state not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a parcel that is {current.value} cannot become {to_state.value}")


def move(
    session: Session,
    deps: DomainDeps,
    parcel: Parcel,
    to_state: ParcelState,
    *,
    caller: Caller,
    now: datetime,
    reason: str | None = None,
    device_time: datetime | None = None,
) -> None:
    """Move ``parcel`` to ``to_state`` if the table allows it; record and audit the step."""
    ensure_can_move(parcel, to_state)
    from_state = parcel.state
    parcel.state = to_state
    parcel.updated_at = now
    session.add(parcel)
    record_step(
        session,
        parcel,
        from_state,
        to_state,
        caller=caller,
        now=now,
        reason=reason,
        device_time=device_time,
    )
    audit(
        session,
        deps,
        action=f"parcel.{to_state.value}",
        caller=caller,
        target=parcel_target(parcel),
        reason=reason,
        device_time=device_time,
        details={"from_state": from_state},
    )


def record_step(
    session: Session,
    parcel: Parcel,
    from_state: str | None,
    to_state: str,
    *,
    caller: Caller,
    now: datetime,
    reason: str | None = None,
    device_time: datetime | None = None,
) -> None:
    """Write one ``ParcelTransition`` row (also used for same-state steps like an extension)."""
    assert parcel.id is not None, "flush the parcel before recording its history"
    session.add(
        ParcelTransition(
            parcel_id=parcel.id,
            from_state=from_state,
            to_state=to_state,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            at=now,
            device_time=device_time,
            reason=reason,
        )
    )
