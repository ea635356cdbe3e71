"""The Alembic migrations build exactly the schema the SQLModel models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import locker_server.models_registry  # noqa: F401  (registers every table)


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_migrated_database_has_every_model_table(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    missing = set(SQLModel.metadata.tables) - tables
    assert not missing, f"tables defined by models but not created by migrations: {missing}"


def test_migrations_and_models_do_not_drift(engine: Engine) -> None:
    assert _drift(engine) == []
