"""Presence messages and the per-connection counter behind them.

Before EVERY connection attempt the counter is incremented and persisted in the
journal, then that number goes into both the last will (offline) and the online
announcement. The server keeps the highest number it has seen: a presence with a lower
number is stale, and an offline only counts when its number is the current one — so a
will published late for connection 6 cannot mark connection 7 offline.
"""

from __future__ import annotations

from typing import Final, Literal

from locker_agent.journal import Journal
from locker_agent.link.mqtt import Announcement, Outgoing
from locker_contract import Presence, encode, new_envelope, topics

AGENT_VERSION: Final = "0.1.0"


def presence_message(
    cabinet_id: str, status: Literal["online", "offline"], connection: int
) -> Outgoing:
    body = Presence(status=status, connection=connection, agent_version=AGENT_VERSION)
    payload = encode(new_envelope(cabinet_id, body))
    return Outgoing(topics.presence(cabinet_id), payload, retain=True)


class PresenceCounter:
    """``prepare_connect`` for :class:`~locker_agent.link.mqtt.MqttAdapter`."""

    def __init__(self, cabinet_id: str, journal: Journal) -> None:
        self.cabinet_id = cabinet_id
        self._journal = journal

    def __call__(self) -> Announcement:
        connection = self._journal.next_connection()
        return Announcement(
            connection,
            will=presence_message(self.cabinet_id, "offline", connection),
            online=presence_message(self.cabinet_id, "online", connection),
        )
