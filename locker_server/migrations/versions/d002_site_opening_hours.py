"""domain: a site's daily opening hours (a door opened outside them raises an alarm)

Revision ID: d002_site_opening_hours
Revises: d001_domain
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d002_site_opening_hours"
down_revision: str | Sequence[str] | None = "d001_domain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("opening_hours", sa.String(length=11), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("opening_hours")
