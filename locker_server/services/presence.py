"""Cabinet presence and door snapshots, as stored in ``cabinet_links``.

Presence carries a per-cabinet connection counter (the agent adds one on every CONNECT
attempt and sets its last will with the same number). The rule that keeps a late
"offline" from marking a live cabinet offline:

* a presence whose connection number is lower than the highest seen is ignored;
* "online" with a higher number makes the cabinet online under that number; "online"
  for a connection already reported offline is stale (two server processes may take a
  cabinet's online and its last will in either order);
* "offline" applies only to the current connection (or to a newer one we never saw
  come online).

A cabinet that goes offline raises the alarm ``cabinet_offline``; coming back online
clears it (:mod:`locker_server.services.alarms`).

A ``state`` snapshot carries a strictly increasing version; an older or repeated
version is ignored, so a redelivered snapshot never rolls a door back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from locker_contract.bodies import Presence, State
from locker_server.models import Door
from locker_server.models.links import CabinetLink
from locker_server.services import alarms
from locker_server.services.context import Caller, DomainDeps, Target, audit

logger = logging.getLogger(__name__)


def insert_ignoring_duplicates(
    session: Session, model: Any, rows: list[dict[str, Any]], key: Any
) -> list[Any]:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; the ``key`` of rows added.

    ``RETURNING`` tells the two outcomes apart on both backends (a row comes back only
    when it was inserted; psycopg's rowcount is not reliable for this).
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(rows).on_conflict_do_nothing()
    return list(session.execute(statement.returning(key)).scalars())


def lock_link(session: Session, cabinet_id: int) -> CabinetLink:
    """The cabinet's link row, created if missing, locked for this transaction."""
    row = {"cabinet_id": cabinet_id, "online": False, "connection": 0, "state_version": -1}
    insert_ignoring_duplicates(session, CabinetLink, [row], CabinetLink.cabinet_id)
    query = select(CabinetLink).where(CabinetLink.cabinet_id == cabinet_id).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one()


def links_of(session: Session, cabinet_ids: Sequence[int]) -> dict[int, CabinetLink]:
    """The link rows of these cabinets (a cabinet that never connected has none)."""
    if not cabinet_ids:
        return {}
    query = select(CabinetLink).where(col(CabinetLink.cabinet_id).in_(cabinet_ids))
    return {link.cabinet_id: link for link in session.exec(query).all()}


def touch(session: Session, cabinet_id: int, now: datetime | None) -> None:
    """Record that the cabinet was heard from (any message; ``None``: a retained replay)."""
    if now is None:
        return
    statement = update(CabinetLink).where(CabinetLink.cabinet_id == cabinet_id)  # type: ignore[arg-type]
    if session.execute(statement.values(last_seen=now)).rowcount == 0:  # type: ignore[attr-defined]
        lock_link(session, cabinet_id).last_seen = now


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """What a presence message did: ``came_online`` triggers the online sync."""

    applied: bool
    came_online: bool = False
    went_offline: bool = False


def apply_presence(
    session: Session,
    deps: DomainDeps,
    *,
    cabinet_id: int,
    site_id: int,
    presence: Presence,
    caller: Caller,
    heard_at: datetime | None,
    sent_at: datetime,
) -> PresenceChange:
    """Apply the connection-counter rule; ``heard_at`` None: a retained message replayed by
    the broker (it changes the status if newer but not when the cabinet was last seen)."""
    link = lock_link(session, cabinet_id)
    if heard_at is not None:
        link.last_seen = heard_at
    session.add(link)
    change = _decide(link, presence, at=heard_at or sent_at)
    if not change.applied:
        logger.info(
            "cabinet %s: stale presence (connection %s) ignored", cabinet_id, presence.connection
        )
    elif change.came_online or change.went_offline:
        alarms.on_presence(
            session, deps, cabinet=alarms.CabinetAt(cabinet_id, site_id), online=link.online,
            connection=link.connection, caller=caller,
            reported_at=sent_at if heard_at is None else None,
        )  # fmt: skip
        _audit_presence(session, deps, link, site_id=site_id, caller=caller)
    return change


def _decide(link: CabinetLink, presence: Presence, *, at: datetime) -> PresenceChange:
    """The connection-counter rule (module docstring); changes ``link`` when it applies."""
    newer = presence.connection > link.connection
    current = presence.connection == link.connection
    if presence.status == "online":
        if newer:
            link.connection, link.online, link.since = presence.connection, True, at
            link.agent_version = presence.agent_version
            return PresenceChange(applied=True, came_online=True)
        # The same connection again (a redelivery) while online; after its own offline, stale.
        return PresenceChange(applied=current and link.online)
    if newer or (current and link.online):
        was_online = link.online
        link.connection, link.online, link.since = presence.connection, False, at
        return PresenceChange(applied=True, went_offline=was_online)
    return PresenceChange(applied=current)


def _audit_presence(
    session: Session, deps: DomainDeps, link: CabinetLink, *, site_id: int, caller: Caller
) -> None:
    audit(
        session,
        deps,
        action="cabinet.online" if link.online else "cabinet.offline",
        caller=caller,
        target=Target(site_id=site_id, cabinet_id=link.cabinet_id),
        details={"connection": link.connection, "agent_version": link.agent_version},
    )


def apply_state(session: Session, *, cabinet_id: int, state: State, observed_at: datetime) -> bool:
    """Apply a door snapshot unless its version is not newer than the last one applied."""
    link = lock_link(session, cabinet_id)
    if state.version <= link.state_version:
        logger.info("cabinet %s: state version %s not newer, ignored", cabinet_id, state.version)
        return False
    link.state_version = state.version
    session.add(link)
    doors = session.exec(select(Door).where(Door.cabinet_id == cabinet_id)).all()
    for door in doors:
        snapshot = state.door(door.number)
        if snapshot is not None and _is_newer(door, observed_at):
            door.door_state, door.door_state_at = snapshot.state, observed_at
            session.add(door)
    return True


def _is_newer(door: Door, observed_at: datetime) -> bool:
    return door.door_state_at is None or observed_at >= door.door_state_at
