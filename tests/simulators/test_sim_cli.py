"""``locker-sim`` run as a real process: device path first, serves, exits 0 on signals."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from sim_helpers import SILENCE, Host

from firmware_protocol import get_protocol, kerong, xor8a80

REPOSITORY = Path(__file__).resolve().parents[2]


class SimProcess:
    """A running ``locker-sim`` with its stdout lines collected by a reader thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulators.cli", *args],
            cwd=REPOSITORY,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float = 10.0) -> str:
        return self.lines.get(timeout=timeout)

    def wait_for_line(self, text: str, timeout: float = 5.0) -> str:
        while (line := self.next_line(timeout)) != text:
            pass
        return line

    def command(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def launch() -> Iterator[type[SimProcess]]:
    started: list[SimProcess] = []

    class Launched(SimProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Launched
    for sim in started:
        sim.kill()


def test_cli_prints_a_usable_pty_path_and_exits_0_on_sigterm(launch):
    sim = launch("board", "--protocol", "8a80", "--boards", "1", "2", "--locks", "8")

    path = sim.next_line()
    assert path.startswith("/dev/pts/")
    with serial.serial_for_url(path, baudrate=9600, timeout=0.005) as port:
        reply = Host(port, get_protocol("8a80")).ask(xor8a80.QueryAllRequest(2))

    assert reply.feedback() == dict.fromkeys(range(1, 25), False) | dict.fromkeys(range(1, 9), True)
    assert sim.stop(signal.SIGTERM) == 0


def test_cli_serves_kerong_over_tcp_prints_door_moves_and_exits_0_on_sigint(launch):
    sim = launch("board", "--protocol", "kerong", "--boards", "0", "--tcp", "--no-pacing")

    url = sim.next_line()
    assert url.startswith("socket://127.0.0.1:")
    with serial.serial_for_url(url, timeout=0.005) as port:
        Host(port, get_protocol("kerong")).ask(kerong.UnlockRequest(0, 3))
        assert sim.wait_for_line("door 0/3 open")

    assert sim.stop(signal.SIGINT) == 0


def test_cli_stdin_commands_move_doors_and_switch_faults(launch):
    sim = launch("board", "--protocol", "8a80", "--boards", "1", "--locks", "8", "--no-pacing")
    path = sim.next_line()

    sim.command("open 1 3")
    assert sim.wait_for_line("door 1/3 open")
    sim.command("doors")
    assert sim.wait_for_line("open doors: 1/3")
    with serial.serial_for_url(path, baudrate=9600, timeout=0.005) as port:
        host = Host(port, get_protocol("8a80"))
        assert host.ask(xor8a80.QueryLockRequest(1, 3)).feedback() == {3: False}
        sim.command("fault 1 silent on")
        assert sim.wait_for_line("board 1: silent = True")
        host.send(xor8a80.QueryLockRequest(1, 3))
        assert host.read_bytes(SILENCE) == b""

    sim.command("fault 1 no_such_fault 1")
    assert sim.next_line().startswith("error: no board fault 'no_such_fault'")
    assert sim.stop() == 0


def test_cli_refuses_a_bus_that_cannot_exist(launch):
    sim = launch("board", "--protocol", "kerong", "--boards", "0", "--locks", "24")

    assert sim.process.wait(timeout=10) == 2
    assert sim.process.stderr is not None
    assert "1..16 locks" in sim.process.stderr.read()


def test_cli_link_gives_the_pty_a_stable_name_that_is_removed_on_exit(launch, tmp_path):
    link = tmp_path / "locker-bus"
    sim = launch("board", "--protocol", "8a80", "--boards", "1", "--link", str(link))

    path = sim.next_line()
    assert os.readlink(link) == path
    with serial.serial_for_url(str(link), baudrate=9600, timeout=0.005) as port:
        assert Host(port, get_protocol("8a80")).ask(xor8a80.QueryLockRequest(1, 1))

    assert sim.stop() == 0
    assert not link.exists()
