"""Periodic work that runs beside the API in ``locker-server serve``.

Four jobs, each on its own daemon thread(s), each surviving its own failures:

* the notification worker (outbox → SMTP / SMS gateway / webhooks);
* the parcel sweeps every ``sweep_seconds`` (stale reservations released, reminders
  queued, overdue parcels expired);
* an audit checkpoint every ``settings.audit_checkpoint_seconds``, so entries written
  just before a quiet period are still covered by a signed checkpoint in time;
* the cabinet link: the MQTT bridge (``locker_server.link.bridge``) to
  ``LOCKER_MQTT_URL`` or, when none is set, to an embedded development broker (amqtt)
  started here on 127.0.0.1:``LOCKER_EMBEDDED_BROKER_PORT``. The link starts first: if
  it cannot (that port is taken, the broker settings are unusable) :meth:`start` raises
  ``BrokerError`` or ``LinkError`` before any other job runs, and ``serve`` stops with
  the reason. Unlike the other jobs, the bridge is safe to run in every server process: its
  shared subscriptions split the cabinets' messages between them.

* link housekeeping every ``housekeeping_seconds`` (2 s): commands without a final result
  after their timeout become ``outcome_unknown`` (never resent), and allow-list deltas go
  to online cabinets.

A deployment that scales the API to several processes runs the singleton jobs once
(one ``serve``, or ``locker-server notifications run-worker`` and ``locker-server parcel
sweep`` from cron) and starts the other API processes with ``serve --no-background``:
they still run the bridge (``link_only``), so remote opens work from every process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from locker_server.audit import AuditLog
from locker_server.auth.users import alarm_contacts
from locker_server.broker.embedded import EmbeddedBroker, free_local_port
from locker_server.broker.errors import BrokerError, BrokerPortTaken
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.link.bridge import BridgeConfig, LinkError, LinkPublisher, MqttBridge
from locker_server.link.ingest import Ingest
from locker_server.notifications import Notifier
from locker_server.notifications.worker import NotificationWorker
from locker_server.services import DomainDeps, cabinet_sync, parcels

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepCounts:
    released: int
    reminded: int
    expired: int


def run_sweeps(engine: Engine, deps: DomainDeps) -> SweepCounts:
    """One pass of the parcel sweeps, in one transaction."""
    now = deps.clock()
    with session_scope(engine) as session:
        released = parcels.release_expired_reservations(session, deps, now=now)
        reminded = parcels.send_due_reminders(session, deps, now=now)
        expired = parcels.expire_overdue(session, deps, now=now)
    return SweepCounts(released, reminded, expired)


@dataclass
class BackgroundJobs:
    engine: Engine
    settings: Settings
    keys: ServerKeys
    sweep_seconds: float = 60.0
    #: Command timeouts (outcome unknown, never resent) and allow-list deltas to cabinets.
    housekeeping_seconds: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    bridge: MqttBridge | None = None
    embedded_broker: EmbeddedBroker | None = None

    def start(self, *, link_only: bool = False) -> None:
        """Start the link, then (unless ``link_only``) the other jobs.

        Raises ``BrokerError`` or ``LinkError`` if the link cannot start; what was
        started by then is stopped again.
        """
        audit = AuditLog.for_server(self.settings, self.keys)
        notifier = Notifier(settings=self.settings, keys=self.keys)
        deps = DomainDeps(
            settings=self.settings, keys=self.keys, audit=audit, notifier=notifier,
            staff=alarm_contacts,
        )  # fmt: skip
        try:
            self._start_link(deps, housekeeping=not link_only)
        except (LinkError, BrokerError):
            self.stop()
            raise
        if link_only:
            return
        worker = NotificationWorker(self.engine, self.settings, self.keys, audit=audit)
        self._spawn("notification-worker", lambda: worker.run_forever(self._stop))
        self._spawn("parcel-sweeps", self._every(self.sweep_seconds, lambda: self._sweep(deps)))
        checkpoint_seconds = float(self.settings.audit_checkpoint_seconds)
        self._spawn("audit-checkpoints", self._every(checkpoint_seconds, lambda: self._seal(audit)))

    @property
    def link_publisher(self) -> LinkPublisher | None:
        """Where the server publishes to cabinets (commands, sync); None without a link."""
        return self.bridge.publisher if self.bridge is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.bridge is not None:
            self.bridge.stop(timeout)
        if self.embedded_broker is not None:
            self.embedded_broker.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)

    def _start_link(self, deps: DomainDeps, *, housekeeping: bool) -> None:
        if self.settings.mqtt_url is None:
            self.embedded_broker = self._start_embedded_broker()
        bridge = MqttBridge(BridgeConfig.from_settings(self.settings), Ingest(self.engine, deps))
        bridge.start()
        self.bridge = bridge
        publisher = bridge.publisher
        if not housekeeping:
            return
        self._spawn(
            "link-housekeeping",
            self._every(
                self.housekeeping_seconds,
                lambda: cabinet_sync.housekeeping(
                    self.engine, publisher, keys=deps.keys, audit=deps.audit
                ),
            ),
        )

    def _start_embedded_broker(self) -> EmbeddedBroker:
        """The development broker on its port; when that port was not chosen (the default)
        and is taken, e.g. by a local Mosquitto, on a free one, said in the log. A port
        set with ``LOCKER_EMBEDDED_BROKER_PORT`` is used or the start fails."""
        port = self.settings.embedded_broker_port
        broker = EmbeddedBroker(port)
        try:
            broker.start()
        except BrokerPortTaken:
            if "embedded_broker_port" in self.settings.model_fields_set:
                raise
            broker = EmbeddedBroker(free_local_port())
            broker.start()
            logger.warning(
                "port %s is taken (another MQTT broker?): the embedded development broker"
                " listens on 127.0.0.1:%s instead; set LOCKER_EMBEDDED_BROKER_PORT to choose",
                port,
                broker.port,
            )
            self.settings = self.settings.model_copy(update={"embedded_broker_port": broker.port})
        return broker

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _every(self, seconds: float, job: Callable[[], object]) -> Callable[[], None]:
        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    job()
                except Exception:  # one failed pass must not end the job
                    logger.exception("background job failed; it runs again in %s s", seconds)

        return loop

    def _sweep(self, deps: DomainDeps) -> None:
        counts = run_sweeps(self.engine, deps)
        if counts.released or counts.reminded or counts.expired:
            logger.info("parcel sweep: %s", counts)

    def _seal(self, audit: AuditLog) -> None:
        with session_scope(self.engine) as session:
            audit.checkpoint_now(session)
