"""Exceptions raised by :mod:`locker_agent.link` (the agent's side of the MQTT link).

They derive from :class:`locker_agent.errors.AgentError`, so a caller that handles
the agent's tree handles these too. paho and ssl errors are translated where they
enter our code (the journal's own failures are :class:`locker_agent.errors.JournalError`)::

    AgentError
    └── LinkError                the broker connection failed
        ├── LinkDown             a publish was asked for while not connected
        ├── OutgoingQueueFull    too many publishes are waiting for their PUBACK
        └── ServerUnreachable    a courier-desk request got no answer (link down, timeout)
            └── UnexpectedAnswer the server answered with something the operation never
                                 answers (a server that does not match this agent)
"""

from __future__ import annotations

from locker_agent.errors import AgentError


class LinkError(AgentError):
    """The broker connection failed."""


class LinkDown(LinkError):
    """A publish was asked for while the adapter is not connected."""


class OutgoingQueueFull(LinkError):
    """Too many publishes are waiting for their PUBACK; try again after some complete."""


class ServerUnreachable(LinkError):
    """A courier-desk request got no answer: the link is down or the server was silent."""


class UnexpectedAnswer(ServerUnreachable):
    """The server's signed answer does not fit the operation asked for."""
