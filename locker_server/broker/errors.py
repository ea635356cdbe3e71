"""Errors of the broker tooling (on top of :mod:`locker_server.errors`, whose
``ConfigurationError`` reports unusable broker or TLS files)::

    BrokerError
    └── BrokerStartFailed     the embedded development broker could not start
        └── BrokerPortTaken   ... because something else already listens on its port
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of the broker tooling's own errors."""


class BrokerStartFailed(BrokerError):
    """The embedded development broker did not come up."""


class BrokerPortTaken(BrokerStartFailed):
    """Another process already listens on the embedded broker's address."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"{host}:{port} is already in use")
        self.host = host
        self.port = port
