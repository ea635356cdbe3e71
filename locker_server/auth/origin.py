"""Who asked for a change and through which channel, for the audit entries it causes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from locker_server.audit import Actor, AuditEvent


@dataclass(frozen=True, slots=True)
class Origin:
    actor: Actor
    channel: str
    source: str | None = None

    def event(self, action: str, outcome: str = "success", **fields: Any) -> AuditEvent:
        """An audit event caused by this origin."""
        return AuditEvent(
            action=action,
            actor=self.actor,
            outcome=outcome,
            channel=self.channel,
            source=self.source,
            **fields,
        )
