"""``locker-sim board`` timing flags: a benchmark's boards answer as fast as it asks.

The boards run as a real ``locker-sim`` process on a real pty; the host end is pyserial
with the real reply decoders. Delays are only ever checked from below where the machine
being slow could make a check fail the wrong way, except for the one flag whose whole
point is "faster than the default", which is checked against a wide margin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from sim_helpers import Host, wait_until

from firmware_protocol import get_protocol, xor8a80
from simulators.cli import board_timing, build_parser
from simulators.timing import Timing

REPOSITORY = Path(__file__).resolve().parents[2]
REALISTIC = Timing()
#: by then a door released with the default spring would be open. The simulator is
#: another process with its own clock and no marker to wait on, and the claim is about a
#: duration, so this one pause is the check itself
DEFAULT_SPRING_PASSED_S = REALISTIC.spring_delay + 0.2

Launch = Callable[..., str]


@pytest.fixture
def serve_board() -> Iterator[Launch]:
    """``serve_board(*flags)`` → the pty path of a ``locker-sim board`` with board 1."""
    processes: list[subprocess.Popen[str]] = []

    def _serve(*flags: str) -> str:
        command = [sys.executable, "-m", "simulators.cli", "board", "--protocol", "8a80"]
        process = subprocess.Popen(
            [*command, "--boards", "1", "--locks", "8", *flags],
            cwd=REPOSITORY,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        return process.stdout.readline().strip()

    yield _serve
    for process in processes:
        process.terminate()
        process.communicate(timeout=10)


def seconds_to_answer(path: str, request: xor8a80.XorRequest) -> float:
    with serial.serial_for_url(path, baudrate=9600, timeout=0.005) as port:
        host = Host(port, get_protocol("8a80"))
        sent = host.send(request)
        replies = host.replies(request, 1, timeout=3.0)
        answered = time.monotonic()
    assert replies, f"no reply to {request!r}"
    return answered - sent


def test_unlock_reply_delay_flag_makes_the_board_answer_an_unlock_that_fast(
    serve_board: Launch,
) -> None:
    path = serve_board("--unlock-reply-delay", "0.05")

    took = seconds_to_answer(path, xor8a80.UnlockRequest(1, 3))

    assert took < REALISTIC.unlock_reply_delay / 2


def test_without_timing_flags_the_board_answers_an_unlock_after_the_realistic_delay(
    serve_board: Launch,
) -> None:
    path = serve_board()

    took = seconds_to_answer(path, xor8a80.UnlockRequest(1, 3))

    assert took >= REALISTIC.unlock_reply_delay - 0.02


def test_query_reply_delay_flag_delays_every_status_answer(serve_board: Launch) -> None:
    path = serve_board("--query-reply-delay", "0.4")

    took = seconds_to_answer(path, xor8a80.QueryLockRequest(1, 2))

    assert took >= 0.38  # the realistic default answers in 0.01 s


def test_spring_delay_flag_keeps_a_released_door_shut_that_long(serve_board: Launch) -> None:
    path = serve_board("--unlock-reply-delay", "0.05", "--spring-delay", "1.0")
    query = xor8a80.QueryLockRequest(1, 4)

    with serial.serial_for_url(path, baudrate=9600, timeout=0.005) as port:
        host = Host(port, get_protocol("8a80"))
        host.ask(xor8a80.UnlockRequest(1, 4))
        time.sleep(DEFAULT_SPRING_PASSED_S)
        shut_meanwhile = host.ask(query).feedback() == {4: True}  # signal = door closed
        opened_later = wait_until(lambda: host.ask(query).feedback() == {4: False}, 2.0)

    assert shut_meanwhile
    assert opened_later


def test_every_timing_flag_reaches_the_simulated_boards_timing() -> None:
    flags = ["--unlock-reply-delay", "0.05", "--query-reply-delay", "0.002"]
    flags += ["--pulse", "0.04", "--spring-delay", "0.02", "--baud", "19200", "--no-pacing"]

    timing = board_timing(build_parser().parse_args(["board", *flags]))

    assert timing == Timing(
        unlock_reply_delay=0.05,
        query_reply_delay=0.002,
        pulse_duration=0.04,
        spring_delay=0.02,
        baud=19200,
        pacing=False,
    )


def test_without_timing_flags_the_boards_keep_the_realistic_timing() -> None:
    assert board_timing(build_parser().parse_args(["board"])) == REALISTIC


@pytest.mark.parametrize("value", ["-0.1", "soon", "nan", "inf"])
def test_a_delay_that_is_not_seconds_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["board", "--pulse", value])

    assert exited.value.code == 2
    assert "argument --pulse" in capsys.readouterr().err
