"""Errors of the broker tooling (on top of :mod:`locker_server.errors`, whose
``ConfigurationError`` reports unusable broker or TLS files)::

    BrokerError
    └── BrokerStartFailed     the embedded development broker could not start
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of the broker tooling's own errors."""


class BrokerStartFailed(BrokerError):
    """The embedded development broker did not come up."""
