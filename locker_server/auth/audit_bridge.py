"""Temporary bridge to ``locker_server.audit`` while that package is being written.

Resolved at call time so the app starts before the audit package lands; replaced by
direct imports once it has.
"""

from __future__ import annotations

import importlib
from typing import Any


def _audit_module() -> Any:
    return importlib.import_module("locker_server.audit")


def make_actor(actor_type: str, actor_id: str | None) -> Any:
    return _audit_module().Actor(type=actor_type, id=actor_id)


def make_event(**fields: Any) -> Any:
    return _audit_module().AuditEvent(**fields)


def audit_log_class() -> Any | None:
    try:
        return getattr(_audit_module(), "AuditLog", None)
    except ModuleNotFoundError as exc:
        if exc.name != "locker_server.audit":
            raise
        return None


def notifier_class() -> Any | None:
    try:
        return getattr(importlib.import_module("locker_server.notifications"), "Notifier", None)
    except ModuleNotFoundError as exc:
        if exc.name != "locker_server.notifications":
            raise
        return None
