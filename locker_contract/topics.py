"""The MQTT topic tree: ``lockers/v1/{cabinet_id}/{kind}``, built and parsed by functions.

Topics are values computed here, never assembled with f-strings elsewhere, so the cabinet
id is always validated: it is also the MQTT username and client id, and it can never
contain the wildcards ``+`` / ``#`` or a ``/`` that would reach another cabinet's tree.
Beyond the pattern, ``.`` and ``..`` (path words, not names) and every id starting with
``locker-server`` (the server's broker accounts and client ids share the cabinets' name
space on the broker) are refused.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

from locker_contract.errors import InvalidTopic

PREFIX = "lockers/v1"
QOS = 1
CABINET_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_CABINET_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Names of the server's broker accounts and client ids start with this; no cabinet's may.
SERVER_NAME_PREFIX = "locker-server"
_PATH_WORDS = frozenset({".", ".."})


class Kind(enum.StrEnum):
    """The last part of a topic: what kind of message travels on it."""

    PRESENCE = "presence"
    STATE = "state"
    EVT = "evt"
    EVT_ACK = "evt/ack"
    CMD = "cmd"
    CMD_RES = "cmd/res"
    SYNC = "sync"
    REQ = "req"
    RES = "res"


class Direction(enum.StrEnum):
    TO_SERVER = "cabinet → server"
    TO_CABINET = "server → cabinet"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one kind of topic is published (QoS 1 everywhere)."""

    kind: Kind
    direction: Direction
    retained: bool
    qos: int = QOS


SPECS: dict[Kind, TopicSpec] = {
    Kind.PRESENCE: TopicSpec(Kind.PRESENCE, Direction.TO_SERVER, retained=True),
    Kind.STATE: TopicSpec(Kind.STATE, Direction.TO_SERVER, retained=True),
    Kind.EVT: TopicSpec(Kind.EVT, Direction.TO_SERVER, retained=False),
    Kind.EVT_ACK: TopicSpec(Kind.EVT_ACK, Direction.TO_CABINET, retained=False),
    Kind.CMD: TopicSpec(Kind.CMD, Direction.TO_CABINET, retained=False),
    Kind.CMD_RES: TopicSpec(Kind.CMD_RES, Direction.TO_SERVER, retained=False),
    Kind.SYNC: TopicSpec(Kind.SYNC, Direction.TO_CABINET, retained=False),
    Kind.REQ: TopicSpec(Kind.REQ, Direction.TO_SERVER, retained=False),
    Kind.RES: TopicSpec(Kind.RES, Direction.TO_CABINET, retained=False),
}


class ParsedTopic(NamedTuple):
    cabinet_id: str
    kind: Kind


def cabinet_id_problem(cabinet_id: str) -> str | None:
    """Why ``cabinet_id`` cannot be a cabinet id, or None if it can."""
    if _CABINET_ID.fullmatch(cabinet_id) is None:
        return "must be 1-64 of A-Z a-z 0-9 _ . -"
    if cabinet_id in _PATH_WORDS:
        return "'.' and '..' are not names"
    if cabinet_id.lower().startswith(SERVER_NAME_PREFIX):
        return f"names starting with {SERVER_NAME_PREFIX!r} belong to the server's broker accounts"
    return None


def validate_cabinet_id(cabinet_id: str) -> str:
    """Return ``cabinet_id`` if it is a legal id (see ``cabinet_id_problem``)."""
    if not isinstance(cabinet_id, str) or cabinet_id_problem(cabinet_id) is not None:
        raise InvalidTopic(f"invalid cabinet id {cabinet_id!r}")
    return cabinet_id


def topic(cabinet_id: str, kind: Kind) -> str:
    return f"{PREFIX}/{validate_cabinet_id(cabinet_id)}/{kind.value}"


def presence(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.PRESENCE)


def state(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.STATE)


def evt(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.EVT)


def evt_ack(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.EVT_ACK)


def cmd(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.CMD)


def cmd_res(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.CMD_RES)


def sync(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.SYNC)


def req(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.REQ)


def res(cabinet_id: str) -> str:
    return topic(cabinet_id, Kind.RES)


def parse(topic_name: str) -> ParsedTopic:
    """Split a concrete topic into (cabinet id, kind); anything else is InvalidTopic."""
    head = PREFIX + "/"
    if not topic_name.startswith(head):
        raise InvalidTopic(f"topic {topic_name!r} is not under {PREFIX}/")
    cabinet_id, _, rest = topic_name[len(head) :].partition("/")
    try:
        kind = Kind(rest)
    except ValueError:
        raise InvalidTopic(f"topic {topic_name!r} has an unknown kind {rest!r}") from None
    return ParsedTopic(validate_cabinet_id(cabinet_id), kind)


def all_cabinets(kind: Kind) -> str:
    """Subscription filter for one kind of topic of every cabinet."""
    return f"{PREFIX}/+/{kind.value}"


def shared(group: str, kind: Kind) -> str:
    """Shared-subscription filter ``$share/{group}/lockers/v1/+/{kind}`` (load split)."""
    if _CABINET_ID.fullmatch(group) is None:
        raise InvalidTopic(f"invalid shared-subscription group {group!r}")
    return f"$share/{group}/{all_cabinets(kind)}"
