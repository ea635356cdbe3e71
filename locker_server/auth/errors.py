"""Errors of the identity part, all refinements of the server's domain error tree::

    AuthenticationFailed (locker_server.errors)   401
    └── CredentialsRejected   a token or API key that is forged, expired, revoked or unknown

Only the generic message reaches the client; ``reason`` is for the audit log.
"""

from __future__ import annotations

from locker_server.errors import AuthenticationFailed


class CredentialsRejected(AuthenticationFailed):
    """The presented credential is not valid; ``reason`` says why (audit only)."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid or expired credentials")
        self.reason = reason
