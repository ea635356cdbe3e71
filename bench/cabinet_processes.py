"""One real cabinet for the benchmarks, in processes of its own, as it is deployed.

A cabinet's computer runs ``locker-agent run`` on a serial port wired to its lock boards;
the server is elsewhere. The command benchmark keeps that split so the agent and the
simulated boards never share the server's interpreter (its GIL, its garbage collector):

* :class:`BoardProcess` — ``locker-sim board`` on a raw pty, paced like a UART, with the
  board timing given; doors are closed through its stdin (``close B L``), and every door
  move it prints is kept.
* :class:`AgentProcess` — ``locker-agent run --config agent.toml --serial-port PTY``, the
  production entry point, logging to a file.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import tomli_w

from simulators.timing import Timing


class BoardProcess:
    """``locker-sim board`` serving 8A/80 boards on a pty."""

    def __init__(self, boards: list[int], locks: int, timing: Timing, baud: int) -> None:
        command = [sys.executable, "-m", "simulators.cli", "board", "--protocol", "8a80"]
        command += ["--boards", *map(str, boards), "--locks", str(locks), "--baud", str(baud)]
        command += ["--unlock-reply-delay", str(timing.unlock_reply_delay)]
        command += ["--query-reply-delay", str(timing.query_reply_delay)]
        command += ["--pulse", str(timing.pulse_duration)]
        command += ["--spring-delay", str(timing.spring_delay)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.port = self._first_line()
        threading.Thread(target=self._drain_moves, daemon=True).start()

    def close_door(self, board: int, lock: int) -> None:
        self._send(f"close {board} {lock}")

    def _send(self, line: str) -> None:
        stdin = self._require(self._process.stdin)
        stdin.write(line + "\n")
        stdin.flush()

    def _first_line(self) -> str:
        line = self._require(self._process.stdout).readline().strip()
        if not line:
            raise RuntimeError("locker-sim board ended before printing its port")
        return line

    def _drain_moves(self) -> None:
        """Read the door moves it prints (the bench watches the agent's reports instead),
        so that its stdout pipe never fills and blocks the simulator."""
        for _line in self._require(self._process.stdout):
            pass

    @staticmethod
    def _require(stream: IO[str] | None) -> IO[str]:
        if stream is None:
            raise RuntimeError("the board process has no pipe")
        return stream

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # end of stdin is not a stop: terminate
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class AgentProcess:
    """``locker-agent run`` with ``document`` written as its agent.toml."""

    def __init__(self, document: dict[str, object], directory: Path, serial_port: str) -> None:
        config = directory / "agent.toml"
        config.write_bytes(tomli_w.dumps(document).encode())
        self.log_path = directory / "agent.log"
        self._log = self.log_path.open("w")
        command = [sys.executable, "-m", "locker_agent.cli", "run", "--config", str(config)]
        command += ["--serial-port", serial_port]
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def check_running(self) -> None:
        if self._process.poll() is not None:
            raise RuntimeError(
                f"locker-agent run ended ({self._process.returncode}); see {self.log_path}"
            )

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
