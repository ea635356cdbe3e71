"""The topic tree: built by functions, parsed back, and closed to wildcards and other trees."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locker_contract import InvalidTopic, topics
from locker_contract.topics import Direction, Kind

BUILDERS = {
    Kind.PRESENCE: topics.presence,
    Kind.STATE: topics.state,
    Kind.EVT: topics.evt,
    Kind.EVT_ACK: topics.evt_ack,
    Kind.CMD: topics.cmd,
    Kind.CMD_RES: topics.cmd_res,
    Kind.SYNC: topics.sync,
    Kind.REQ: topics.req,
    Kind.RES: topics.res,
}


def test_topic_names_are_the_ones_the_issue_fixes() -> None:
    names = [build("LOBBY-01") for build in BUILDERS.values()]
    assert names == [
        "lockers/v1/LOBBY-01/presence",
        "lockers/v1/LOBBY-01/state",
        "lockers/v1/LOBBY-01/evt",
        "lockers/v1/LOBBY-01/evt/ack",
        "lockers/v1/LOBBY-01/cmd",
        "lockers/v1/LOBBY-01/cmd/res",
        "lockers/v1/LOBBY-01/sync",
        "lockers/v1/LOBBY-01/req",
        "lockers/v1/LOBBY-01/res",
    ]


@pytest.mark.parametrize("kind", list(Kind))
def test_every_topic_parses_back_to_its_cabinet_and_kind(kind: Kind) -> None:
    assert topics.parse(BUILDERS[kind]("cab_9.x-Y")) == ("cab_9.x-Y", kind)


@pytest.mark.parametrize(
    "cabinet_id", ["", "+", "#", "A/B", "A+", "caf\u00e9", "A B", "A\n", "x" * 65, "$SYS"]
)
def test_cabinet_ids_that_could_escape_their_tree_are_refused(cabinet_id: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.cmd(cabinet_id)


@pytest.mark.parametrize(
    "name",
    [
        "lockers/v2/A/cmd",
        "lockers/v1/A/cmd/extra",
        "lockers/v1/A/command",
        "lockers/v1/+/cmd",
        "lockers/v1//cmd",
        "$share/g/lockers/v1/A/evt",
        "lockers/v1/A",
    ],
)
def test_anything_outside_the_tree_does_not_parse(name: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.parse(name)


def test_server_subscribes_through_shared_subscriptions_for_all_cabinets() -> None:
    assert topics.shared("bridge", Kind.EVT) == "$share/bridge/lockers/v1/+/evt"
    assert topics.shared("bridge", Kind.CMD_RES) == "$share/bridge/lockers/v1/+/cmd/res"
    with pytest.raises(InvalidTopic):
        topics.shared("a/b", Kind.EVT)


def test_only_presence_and_state_are_retained_and_all_use_qos_1() -> None:
    retained = {kind for kind, spec in topics.SPECS.items() if spec.retained}
    assert retained == {Kind.PRESENCE, Kind.STATE}
    assert {spec.qos for spec in topics.SPECS.values()} == {1}
    assert topics.SPECS[Kind.CMD].direction is Direction.TO_CABINET
    assert topics.SPECS[Kind.EVT].direction is Direction.TO_SERVER


@given(st.text(max_size=70))
def test_any_text_is_either_a_cabinet_id_that_round_trips_or_refused(text: str) -> None:
    try:
        name = topics.evt(text)
    except InvalidTopic:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", text) is None
        return
    assert topics.parse(name) == (text, Kind.EVT)
