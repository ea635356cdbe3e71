"""Exceptions raised by :mod:`locker_agent.link` (the agent's side of the MQTT link).

They derive from :class:`locker_agent.errors.AgentError`, so a caller that handles
the agent's tree handles these too. SQLite and paho errors are translated where they
enter our code::

    AgentError
    └── LinkError                the journal or the broker connection failed
        ├── JournalError         the journal database cannot be opened, read or written
        ├── LinkDown             a publish was asked for while not connected
        └── OutgoingQueueFull    too many publishes are waiting for their PUBACK
"""

from __future__ import annotations

from locker_agent.errors import AgentError


class LinkError(AgentError):
    """The journal or the broker connection failed."""


class JournalError(LinkError):
    """The journal database cannot be opened, read or written."""


class LinkDown(LinkError):
    """A publish was asked for while the adapter is not connected."""


class OutgoingQueueFull(LinkError):
    """Too many publishes are waiting for their PUBACK; try again after some complete."""
