"""Domain errors raised by the services, on top of :mod:`locker_server.errors`::

DomainError (locker_server.errors)
├── ValidationFailed
│   └── InvalidField         422 "validation_failed", with ``fields`` naming the field
├── Conflict
│   └── RemoteOpenDisabled   409 "remote_open_disabled"  the kill switch is on
└── LinkUnavailable          503 "link_unavailable"      no link to publish a command
                                                         on (it is stored as failed)
"""

from __future__ import annotations

from typing import ClassVar

from locker_server.errors import Conflict, DomainError, ValidationFailed


class InvalidField(ValidationFailed):
    """Input that breaks a domain rule, naming the field (the API lists it in ``fields``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.fields = [{"field": field, "reason": reason}]


class RemoteOpenDisabled(Conflict):
    """The operator's kill switch refuses remote opens for this cabinet or its site."""

    code: ClassVar[str] = "remote_open_disabled"


class LinkUnavailable(DomainError):
    """The server has no cabinet link to publish on (or publishing failed)."""

    code: ClassVar[str] = "link_unavailable"
    http_status: ClassVar[int] = 503
