"""A development MQTT broker inside the server process (amqtt), for machines without Mosquitto.

It speaks MQTT 3.1.1 only (no shared subscriptions, no session expiry), listens on
127.0.0.1 and accepts anonymous clients: good for a laptop and the quick start, never
for a deployment. It runs on its own thread with its own asyncio loop, so the rest of
the server stays synchronous.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker  # type: ignore[import-untyped]  # amqtt ships no py.typed

from locker_server.broker.errors import BrokerPortTaken, BrokerStartFailed

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0


def _broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _ensure_port_free(port: int) -> None:
    """Bind the port the way asyncio's server will (``SO_REUSEADDR``) and let it go again.

    Checked up front so a taken port is one clear error, not amqtt's logged traceback.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerPortTaken(HOST, port) from exc
            raise BrokerStartFailed(f"cannot listen on {HOST}:{port}: {exc.strerror}") from exc


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _caused_by_address_in_use(error: BaseException | None) -> bool:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class EmbeddedBroker:
    """Start with :meth:`start` (blocks until it listens), end with :meth:`stop`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker: Broker | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)

    def start(self) -> None:
        """Raises :class:`BrokerPortTaken` if the port is in use, before anything runs."""
        try:
            _ensure_port_free(self.port)
        except BrokerStartFailed:
            self._loop.close()
            raise
        logger.warning(
            "no LOCKER_MQTT_URL: starting the embedded DEVELOPMENT broker (amqtt) on %s:%s"
            " - anonymous, no TLS, MQTT 3.1.1; use Mosquitto in production",
            HOST,
            self.port,
        )
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S):
            raise BrokerStartFailed(f"embedded broker did not start on port {self.port}")
        if self._error is not None:
            if _caused_by_address_in_use(self._error):  # taken between the check and amqtt
                raise BrokerPortTaken(HOST, self.port) from self._error
            raise BrokerStartFailed(f"embedded broker failed: {self._error}") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread ends
            self._error = exc
            self._started.set()
        else:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._broker = Broker(_broker_config(self.port), loop=self._loop)
        await self._broker.start()
        self._started.set()

    async def _shutdown(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
        # amqtt never closes the connection of a client that disconnected by itself; close
        # what is left while the loop still runs, or the sockets leak (ResourceWarning).
        transports: dict[int, asyncio.BaseTransport] = getattr(self._loop, "_transports", {})
        for transport in list(transports.values()):
            transport.close()
        await asyncio.sleep(0.05)
