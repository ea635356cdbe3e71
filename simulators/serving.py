"""Transports of the simulated bus: a raw pty pair or a TCP socket, plus the UART pacer.

A link owns the OS resources and one reader thread. It hands received bytes to
``on_bytes`` and calls ``on_quiet`` once the line has been silent for the quiet gap,
which is what ends a variable-length frame on real RS485. The :class:`Transmitter`
owns the write side: bursts leave in order, byte by byte at the baud rate when pacing
is on, with the fault menu's gaps between fragments.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import socket
import threading
import time
import tty
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulators.errors import TransportError

logger = logging.getLogger(__name__)

#: Longest a worker thread waits before re-checking whether it was asked to stop.
_POLL = 0.05
#: Level below DEBUG for raw bytes, so DEBUG logs stay readable.
TRACE = 5

BytesSink = Callable[[bytes], None]
QuietSink = Callable[[], None]


class Link(ABC):
    """One open transport with its reader thread."""

    def __init__(self, on_bytes: BytesSink, on_quiet: QuietSink, quiet_gap: float) -> None:
        self._on_bytes = on_bytes
        self._on_quiet = on_quiet
        self._quiet_gap = quiet_gap
        self._stopping = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=self._thread_name())
        self._reader.daemon = True

    @property
    @abstractmethod
    def address(self) -> str:
        """What a client passes to ``serial.serial_for_url``."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Put bytes on the line now; dropped when nobody can receive them."""

    @abstractmethod
    def _wait_readable(self, timeout: float) -> bool: ...

    @abstractmethod
    def _read(self) -> bytes | None:
        """Bytes read, or None when nothing could be read this time."""

    @abstractmethod
    def _release(self) -> None:
        """Close the OS resources (the reader thread has already stopped)."""

    def _thread_name(self) -> str:
        return f"locker-sim-{type(self).__name__}"

    def start(self) -> None:
        self._reader.start()

    def stop_reading(self) -> None:
        """End the reader thread; the line stays open for bytes still being written."""
        self._stopping.set()
        if self._reader.is_alive():
            self._reader.join(timeout=2.0)

    def close(self) -> None:
        """Stop reading and release the OS resources. Write nothing afterwards."""
        self.stop_reading()
        self._release()

    def _read_loop(self) -> None:
        unended = False
        while not self._stopping.is_set():
            if not self._wait_readable(self._quiet_gap if unended else _POLL):
                if unended:
                    self._on_quiet()
                    unended = False
                continue
            data = self._read()
            if data:
                logger.log(TRACE, "rx %s", data.hex(" "))
                self._on_bytes(data)
                unended = True


class PtyLink(Link):
    """A pty pair in raw mode; clients open the slave path with pyserial.

    The simulator keeps its own slave fd open for its whole life, so the pty (and
    its raw settings) survive clients opening and closing the port, and reading the
    master never fails with EIO between clients.
    """

    def __init__(self, on_bytes: BytesSink, on_quiet: QuietSink, quiet_gap: float) -> None:
        super().__init__(on_bytes, on_quiet, quiet_gap)
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:
            raise TransportError(f"cannot open a pty: {exc}") from exc
        # 0x03 (Kerong ETX) is VINTR in cooked mode: go raw before any byte flows.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)

    @property
    def address(self) -> str:
        return self._path

    def write(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except BlockingIOError:
            logger.debug("pty %s full (no client reading): dropped %d bytes", self._path, len(data))
        except OSError as exc:
            logger.debug("pty %s write failed: %s", self._path, exc)

    def _wait_readable(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], timeout)
        return bool(ready)

    def _read(self) -> bytes | None:
        try:
            return os.read(self._master, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self._stopping.wait(_POLL)  # no slave open (cannot happen while we hold one)
            return None

    def _release(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpLink(Link):
    """A TCP listener on localhost serving one client at a time.

    A new connection replaces the current one (the newest client wins), so a client
    that reconnects quickly is never locked out by its own half-closed old socket.
    """

    def __init__(
        self, on_bytes: BytesSink, on_quiet: QuietSink, quiet_gap: float, port: int = 0
    ) -> None:
        super().__init__(on_bytes, on_quiet, quiet_gap)
        self._client: socket.socket | None = None
        self._client_lock = threading.Lock()
        try:
            self._listener = socket.create_server(("127.0.0.1", port))
        except OSError as exc:
            raise TransportError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"socket://{host}:{port}"

    def write(self, data: bytes) -> None:
        with self._client_lock:
            if self._client is None:
                return
            try:
                self._client.sendall(data)
            except OSError as exc:
                logger.debug("tcp client write failed: %s", exc)

    def _wait_readable(self, timeout: float) -> bool:
        sockets = [self._listener] + ([self._client] if self._client else [])
        ready, _, _ = select.select(sockets, [], [], timeout)
        if self._listener in ready:
            self._accept()
        return self._client is not None and self._client in ready

    def _accept(self) -> None:
        client, peer = self._listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(1.0)
        logger.info("tcp client %s connected", peer)
        self._replace_client(client)

    def _read(self) -> bytes | None:
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except OSError:
            data = b""
        if not data:
            logger.info("tcp client disconnected")
            self._replace_client(None)
        return data

    def _replace_client(self, client: socket.socket | None) -> None:
        with self._client_lock:
            old, self._client = self._client, client
        if old is not None:
            old.close()

    def _release(self) -> None:
        self._replace_client(None)
        self._listener.close()


@dataclass(frozen=True, slots=True)
class Burst:
    """Bytes to send as ``chunks`` with ``gap`` seconds of silence between them."""

    chunks: Sequence[bytes]
    gap: float = 0.0


class Transmitter:
    """Writes bursts to a link in order, paced like a UART at ``byte_time`` per byte."""

    def __init__(self, link: Link, byte_time: float) -> None:
        self._link = link
        self._byte_time = byte_time
        self._queue: queue.SimpleQueue[Burst] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="locker-sim-transmitter")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def send(self, burst: Burst) -> None:
        self._queue.put(burst)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                burst = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            self._send_burst(burst)

    def _send_burst(self, burst: Burst) -> None:
        for index, chunk in enumerate(burst.chunks):
            if index and self._stopping.wait(burst.gap):
                return
            self._send_paced(chunk)

    def _send_paced(self, chunk: bytes) -> None:
        logger.log(TRACE, "tx %s", chunk.hex(" "))
        if not self._byte_time:
            self._link.write(chunk)
            return
        start = time.monotonic()
        for index in range(len(chunk)):
            # A byte is there once its last bit is: wait for its deadline, then hand it
            # over. Deadlines (not fixed sleeps) keep the average rate exact.
            remaining = start + (index + 1) * self._byte_time - time.monotonic()
            if remaining > 0 and self._stopping.wait(remaining):
                return
            self._link.write(chunk[index : index + 1])
