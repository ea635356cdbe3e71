"""Imports every module that defines tables, so ``SQLModel.metadata`` is complete.

Alembic's env and the schema-drift test import this module. A package with tables of
its own is imported here; ``locker_server.models`` imports every domain and link table.
"""

from __future__ import annotations

import locker_server.audit.models
import locker_server.auth.models
import locker_server.models
import locker_server.notifications.models  # noqa: F401
