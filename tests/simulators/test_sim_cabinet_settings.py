"""The simulated cabinet's agent settings: item sensors declared the way agent.toml does."""

from __future__ import annotations

import pytest

from locker_agent.config import parse_settings
from locker_agent.errors import ConfigError
from simulators.cabinet import with_item_sensors
from tests.agent_link.test_config import document


def kerong_document() -> dict[str, object]:
    return document(serial={"port": "/dev/ttyUSB0", "protocol": "kerong"})


def test_every_door_gets_an_item_sensor_unless_some_are_named() -> None:
    settings = parse_settings(kerong_document())

    every = with_item_sensors(settings)
    some = with_item_sensors(settings, [3])

    assert [door.item_sensor for door in every.doors] == [True, True, True]
    assert [door.item_sensor for door in some.doors] == [False, False, True]
    assert [door.item_sensor for door in settings.doors] == [False, False, False]
    assert some.broker.password == settings.broker.password


def test_item_sensors_on_8a80_boards_are_refused_as_in_agent_toml() -> None:
    with pytest.raises(ConfigError, match="item_sensor = true on door 1"):
        with_item_sensors(parse_settings(document()))
