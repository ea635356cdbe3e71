"""The tamper-evident audit log: hash-chained entries with signed checkpoints.

::

    from locker_server.audit import AuditLog, AuditEvent, Actor
    audit = AuditLog(signing_key=keys.audit_signing_key)
    audit.record(session, AuditEvent(action="parcel.deposited", actor=Actor("courier", "7"),
                                     outcome="success", channel="cabinet", parcel_id=12))

Format, verification kinds and the offline bundle are described in ``docs/audit.md``.
"""

from __future__ import annotations

from locker_server.audit.errors import AuditError, BundleError, InvalidAuditEvent
from locker_server.audit.events import SYSTEM, Actor, AuditEvent
from locker_server.audit.log import AuditLog, Checkpoint, RecordedEntry
from locker_server.audit.verify import VerificationReport

__all__ = [
    "SYSTEM",
    "Actor",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "BundleError",
    "Checkpoint",
    "InvalidAuditEvent",
    "RecordedEntry",
    "VerificationReport",
]
