"""``locker-agent door open|status`` as an installer runs it, against a simulated board."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker_agent.cli import main
from simulators.bus import BoardConfig as SimBoardConfig
from simulators.bus import SimulatedBus, Timing

REPOSITORY = Path(__file__).resolve().parents[2]
#: locks per simulated board: what each protocol's board reports in one status reply
BOARD_LOCKS = {"8a80": 24, "kerong": 16}


@pytest.fixture
def bus(protocol: str) -> Iterator[SimulatedBus]:
    with SimulatedBus(protocol, [SimBoardConfig(1, BOARD_LOCKS[protocol])], Timing.fast()) as bus:
        bus.start_pty()
        yield bus


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locker_agent.cli", *args],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _bus_args(bus: SimulatedBus, protocol: str) -> list[str]:
    assert bus.address is not None
    return ["--port", bus.address, "--board", "1", "--protocol", protocol]


def test_door_open_exits_0_when_the_sensor_sees_the_door_open(
    bus: SimulatedBus, protocol: str
) -> None:
    done = run_cli("door", "open", *_bus_args(bus, protocol), "--lock", "5")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "board 1 lock 5: opened — confirmed by the door sensor" in lines[0]
    assert bus.board(1).door(5).is_open
    assert bus.board(1).door(5).unlock_pulses == 1


def test_door_open_exits_3_when_the_door_is_jammed(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).door(2).faults.jammed = True

    done = run_cli(
        "door", "open", *_bus_args(bus, protocol), "--lock", "2", "--confirm-window", "0.4"
    )

    assert done.returncode == 3, done.stderr
    assert "not seen open" in done.stdout
    assert bus.board(1).door(2).unlock_pulses == 1


def test_door_open_exits_4_when_the_board_is_silent(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).faults.silent = True

    done = run_cli(
        "door", "open", *_bus_args(bus, protocol), "--lock", "2", "--confirm-window", "0.3"
    )

    assert done.returncode == 4, done.stderr
    assert "no valid answer" in done.stdout
    assert bus.board(1).door(2).unlock_pulses == 1  # one pulse, never a resend


def test_door_open_with_the_wrong_polarity_warns_that_the_sensor_already_said_open(
    bus: SimulatedBus, protocol: str
) -> None:
    bus.board(1).door(5).faults.jammed = True  # stays shut: the wrong reading stays "open"

    done = run_cli(
        "door", "open", *_bus_args(bus, protocol), "--lock", "5", "--polarity", "inverted"
    )

    assert done.returncode == 0, done.stderr
    assert "the sensor already said open before the unlock" in done.stdout
    assert bus.board(1).door(5).unlock_pulses == 1


def test_door_status_json_has_the_exact_shape(bus: SimulatedBus, protocol: str) -> None:
    bus.board(1).door(3).force_open()

    done = run_cli("door", "status", *_bus_args(bus, protocol), "--json")

    assert done.returncode == 0, done.stderr
    doors = {str(door.lock): "open" if door.is_open else "closed" for door in bus.board(1).doors}
    assert done.stdout.strip() == json.dumps({"board": 1, "doors": doors})
    assert json.loads(done.stdout)["doors"]["3"] == "open"


def test_door_status_with_inverted_polarity_flips_the_reading(
    bus: SimulatedBus, protocol: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bus.board(1).faults.inverted_polarity = True
    bus.board(1).door(4).force_open()
    assert bus.address is not None

    code = main(["door", "status", *_bus_args(bus, protocol), "--json", "--polarity", "inverted"])

    doors = json.loads(capsys.readouterr().out)["doors"]
    assert code == 0
    assert doors["4"] == "open"
    assert doors["1"] == "closed"


def test_door_status_exits_4_when_the_board_does_not_answer(
    bus: SimulatedBus, protocol: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bus.board(1).faults.offline = True

    code = main(["door", "status", *_bus_args(bus, protocol), "--json"])

    assert code == 4
    assert "no valid answer" in capsys.readouterr().out


def test_unopenable_port_exits_4_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["door", "status", "--port", str(tmp_path / "no-such-tty"), "--board", "1"])

    assert code == 4
    assert "cannot open serial port" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["door", "open", "--board", "1", "--lock", "1"],  # no --port
        ["door", "open", "--port", "/dev/null", "--board", "1", "--lock", "0"],
        ["door", "open", "--port", "/dev/null", "--board", "1", "--lock", "33"],
        ["door", "open", "--port", "/dev/null", "--board", "32", "--lock", "1"],
        [
            "door",
            "open",
            "--port",
            "/dev/null",
            "--board",
            "1",
            "--lock",
            "17",
            "--protocol",
            "kerong",
        ],
        ["door", "open", "--port", "/dev/null", "--board", "1", "--lock", "1", "--protocol", "x"],
        [
            "door",
            "open",
            "--port",
            "/dev/null",
            "--board",
            "1",
            "--lock",
            "1",
            "--confirm-window",
            "0",
        ],
        ["door", "status", "--port", "/dev/null", "--board", "one"],
        ["door"],
    ],
)
def test_usage_errors_exit_2_before_anything_is_sent(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2


def test_usage_error_from_the_console_script_process_exits_2() -> None:
    done = run_cli("door", "open", "--port", "/dev/null", "--board", "1", "--lock", "0")

    assert done.returncode == 2
    assert "--lock must be 1..32" in done.stderr
