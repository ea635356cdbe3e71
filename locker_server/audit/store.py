"""Reading the log back in canonical form, fast.

Rows come back as plain tuples in :data:`ENTRY_COLUMNS` order: the 16 canonical values
(timestamps already formatted *by the database* as canonical RFC 3339 text, so the hot loop
never parses a datetime) followed by ``prev_hash`` and ``entry_hash``. Results are streamed
(server-side cursor on PostgreSQL) in batches, so memory stays flat on any log size.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session

from locker_server.audit.canonical import CANONICAL_FIELDS, TIME_FIELDS
from locker_server.audit.models import checkpoints_table, entries_table

ENTRY_COLUMNS: Final = (*CANONICAL_FIELDS, "prev_hash", "entry_hash")
PREV_INDEX: Final = len(CANONICAL_FIELDS)
HASH_INDEX: Final = PREV_INDEX + 1
BATCH_ROWS: Final = 10_000

_PG_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

Row = tuple[Any, ...]
_cursor_numbers = itertools.count(1)


def canonical_time(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """SQL turning a stored timestamp into its canonical text (NULL stays NULL)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), _PG_FORMAT)
    # SQLite stores SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, as we always write it).
    text = sa.type_coerce(column, sa.String())
    return sa.type_coerce(
        sa.func.substr(text, 1, 10) + "T" + sa.func.substr(text, 12) + "Z", sa.String()
    )


def entry_columns(dialect: str) -> list[sa.ColumnElement[Any]]:
    columns: list[sa.ColumnElement[Any]] = []
    for name in ENTRY_COLUMNS:
        column = entries_table.c[name]
        if name in TIME_FIELDS:
            columns.append(canonical_time(column, dialect).label(name))
        else:
            columns.append(column)
    return columns


def stream_entries(
    session: Session,
    *where: sa.ColumnElement[bool],
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Sequence[Row]]:
    """Batches of canonical entry tuples in ``seq`` order."""
    dialect = session.get_bind().dialect.name
    statement = sa.select(*entry_columns(dialect)).where(*where).order_by(entries_table.c.seq)
    # Per statement: Connection.execution_options() would change the caller's connection.
    options = {"stream_results": True, "max_row_buffer": batch_rows}
    result = session.connection().execute(statement, execution_options=options)
    try:
        for batch in result.partitions(batch_rows):
            yield [tuple(row) for row in batch]
    finally:
        result.close()


def stream_all_entries(
    session: Session, *, batch_rows: int = BATCH_ROWS, from_seq: int = 1
) -> Generator[Sequence[Row]]:
    """Every entry, in batches, straight from the driver (3x faster than :func:`stream_entries`).

    Verification's full scan has no parameters, so the statement is compiled once to plain
    SQL and run on the session's own DBAPI connection (a named, server-side cursor on
    PostgreSQL), skipping SQLAlchemy's per-row result machinery.
    """
    dialect = session.get_bind().dialect
    statement = sa.select(*entry_columns(dialect.name)).order_by(entries_table.c.seq)
    if from_seq > 1:  # verification carrying on past an incident
        statement = statement.where(entries_table.c.seq >= from_seq)
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    connection: Any = session.connection().connection.dbapi_connection
    if dialect.name == "postgresql":
        cursor = connection.cursor(name=f"audit_scan_{next(_cursor_numbers)}")
    else:
        cursor = connection.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(batch_rows):
            yield batch
    finally:
        cursor.close()


def entry_at(session: Session, seq: int) -> Row | None:
    """One canonical entry tuple, or ``None``."""
    for batch in stream_entries(session, entries_table.c.seq == seq, batch_rows=1):
        return batch[0]
    return None


def seq_of_hash(session: Session, entry_hash: str) -> int | None:
    """The ``seq`` of the entry carrying ``entry_hash`` (indexed), or ``None``."""
    statement = sa.select(entries_table.c.seq).where(entries_table.c.entry_hash == entry_hash)
    value = session.execute(statement).scalars().first()
    return int(value) if value is not None else None


def max_seq(session: Session) -> int:
    value = session.execute(sa.select(sa.func.max(entries_table.c.seq))).scalar()
    return int(value or 0)


def checkpoint_rows(session: Session, *where: sa.ColumnElement[bool]) -> list[Row]:
    """``(seq, entry_hash, signed_at text, key_id, signature)`` tuples in ``seq`` order."""
    dialect = session.get_bind().dialect.name
    table = checkpoints_table
    statement = (
        sa.select(
            table.c.seq,
            table.c.entry_hash,
            canonical_time(table.c.signed_at, dialect),
            table.c.key_id,
            table.c.signature,
        )
        .where(*where)
        .order_by(table.c.seq)
    )
    return [tuple(row) for row in session.execute(statement)]


def latest_checkpoint_seq(session: Session) -> int:
    value = session.execute(sa.select(sa.func.max(checkpoints_table.c.seq))).scalar()
    return int(value or 0)
