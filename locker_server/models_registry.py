"""Imports every module that defines tables, so ``SQLModel.metadata`` is complete.

Alembic's env and the schema-drift test import this module. Add new model modules here.
"""

from __future__ import annotations

import importlib
import logging

logger = logging.getLogger(__name__)

MODEL_MODULES = (
    "locker_server.audit.models",
    "locker_server.auth.models",
    "locker_server.models",
    "locker_server.notifications.models",
    "locker_server.link.provisioning",
)

for _name in MODEL_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a part still under construction
        if exc.name is None or not _name.startswith(exc.name):
            raise
        logger.debug("model module %s not present yet", _name)
