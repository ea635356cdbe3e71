"""Each cabinet event is applied once: its id is claimed in ``link_events`` first.

The ingest claims a batch's event ids in the transaction that applies them: an id
already stored (a re-publish, a redelivery, another server process that got there
first) is not claimed again, so it drives the services no second time. An event the
domain refuses stays stored, marked refused, so it is acknowledged and never retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from locker_contract.bodies import Event
from locker_server.models.links import LinkEvent

#: ``link_events.outcome`` is 32 characters long.
_MAX_OUTCOME = 32
_LINK_EVENTS: Table = SQLModel.metadata.tables[LinkEvent.__tablename__]
#: ``INSERT … ON CONFLICT DO NOTHING RETURNING event_id`` per backend, built once (cached).
_CLAIMS = {
    dialect.dialect.name: dialect.insert(_LINK_EVENTS)
    .on_conflict_do_nothing()
    .returning(_LINK_EVENTS.c.event_id)
    for dialect in (postgresql, sqlite)
}


def claim(
    session: Session, cabinet_id: int, events: Sequence[Event], *, received_at: datetime
) -> set[str]:
    """Insert the batch's event ids first, in one statement; answer the ids that were new.

    An id already stored (a re-publish, a redelivery, another server process that got
    there first — on PostgreSQL its uncommitted row makes us wait, then skip) is absent.
    One statement built once, executed for many rows (SQLAlchemy's "insertmanyvalues":
    multi-row INSERTs), not a fresh statement with 7 parameters per row compiled per
    message; ``RETURNING`` names the rows inserted on both backends. Rows go in sorted by
    id: two processes claiming overlapping batches take the ids' index locks in the same
    order, so neither can wait for the other in a circle.
    """
    rows = [
        {
            "event_id": event.event_id,
            "cabinet_id": cabinet_id,
            "seq": event.seq,
            "type": event.type,
            "outcome": "applied",
            "device_time": event.device_time,
            "received_at": received_at,
        }
        for event in sorted(events, key=lambda event: event.event_id)
    ]
    statement = _CLAIMS[session.get_bind().dialect.name]
    return set(session.execute(statement, rows).scalars())


def is_stored(session: Session, cabinet_id: int, event_id: str) -> bool:
    """Whether the cabinet's event ``event_id`` has been stored (applied or refused)."""
    statement = (
        select(_LINK_EVENTS.c.id)
        .where(_LINK_EVENTS.c.event_id == event_id)
        .where(_LINK_EVENTS.c.cabinet_id == cabinet_id)
    )
    return session.execute(statement).first() is not None


def mark_refused(session: Session, event_id: str, code: str) -> None:
    """Record that the domain refused the claimed event ``event_id`` (with its error code)."""
    session.execute(
        update(LinkEvent)
        .where(LinkEvent.event_id == event_id)  # type: ignore[arg-type]
        .values(outcome=f"refused:{code}"[:_MAX_OUTCOME])
    )
