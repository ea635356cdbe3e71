"""One page of a query: the rows asked for plus the number of all rows that match.

Every list of the API answers a page (``locker_server.api.deps.Page``); services that list
build a filtered, ordered query and hand it here.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

RowT = TypeVar("RowT")


def paged(
    session: Session, query: SelectOfScalar[RowT], *, limit: int, offset: int
) -> tuple[list[RowT], int]:
    """``limit`` rows of ``query`` from ``offset`` on, and the total matching ``query``."""
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = int(session.exec(counted).one())
    rows = session.exec(query.limit(limit).offset(offset)).all()
    return list(rows), total
