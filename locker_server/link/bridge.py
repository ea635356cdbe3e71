"""The server's MQTT adapter: one paho client that owns the broker connection.

It subscribes through shared subscriptions (``$share/<group>/lockers/v1/+/<kind>``) so
several server processes split the cabinets' messages, subscribes again on every
(re)connect, and keeps a persistent session (fixed client id, ``clean_start`` False,
a session expiry) so messages published while the server is down wait at the broker.

paho's network thread only puts messages on a bounded queue; one worker thread hands
them to the ingest handler and sends the MQTT PUBACK (manual acks) only once the handler
has returned, i.e. once the database transaction committed. A message that was never
PUBACKed is delivered again by the broker after a reconnect, so a crash between
"received" and "committed" loses nothing. The evt/ack the *cabinet* waits for is a
separate, application-level message published by the ingest code after its commit.

Errors of this package::

    LinkError
    ├── BridgeConfigError     a broker URL / setting the bridge cannot use
    └── NotYet                a message that cannot be applied yet (retried, then left
                              to the sender's re-publish)
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from locker_contract import topics
from locker_server.config import Settings

logger = logging.getLogger(__name__)

#: What the bridge takes in from cabinets (everything else is published by the server).
INBOUND_KINDS = (
    topics.Kind.PRESENCE,
    topics.Kind.STATE,
    topics.Kind.EVT,
    topics.Kind.CMD_RES,
    topics.Kind.REQ,
)


class LinkError(Exception):
    """Base of the cabinet link's own errors."""


class BridgeConfigError(LinkError):
    """The broker settings cannot be used (bad URL, missing CA file)."""


class NotYet(LinkError):
    """The handler cannot apply this message yet (it depends on one not stored yet)."""


class LinkPublisher(Protocol):
    """Publish one message to the broker; safe to call from any thread."""

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    retained: bool
    qos: int
    mid: int
    #: Which connection delivered it: a PUBACK is only sent on that same connection.
    connection: int = 0


MessageHandler = Callable[[InboundMessage, LinkPublisher], None]


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    host: str
    port: int
    client_id: str
    tls: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    #: ``None``: plain subscriptions (a broker without ``$share``, e.g. the embedded one).
    share_group: str | None = "locker-server"
    mqtt_v5: bool = True
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    #: Unacknowledged messages the broker may push to us; ≤ queue_size, so the queue never
    #: overflows. Larger than the broker's own per-client queue would be pointless: what
    #: does not fit in both is dropped by the broker (e.g. a flood of retained messages
    #: on subscribing), so keep Mosquitto's max_queued_messages generous too.
    receive_maximum: int = 1000
    queue_size: int = 1000
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    handler_attempts: int = 3
    retry_delay_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeConfig:
        """The configured broker (``LOCKER_MQTT_URL``) or, without one, the embedded broker."""
        if settings.mqtt_url is None:
            return cls.for_embedded_broker(settings)
        url = urlsplit(settings.mqtt_url)
        if not url.hostname:
            raise BridgeConfigError("LOCKER_MQTT_URL has no host")
        tls = url.scheme == "mqtts"
        password = settings.mqtt_password
        if settings.mqtt_share_group == Settings.model_fields["mqtt_share_group"].default:
            # Mosquitto does not check who subscribes to a group: a cabinet naming this
            # public one takes turns at the server's messages (broker-config writes a secret).
            logger.warning("LOCKER_MQTT_SHARE_GROUP is the public default; set the secret one")
        return cls(
            host=url.hostname,
            port=url.port or (8883 if tls else 1883),
            client_id=settings.mqtt_client_id,
            tls=tls,
            ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            username=settings.mqtt_username,
            password=password.get_secret_value() if password is not None else None,
            share_group=settings.mqtt_share_group,
            session_expiry_s=settings.mqtt_session_expiry_seconds,
        )

    @classmethod
    def for_embedded_broker(cls, settings: Settings) -> BridgeConfig:
        # amqtt speaks MQTT 3.1.1 only: no $share, no session expiry (one server process).
        return cls(
            host="127.0.0.1",
            port=settings.embedded_broker_port,
            client_id=settings.mqtt_client_id,
            share_group=None,
            mqtt_v5=False,
        )

    def subscriptions(self) -> list[str]:
        if self.share_group is None:
            return [topics.all_cabinets(kind) for kind in INBOUND_KINDS]
        return [topics.shared(self.share_group, kind) for kind in INBOUND_KINDS]


