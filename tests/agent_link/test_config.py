"""agent.toml: typed settings that fail closed with messages naming the key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import tomli_w

from locker_agent.cabinet import protocol_named
from locker_agent.config import load_settings
from locker_agent.errors import ConfigError
from locker_agent.layout import DoorAddress
from locker_agent.runtime import mqtt_settings

SECRET_PASSWORD = "s3cret-broker-password"


def document(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "cabinet_id": "LOBBY-01",
        "broker": {
            "host": "broker.example",
            "port": 8883,
            "tls": True,
            "ca_file": "ca.crt",
            "username": "LOBBY-01",
            "password": SECRET_PASSWORD,
        },
        "security": {
            "command_public_keys": [base64.b64encode(bytes(range(32))).decode()],
            "pickup_key": "ab" * 32,
        },
        "serial": {"port": "/dev/ttyUSB0", "protocol": "8a80"},
        "doors": [
            {"number": 1, "board": 1, "lock": 1},
            {"number": 2, "board": 1, "lock": 2},
            {"number": 3, "board": 2, "lock": 5},
        ],
        "journal": {"path": "journal.sqlite3", "max_telemetry_events": 50},
    }
    doc.update(changes)
    return doc


def write(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "agent.toml"
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


def test_provisioned_file_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, document()))

    assert settings.cabinet_id == "LOBBY-01"
    assert settings.broker.ca_file == tmp_path / "ca.crt"
    assert settings.journal.path == tmp_path / "journal.sqlite3"
    assert settings.broker.keepalive == 10
    layout = settings.layout(protocol_named("8a80"))
    assert layout.address_of(3) == DoorAddress(2, 5)
    assert SECRET_PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"cabinet_id": "LOBBY/#"}, "cabinet_id"),
        ({"cabinet_id": "LOBBY+01"}, "cabinet_id"),
        ({"doors": []}, "doors"),
        ({"security": {"command_public_keys": ["AAAA"], "pickup_key": "ab" * 32}}, "32-byte"),
        ({"security": {"command_public_keys": [], "pickup_key": "ab" * 32}}, "command_public_keys"),
    ],
)
def test_bad_file_is_refused_naming_the_problem(
    tmp_path: Path, changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match="invalid agent configuration") as refused:
        load_settings(write(tmp_path, document(**changes)))
    assert named in str(refused.value)


@pytest.mark.parametrize("section", ["broker", "security"])
def test_missing_or_placeholder_secret_is_refused_without_echoing_it(
    tmp_path: Path, section: str
) -> None:
    doc = document()
    table = dict(doc[section])  # type: ignore[call-overload]
    key = "password" if section == "broker" else "pickup_key"
    for value in (None, "CHANGE-ME"):
        if value is None:
            table.pop(key)
        else:
            table[key] = value
        doc[section] = table
        with pytest.raises(ConfigError) as refused:
            load_settings(write(tmp_path, doc))
        assert f"{section}.{key}" in str(refused.value)
        assert SECRET_PASSWORD not in str(refused.value)


def test_username_other_than_the_cabinet_id_is_refused(tmp_path: Path) -> None:
    doc = document()
    doc["broker"] = {**doc["broker"], "username": "OTHER"}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="username must equal cabinet_id"):
        load_settings(write(tmp_path, doc))


def broker_with(**changes: object) -> dict[str, object]:
    broker = document()["broker"]
    assert isinstance(broker, dict)
    return {**broker, **changes}


def test_the_agent_speaks_mqtt_5_unless_the_file_says_3_1_1(tmp_path: Path) -> None:
    default = load_settings(write(tmp_path, document()))
    older = load_settings(write(tmp_path, document(broker=broker_with(protocol="3.1.1"))))
    newest = load_settings(write(tmp_path, document(broker=broker_with(protocol="5"))))

    assert default.broker.protocol == "5"
    assert mqtt_settings(default).mqtt_v5 is True
    assert mqtt_settings(newest).mqtt_v5 is True
    assert mqtt_settings(older).mqtt_v5 is False


@pytest.mark.parametrize("protocol", ["3.1", "4", 5, "v5"])
def test_an_mqtt_version_the_agent_does_not_speak_is_refused_naming_the_key(
    tmp_path: Path, protocol: object
) -> None:
    with pytest.raises(ConfigError, match=r"broker\.protocol"):
        load_settings(write(tmp_path, document(broker=broker_with(protocol=protocol))))


def test_unreadable_and_non_toml_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("cabinet_id = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def with_item_sensor(protocol: str, value: object = True) -> dict[str, object]:
    """The document on ``protocol`` boards, door 2 declared with an item sensor."""
    doc = document(serial={"port": "/dev/ttyUSB0", "protocol": protocol})
    doors = doc["doors"]
    assert isinstance(doors, list)
    doors[1] = {**doors[1], "item_sensor": value}
    return doc


def test_item_sensors_are_off_unless_a_door_says_so(tmp_path: Path) -> None:
    plain = load_settings(write(tmp_path, document()))
    kerong = load_settings(write(tmp_path, with_item_sensor("kerong")))

    assert [door.item_sensor for door in plain.doors] == [False, False, False]
    assert plain.layout(protocol_named("8a80")).item_sensors == frozenset()
    assert [door.item_sensor for door in kerong.doors] == [False, True, False]
    assert kerong.layout(protocol_named("kerong")).item_sensors == frozenset({2})


def test_an_item_sensor_on_a_board_that_reports_none_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="invalid agent configuration") as refused:
        load_settings(write(tmp_path, with_item_sensor("8a80")))
    message = str(refused.value)
    assert "doors: item_sensor = true on door 2" in message
    assert "'8a80' boards report no item sensor" in message


def test_an_item_sensor_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"doors\.1\.item_sensor"):
        load_settings(write(tmp_path, with_item_sensor("kerong", "yes")))
