"""A private Mosquitto broker, started from the project's generated configuration.

For tests and benchmarks (it sits with the simulators because both use it, and it needs
the server's broker configuration, which only the layers above agent and server may
import).

``PrivateMosquitto`` either uses a directory written by ``locker-server broker-config`` or
generates one itself (``write_broker_files``) with the cabinets and passwords given. It
then writes ``mosquitto.test.conf`` beside ``mosquitto.conf`` with free ports patched in
(and ``user root`` when the tests run as root, so Mosquitto can read the 0600 files),
starts ``/usr/sbin/mosquitto -c``, and waits until every listener accepts connections::

    with PrivateMosquitto(cabinets={"LOBBY-01": "s3cret"}, plain=True) as broker:
        broker.tls_port, broker.plain_port, broker.ca_file, broker.server_credentials
        broker.server_port  # the server processes' TLS listener (server account only)
        broker.reload()    # SIGHUP: re-read passwd/acl, drop clients no longer allowed
        broker.restart()   # same ports, same persistence directory
    # always stopped here, even when the body raised

The broker's log is ``broker.log_path`` (``log_type all``); ``broker.log_text()`` reads it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from locker_server.broker.mosquitto import (
    CONF_FILE,
    SERVER_PASSWD_FILE,
    Listeners,
    ServerCredentials,
    mosquitto_password_hash,
    server_credentials,
    write_broker_files,
)
from simulators.errors import BrokerStartError

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "127.0.0.1"
TEST_CONF = "mosquitto.test.conf"
LOG_FILE = "mosquitto.log"
_RELOAD_MARK = "Reloading config."


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PrivateMosquitto:
    """Start, reload, restart and stop one private Mosquitto on free ports."""

    def __init__(
        self,
        config_dir: Path | None = None,
        *,
        cabinets: Mapping[str, str] | None = None,
        plain: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        """``config_dir``: a ``broker-config`` output; else one is generated in a temp dir
        with ``cabinets`` (cabinet id → plain password) and a loopback plain listener if
        ``plain``. With ``config_dir``, a plain listener exists only if its config has one.
        """
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
            config_dir = Path(self._tmp.name) / "broker"
            hashes = {cid: mosquitto_password_hash(pw) for cid, pw in (cabinets or {}).items()}
            write_broker_files(config_dir, hashes, Listeners(plain_port=1 if plain else None))
        self.directory = config_dir.resolve()
        self.host = HOST
        self.tls_port: int = 0
        self.server_port: int = 0
        self.plain_port: int | None = None
        self._cabinet_port = 0
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._write_test_conf()

    # -- what tests connect with -------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_credentials(self) -> ServerCredentials:
        return server_credentials(self.directory)

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> PrivateMosquitto:
        if self._process is not None and self._process.poll() is None:
            return self
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - a fixed path and our own config
                [MOSQUITTO, "-c", str(self.directory / TEST_CONF)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_listening()
        return self

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file), SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: a broker crash (no final persistence save)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same ports with the same persistence directory."""
        self.stop()
        self.start()

    def reload(self, timeout: float = 5.0) -> None:
        """SIGHUP, then wait until Mosquitto has reloaded (see ``wait_reloaded``)."""
        if self._process is None:
            raise BrokerStartError("reload() on a broker that is not running")
        before = self.reload_count()
        self._process.send_signal(signal.SIGHUP)
        self.wait_reloaded(before, timeout)

    def reload_count(self) -> int:
        """How many reloads the broker has logged (take it before something sends SIGHUP)."""
        return self.log_text().count(_RELOAD_MARK)

    def wait_reloaded(self, previous_count: int, timeout: float = 5.0) -> None:
        """Wait until a reload after ``previous_count`` was logged. Mosquitto drops clients
        that are no longer authorised in the same loop pass, just after the log line."""
        deadline = time.monotonic() + timeout
        while self.reload_count() <= previous_count:
            if time.monotonic() > deadline:
                raise BrokerStartError("Mosquitto did not log a reload:\n" + self._tail())
            time.sleep(0.02)
        time.sleep(0.1)

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PrivateMosquitto:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _write_test_conf(self) -> None:
        lines = []
        for line in (self.directory / CONF_FILE).read_text().splitlines():
            lines.append(self._patched(line))
        lines += ["", "# Added by PrivateMosquitto", f"log_dest file {self.log_path}"]
        lines += ["log_type all", "log_timestamp_format %H:%M:%S"]
        if os.geteuid() == 0:
            lines.append("user root")  # else Mosquitto drops to `mosquitto` and can't read 0600
        (self.directory / TEST_CONF).write_text("\n".join(lines) + "\n")

    def _patched(self, line: str) -> str:
        words = line.split()
        if words[:1] == ["password_file"] and words[-1].endswith(SERVER_PASSWD_FILE):
            # the TLS listener just opened is the server processes' one, not the cabinets'
            self.server_port, self.tls_port = self.tls_port, self._cabinet_port
            return line
        if not words or words[0] != "listener":
            return line
        port = free_port()
        if len(words) > 2:  # `listener PORT ADDRESS` is the loopback plain listener
            self.plain_port = port
        else:
            self._cabinet_port, self.tls_port = self.tls_port, port
        return " ".join(["listener", str(port), *words[2:]])

    def _ports(self) -> list[int]:
        return [p for p in (self.tls_port, self.server_port, self.plain_port) if p]

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        pending = self._ports()
        while pending:
            if self._process is None or self._process.poll() is not None:
                raise BrokerStartError("Mosquitto exited:\n" + self._tail())
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerStartError("Mosquitto did not listen in time:\n" + self._tail())
            pending = [port for port in pending if not _accepts(port)]
            time.sleep(0.02)

    def _tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-20:])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False
