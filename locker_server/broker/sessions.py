"""End the persistent session a decommissioned cabinet left on the broker.

Revoking the credential and reloading the broker drops the cabinet's connection, but not
its session: Mosquitto keeps the subscriptions and the queued messages of a client that
asked for a session expiry until that expires. On the cabinets' listener the client id
is the username, so a cabinet has exactly one session, named by its code. The server
account, on the server processes' listener where it chooses its client id, connects
with that id, a clean start and a session expiry of 0: Mosquitto then discards the old
session, and the new one ends with the disconnect.

The broker is the one ``mosquitto.pid`` in the broker directory names (provisioning
already signals it there), reached on 127.0.0.1 at the server listener of the
configuration file that process was started with.
"""

from __future__ import annotations

import logging
import queue
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from locker_server.broker import mosquitto as broker_config
from locker_server.errors import ConfigurationError

logger = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"


def end_session(broker_dir: Path, pid: int, client_id: str, timeout: float = 5.0) -> str:
    """Discard the broker session of ``client_id``; returns what happened, for the CLI.

    Raises ``ConfigurationError`` when the broker cannot be reached or refuses.
    """
    port = _server_listener_port(pid)
    account = broker_config.server_credentials(broker_dir)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    ca_file = broker_dir / "ca.crt"
    client.tls_set(ca_certs=str(ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    outcome: queue.Queue[ReasonCode] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: outcome.put(reason)
    try:
        client.connect(LOCAL_HOST, port, keepalive=10, clean_start=True)
        client.loop_start()
        reason = outcome.get(timeout=timeout)
    except (OSError, queue.Empty) as exc:
        raise ConfigurationError(f"broker on {LOCAL_HOST}:{port} not reachable ({exc!r})") from exc
    finally:
        client.disconnect()
        client.loop_stop()
    if reason.is_failure:
        raise ConfigurationError(f"broker refused the server account: {reason}")
    logger.info("ended the broker session of %s", client_id)
    return f"ended the broker session of {client_id}"


def _server_listener_port(pid: int) -> int:
    """The server listener's port in the configuration broker ``pid`` was started with."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")
        conf = Path(argv[argv.index(b"-c") + 1].decode())
        port = broker_config.server_listener_port(conf.read_text())
    except (OSError, ValueError, IndexError) as exc:
        raise ConfigurationError(f"cannot read the configuration of broker pid {pid}") from exc
    if port is None:
        raise ConfigurationError(f"broker pid {pid} has no server listener (old configuration)")
    return port