class MqttBridge:
    """Connects, subscribes, queues inbound messages for one worker, publishes for anyone."""

    def __init__(self, config: BridgeConfig, handler: MessageHandler) -> None:
        if config.receive_maximum > config.queue_size:
            raise BridgeConfigError("receive_maximum must not exceed queue_size")
        self.config = config
        self._handler = handler
        self._queue: queue.Queue[InboundMessage] = queue.Queue(maxsize=config.queue_size)
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._connection = 0
        self._pending_subscribe: int | None = None
        self._client = self._make_client()
        self._worker = threading.Thread(target=self._work, name="mqtt-bridge-worker", daemon=True)

    @property
    def publisher(self) -> LinkPublisher:
        return self

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho retries with backoff) and start the worker."""
        logger.info(
            "MQTT bridge connecting to %s:%s as %s (tls=%s, shared=%s)",
            self.config.host,
            self.config.port,
            self.config.client_id,
            self.config.tls,
            self.config.share_group,
        )
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            **self._connect_options(),
        )
        self._worker.start()
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect (the persistent session stays at the broker) and end both threads."""
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._worker.is_alive():
            self._worker.join(timeout)

    def wait_until_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connections(self) -> int:
        """How many times the bridge has connected (1 + reconnects)."""
        return self._connection

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # --- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue ``payload`` at paho (sent now, or after the reconnect if the link is down)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            logger.warning("publish to %s not queued: %s", topic, mqtt.error_string(info.rc))

    # --- paho client -------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=None if config.mqtt_v5 else False,
            protocol=mqtt.MQTTv5 if config.mqtt_v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        if config.tls:
            try:
                client.tls_set(ca_certs=config.ca_file, cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise BridgeConfigError(f"cannot use the broker CA file: {exc}") from exc
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect_options(self) -> dict[str, Any]:
        if not self.config.mqtt_v5:
            return {}
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        return {"clean_start": False, "properties": properties}

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("MQTT broker refused the bridge: %s", reason_code)
            return
        self._connection += 1
        logger.info("MQTT bridge connected (session present: %s)", flags.session_present)
        self._subscribe(client)

    def _subscribe(self, client: mqtt.Client) -> None:
        filters = self.config.subscriptions()
        if self.config.mqtt_v5:
            options = SubscribeOptions(qos=topics.QOS)
            result, mid = client.subscribe([(name, options) for name in filters])
        else:
            result, mid = client.subscribe([(name, topics.QOS) for name in filters])
        if result != mqtt.MQTT_ERR_SUCCESS:
            logger.warning("subscribe not sent: %s", mqtt.error_string(result))
        self._pending_subscribe = mid

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused bridge subscriptions: %s", refused)
        elif mid == self._pending_subscribe:
            self._subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            logger.warning("MQTT bridge disconnected (%s); paho reconnects", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message = InboundMessage(
            topic=msg.topic,
            payload=bytes(msg.payload),
            retained=bool(msg.retain),
            qos=msg.qos,
            mid=msg.mid,
            connection=self._connection,
        )
        # Never drop: Mosquitto redelivers an unacknowledged message only after a reconnect,
        # so a dropped presence would stay missing. A full queue holds paho's network thread
        # instead (back-pressure: the broker keeps the rest); PUBACKs queued by the worker
        # go out once it resumes, so the worker never waits on this thread.
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                logger.warning("bridge queue full; holding the network thread for the worker")

    # --- worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if self._handle(message) or not self._stop.is_set():
                self._puback(message)

    def _handle(self, message: InboundMessage) -> bool:
        """Run the handler, retrying a failure a few times.

        False when it never succeeded: the message is then PUBACKed all the same (unless
        we are stopping) so one poisoned message cannot hold a broker in-flight slot
        forever; no evt/ack was sent, so the cabinet still holds the events in its
        journal and publishes them again.
        """
        waiting: NotYet | None = None
        for attempt in range(1, self.config.handler_attempts + 1):
            try:
                self._handler(message, self)
                return True
            except NotYet as exc:  # expected now and then: no traceback
                waiting = exc
                logger.info("%s on %s: waiting (attempt %s)", exc, message.topic, attempt)
            except Exception:
                logger.exception("handling %s failed (attempt %s)", message.topic, attempt)
            if self._stop.wait(self.config.retry_delay_s * attempt):
                return False
        if waiting is not None:
            logger.warning("left %s for the cabinet to publish again: %s", message.topic, waiting)
        else:
            logger.error("gave up on a message on %s; the cabinet re-publishes it", message.topic)
        return False

    def _puback(self, message: InboundMessage) -> None:
        if message.qos > 0 and message.connection == self._connection:
            self._client.ack(message.mid, message.qos)
