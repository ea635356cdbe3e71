"""agent.toml ``[control]`` and the ``[serial]`` link options: what an operator may tune.

Parsing tests use the same provisioned document the runtime tests use. The runtime tests
build the real ``AgentRuntime`` from the settings alone (no explicit tuning arguments)
and drive a simulated board on a real pty; they need no broker, since the MQTT link is
never started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from locker_agent.cabinet import protocol_named
from locker_agent.config import AgentSettings, load_settings, parse_settings
from locker_agent.doors import ControllerSettings, OpenOutcome
from locker_agent.errors import ConfigError
from locker_agent.runtime import AgentRuntime
from locker_agent.serial_link import LinkSettings
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing
from tests.agent_link.rig import Signer, agent_document, write_agent_toml

CABINET = "CONTROL-01"
#: short enough for the tests, against boards answering within milliseconds
FAST_CONTROL = {
    "poll_interval": 0.05,
    "confirm_window": 0.6,
    "unanswered_poll_interval": 0.2,
}
FAST_SERIAL = {"unlock_timeout": 0.3, "query_timeout": 0.15}


def document(
    tmp_path: Path,
    *,
    control: dict[str, Any] | None = None,
    serial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc = agent_document(CABINET, tmp_path / "journal.sqlite3", Signer(CABINET).public_key)
    if control is not None:
        doc["control"] = control
    doc["serial"].update(serial or {})
    return doc


def settings_from_file(tmp_path: Path, **sections: dict[str, Any]) -> AgentSettings:
    return load_settings(write_agent_toml(tmp_path / "agent.toml", document(tmp_path, **sections)))


# -- parsing ----------------------------------------------------------------------------


def test_without_control_keys_the_agent_keeps_the_tuning_it_always_had(tmp_path: Path) -> None:
    settings = settings_from_file(tmp_path)

    assert settings.control.controller_settings() == ControllerSettings()
    assert settings.control.max_remote_opens_per_minute == 30
    assert settings.serial.link_settings(protocol_named("8a80")) == LinkSettings(baudrate=9600)


def test_every_control_key_reaches_the_door_controller_settings(tmp_path: Path) -> None:
    settings = settings_from_file(
        tmp_path,
        control={
            "poll_interval": 0.05,
            "confirm_window": 1.5,
            "confirm_poll_interval": 0.01,
            "left_open_after": 300,  # a whole number is a fine number of seconds
            "max_opens_per_door": 2,
            "max_remote_opens_per_minute": 120,
            "unanswered_poll_interval": 2.5,
        },
    )

    assert settings.control.controller_settings() == ControllerSettings(
        poll_interval=0.05,
        confirm_window=1.5,
        confirm_poll_interval=0.01,
        left_open_after=300.0,
        max_opens_per_door=2,
        rate_window=60.0,
        unanswered_poll_interval=2.5,
    )
    assert settings.control.max_remote_opens_per_minute == 120


def test_serial_link_options_reach_the_link_and_the_baud_falls_back_to_the_protocols(
    tmp_path: Path,
) -> None:
    options = {"echo": True, "unlock_timeout": 2.0, "query_timeout": 0.4}
    serial = settings_from_file(tmp_path, serial=options).serial
    with_baud = settings_from_file(tmp_path, serial={"baud": 38400}).serial

    kerong = protocol_named("kerong")
    assert serial.link_settings(kerong) == LinkSettings(
        baudrate=kerong.default_baud, unlock_timeout=2.0, query_timeout=0.4, echo=True
    )
    assert with_baud.link_settings(kerong).baudrate == 38400


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("control", "poll_interval", 0),
        ("control", "confirm_window", -1.0),
        ("control", "confirm_poll_interval", "0.01"),  # quoted: refused, not guessed
        ("control", "left_open_after", float("inf")),
        ("control", "max_opens_per_door", 0),
        ("control", "max_opens_per_door", 1.5),
        ("control", "max_remote_opens_per_minute", 0),
        ("control", "unanswered_poll_interval", float("nan")),
        ("serial", "unlock_timeout", 0),
        ("serial", "query_timeout", -0.5),
        ("serial", "echo", "yes"),
    ],
)
def test_a_bad_value_stops_the_start_with_a_message_naming_its_key(
    tmp_path: Path, section: str, key: str, value: object
) -> None:
    sections = {section: {key: value}}

    with pytest.raises(ConfigError, match=rf"{section}\.{key}: "):
        parse_settings(document(tmp_path, **sections))


@pytest.mark.parametrize("section", ["control", "serial"])
def test_a_misspelt_key_is_refused_not_ignored(tmp_path: Path, section: str) -> None:
    sections = {section: {"poll_intervall": 0.05}}

    with pytest.raises(ConfigError, match=rf"{section}\.poll_intervall: unknown key"):
        parse_settings(document(tmp_path, **sections))


# -- the runtime takes them from agent.toml ---------------------------------------------------


ServeBus = Callable[..., SimulatedBus]
StartDoors = Callable[..., AgentRuntime]


@pytest.fixture
def serve_bus() -> Iterator[ServeBus]:
    """``serve_bus(timing=Timing.fast())`` → one 8A/80 board with 8 locks on a pty."""
    served: list[SimulatedBus] = []

    def _serve(timing: Timing | None = None) -> SimulatedBus:
        bus = SimulatedBus("8a80", [SimBoardConfig(1, 8)], timing or Timing.fast())
        served.append(bus)
        bus.start_pty()
        return bus

    yield _serve
    for bus in served:
        bus.stop()


@pytest.fixture
def start_doors(serve_bus: ServeBus) -> Iterator[StartDoors]:
    """``start_doors(settings, bus, **runtime_arguments)`` → an ``AgentRuntime`` whose
    door layer runs (its MQTT link is never started, so no broker is needed)."""
    made: list[AgentRuntime] = []

    def _start(settings: AgentSettings, bus: SimulatedBus, **arguments: Any) -> AgentRuntime:
        runtime = AgentRuntime(settings, serial_port=bus.address, **arguments)
        made.append(runtime)
        runtime.cabinet.start()
        assert runtime.cabinet.doors.wait_first_poll(3.0)
        return runtime

    yield _start
    for runtime in made:
        runtime.cabinet.stop()
        runtime.journal.close()


def test_agent_with_one_open_per_door_refuses_a_second_open_of_that_door_within_the_window(
    tmp_path: Path, serve_bus: ServeBus, start_doors: StartDoors
) -> None:
    control = FAST_CONTROL | {"max_opens_per_door": 1}
    settings = settings_from_file(tmp_path, control=control, serial=FAST_SERIAL)
    bus = serve_bus()
    doors = start_doors(settings, bus).cabinet.doors

    first = doors.open_door(1)
    bus.board(1).door(1).close()  # the recipient shuts it; the budget still counts it
    second = doors.open_door(1)
    other_door = doors.open_door(2)

    assert first.outcome is OpenOutcome.CONFIRMED
    assert second.outcome is OpenOutcome.RATE_LIMITED
    assert second.frame is None
    assert bus.board(1).door(1).unlock_pulses == 1  # nothing was sent the second time
    assert other_door.outcome is OpenOutcome.CONFIRMED


def test_unlock_timeout_from_agent_toml_decides_when_an_unlock_counts_as_unanswered(
    tmp_path: Path, serve_bus: ServeBus, start_doors: StartDoors
) -> None:
    serial = FAST_SERIAL | {"unlock_timeout": 0.2}
    settings = settings_from_file(tmp_path, control=FAST_CONTROL, serial=serial)
    bus = serve_bus(Timing.fast().with_changes(unlock_reply_delay=0.4))
    doors = start_doors(settings, bus).cabinet.doors

    result = doors.open_door(3)

    assert not result.acknowledged  # gave up at 0.2 s; the default waits 1.5 s
    assert bus.board(1).door(3).unlock_pulses == 1  # and never resent


def test_controller_settings_passed_explicitly_still_win_over_agent_toml(
    tmp_path: Path, serve_bus: ServeBus, start_doors: StartDoors
) -> None:
    control = FAST_CONTROL | {"max_opens_per_door": 1}
    settings = settings_from_file(tmp_path, control=control, serial=FAST_SERIAL)
    explicit = replace(settings.control.controller_settings(), max_opens_per_door=2)
    bus = serve_bus()
    doors = start_doors(settings, bus, controller_settings=explicit).cabinet.doors

    first = doors.open_door(4)
    bus.board(1).door(4).close()
    second = doors.open_door(4)

    assert (first.outcome, second.outcome) == (OpenOutcome.CONFIRMED, OpenOutcome.CONFIRMED)
    assert bus.board(1).door(4).unlock_pulses == 2
