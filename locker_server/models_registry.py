"""Imports every module that defines tables, so ``SQLModel.metadata`` is complete.

Alembic's env and the schema-drift test import this module. Add new model modules here;
a missing module is an error (a table the migrations create but nothing maps).
"""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "locker_server.audit.models",
    "locker_server.auth.models",
    "locker_server.models",
    "locker_server.notifications.models",
    "locker_server.link.models",
    "locker_server.link.command_models",
    "locker_server.link.provisioning",
)

for _name in MODEL_MODULES:
    importlib.import_module(_name)
