"""Domain errors raised by the services, on top of :mod:`locker_server.errors`::

ValidationFailed (locker_server.errors)
└── InvalidField    422 "validation_failed", with ``fields`` naming the field and reason
"""

from __future__ import annotations

from locker_server.errors import ValidationFailed


class InvalidField(ValidationFailed):
    """Input that breaks a domain rule, naming the field (the API lists it in ``fields``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.fields = [{"field": field, "reason": reason}]
