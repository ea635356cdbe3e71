"""Domain errors of the server, mapped to HTTP in one place (``locker_server.api.errors``).

Every error carries a stable machine-readable ``code`` and a human message, and may
carry ``retry_after`` (seconds; sent as ``Retry-After``) when waiting will help. Services
raise these; routes never build HTTP errors themselves::

    DomainError (400 "bad_request")
    ├── ValidationFailed        422 "validation_failed"   input that breaks a domain rule
    ├── NotFound                404 "not_found"
    ├── Conflict                409 "conflict"
    │   ├── InvalidTransition   409 "invalid_transition"  parcel lifecycle step not allowed
    │   └── NoDoorAvailable     409 "no_door_available"
    ├── AuthenticationFailed    401 "authentication_failed"
    ├── PermissionDenied        403 "permission_denied"
    ├── PickupRefused           403 "pickup_refused"      same answer for unknown and wrong code
    │   └── LockedOut           429 "locked_out"
    ├── ConfigurationError      500 "configuration_error" the server itself is misconfigured
    └── DeliveryFailed          502 "delivery_failed"     a notification channel refused
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error the server's services raise on purpose."""

    code: ClassVar[str] = "bad_request"
    http_status: ClassVar[int] = 400

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance refinement of the class code


class ValidationFailed(DomainError):
    code = "validation_failed"
    http_status = 422


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class InvalidTransition(Conflict):
    code = "invalid_transition"


class NoDoorAvailable(Conflict):
    code = "no_door_available"


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    http_status = 401


class PermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403


class PickupRefused(DomainError):
    code = "pickup_refused"
    http_status = 403


class LockedOut(PickupRefused):
    code = "locked_out"
    http_status = 429


class ConfigurationError(DomainError):
    code = "configuration_error"
    http_status = 500


class DeliveryFailed(DomainError):
    code = "delivery_failed"
    http_status = 502
