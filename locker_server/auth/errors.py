"""Errors of the identity part, all refinements of the server's domain error tree::

    AuthenticationFailed (locker_server.errors)   401
    ├── CredentialsRejected   a token or API key that is forged, expired, revoked or unknown
    └── LoginRefused          unknown user, wrong password or deactivated user (one message)
    DomainError
    └── TooManyAttempts       429 "too_many_attempts"  login throttled (with ``retry_after``)

Only the generic message reaches the client; ``reason`` is for the audit log.
"""

from __future__ import annotations

from locker_server.errors import AuthenticationFailed, DomainError


class CredentialsRejected(AuthenticationFailed):
    """The presented credential is not valid; ``reason`` says why (audit only)."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid or expired credentials")
        self.reason = reason


class LoginRefused(AuthenticationFailed):
    """Username/password login refused; ``user_id`` is set when the name is a real user."""

    def __init__(self, *, user_id: int | None, reason: str) -> None:
        super().__init__("incorrect username or password")
        self.user_id = user_id
        self.reason = reason


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    http_status = 429
