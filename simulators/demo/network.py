"""A cabinet's network cable: a TCP forwarder to the broker that can be pulled out.

The cabinet's agent connects to :attr:`NetworkCable.port`; every byte goes on to the
broker unchanged. :meth:`unplug` cuts the open connections without a word (no MQTT
DISCONNECT: the broker publishes the cabinet's will, as after a real outage) and refuses
new ones until :meth:`plug_in`; the agent's own reconnect loop brings the link back.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from typing import Final

logger = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"
_CHUNK: Final = 65536
_POLL: Final = 0.2


class NetworkCable:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`start`, :meth:`unplug`, :meth:`stop`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(_POLL)
        self._plugged = threading.Event()
        self._plugged.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="cable", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def start(self) -> NetworkCable:
        self._thread.start()
        return self

    def unplug(self) -> None:
        """Cut every connection now; refuse new ones until :meth:`plug_in`."""
        self._plugged.clear()
        self._close_all()

    def plug_in(self) -> None:
        self._plugged.set()

    def stop(self) -> None:
        self._stopping.set()
        self._close_all()
        self._thread.join(timeout=2)
        self._listener.close()

    def _close_all(self) -> None:
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            if not self._plugged.is_set():
                client.close()  # no cable: the connection attempt fails
                continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError as exc:
            logger.warning("cable: the broker at %s:%s does not answer: %s", *self._target, exc)
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        name = f"cable-{client.fileno()}"
        threading.Thread(target=self._pump, args=(client, upstream), name=name, daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy both ways until either side (or :meth:`unplug`) ends the connection."""
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for end in peer:
                end.setblocking(True)
                selector.register(end, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not self._forward_ready(selector, peer):
                    break
        with self._lock:
            self._open.difference_update(peer)
        for end in peer:
            end.close()

    @staticmethod
    def _forward_ready(
        selector: selectors.BaseSelector, peer: dict[socket.socket, socket.socket]
    ) -> bool:
        try:
            for key, _ in selector.select(_POLL):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(_CHUNK)
                if not data:
                    return False
                peer[source].sendall(data)
        except (OSError, ValueError):  # cut by unplug(), or the other end went away
            return False
        return True
