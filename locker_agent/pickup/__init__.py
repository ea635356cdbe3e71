"""Pickups at the cabinet: which door a presented credential opens, or why none.

:mod:`~locker_agent.pickup.desk` is the one entry point — :class:`PickupDesk` takes a
:class:`TypedCode` or a :class:`ScannedToken` and answers :class:`Granted` (the door to
open) or :class:`Refused` (why not), journaled; :mod:`~locker_agent.pickup.pending`
holds a granted pickup until its door has opened and closed again (only then is the
``pickup`` event journaled); :mod:`~locker_agent.pickup.allowlist` is
the sans-IO offline allow-list it checks against, behind a small storage Protocol that
:mod:`~locker_agent.pickup.store` implements on the agent journal. Nothing here knows
the MQTT link: the runtime feeds the allow-list from ``sync`` messages and tells the
desk whether the link is up.
"""

from locker_agent.pickup.allowlist import AllowList, LockoutStatus, Match, NoMatch, NoMatchReason
from locker_agent.pickup.desk import (
    Credential,
    Decision,
    DoorOpener,
    Granted,
    PickupDesk,
    PickupOutcome,
    Refused,
    ScannedToken,
    TypedCode,
    Unreadable,
    presented,
)
from locker_agent.pickup.pending import PendingPickup, PendingPickups
from locker_agent.pickup.store import JournalAllowListStore

__all__ = [
    "AllowList",
    "Credential",
    "Decision",
    "DoorOpener",
    "Granted",
    "JournalAllowListStore",
    "LockoutStatus",
    "Match",
    "NoMatch",
    "NoMatchReason",
    "PendingPickup",
    "PendingPickups",
    "PickupDesk",
    "PickupOutcome",
    "Refused",
    "ScannedToken",
    "TypedCode",
    "Unreadable",
    "presented",
]
