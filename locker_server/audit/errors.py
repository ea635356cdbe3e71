"""Errors of the audit log.

They sit under the server's domain error tree so the API maps them in one place::

    DomainError                       (locker_server.errors)
    └── AuditError                    500 "audit_error"       the log could not do its job
        ├── InvalidAuditEvent         422 "invalid_audit_event" a caller built a bad event
        ├── BundleError               400 "invalid_bundle"    a bundle is unreadable or malformed
        └── WitnessError              500 "invalid_witness"   the witness file is unreadable

Tampering is not an exception: verification *reports* it (``VerificationReport``), because
finding tampering is the verifier doing its job, not failing at it.
"""

from __future__ import annotations

from locker_server.errors import DomainError


class AuditError(DomainError):
    code = "audit_error"
    http_status = 500


class InvalidAuditEvent(AuditError):
    code = "invalid_audit_event"
    http_status = 422


class BundleError(AuditError):
    code = "invalid_bundle"
    http_status = 400


class WitnessError(AuditError):
    code = "invalid_witness"
    http_status = 500
