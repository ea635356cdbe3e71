"""``AgentRuntime``: one cabinet's door layer, journal, pickup desk and MQTT link, wired.

What lives where: the door layer (:mod:`locker_agent.cabinet`), the durable record
(:mod:`locker_agent.journal`), pickups at the cabinet (:mod:`locker_agent.pickup`) and
the MQTT link with what only it needs (:mod:`locker_agent.link`) know nothing of each
other; this module builds them from ``agent.toml``, starts and stops them, and routes
between them.

Threads and who does what::

    door poller ──door events──▶ journal (event + door snapshot + the pickup a close
                                 completes, one transaction) ──────────────────────┐
    kiosk ──pickup desk──▶ allow-list + pending pickup (one transaction) ─▶ door ──┤ wake
      (locker_agent.kiosk: its own threads, started when agent.toml has [kiosk])   │
    mqtt network thread ──Connected / Received / Delivered──▶ inbox ───────────────┤
    door-command executor ──ResultReady──▶ inbox ───────────────────────────────────┤
    kiosk ──courier desk──▶ request (req) ──▶ inbox; its signed res ◀── worker ─────┤
                                                                                    ▼
    worker thread: dispatch inbox items; reconcile the door snapshot; publish from the
    journal (state, evt batches, cmd/res) — the only thread that publishes.

Everything the cabinet must not forget is in the journal before it is published.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any, Final

from locker_agent import door_record
from locker_agent.boards import DoorState
from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.config import AgentSettings
from locker_agent.doors import BoardAlarm, ControllerSettings, DoorEvent, DoorEventKind
from locker_agent.errors import ConfigError, CourierDeskUnreachable
from locker_agent.journal import DoorRecord, Journal, to_contract_event
from locker_agent.kiosk.courier import RecordDeposit
from locker_agent.kiosk.courier_desk import CourierHooks
from locker_agent.kiosk.service import KioskService, kiosk_rules, scan_sources
from locker_agent.kiosk.web import KioskWebServer
from locker_agent.link.commands import CommandRunner, ResultReady
from locker_agent.link.courier_desk import CourierDesk
from locker_agent.link.errors import LinkError, ServerUnreachable
from locker_agent.link.guard import CommandGuard, GuardPolicy
from locker_agent.link.guard_store import JournalGuardStore
from locker_agent.link.inbound import InboundGate
from locker_agent.link.mqtt import (
    Connected,
    Disconnected,
    LinkEvent,
    MqttAdapter,
    MqttSettings,
    Outgoing,
    Received,
)
from locker_agent.link.outbox import Outbox
from locker_agent.link.presence import PresenceCounter
from locker_agent.link.requests import RequestClient
from locker_agent.pickup import (
    AllowList,
    JournalAllowListStore,
    PickupDesk,
    PickupOutcome,
    presented,
)
from locker_agent.serial_link import LinkSettings
from locker_contract import (
    AllowListSync,
    ConfigSync,
    ReservationSync,
    TimeSync,
    topics,
    trusted_keys,
    utc_now,
)
from locker_contract.desk import Answer, DoorReserved, Operation, SignedIn

logger = logging.getLogger(__name__)

#: how often the worker looks at the journal when nothing else woke it
TICK: Final = 0.2
FIRST_POLL_TIMEOUT: Final = 5.0

_DOOR_TYPES: Final = {
    DoorEventKind.OPENED: "door.opened",
    DoorEventKind.CLOSED: "door.closed",
    DoorEventKind.FORCED_OPEN: "door.forced_open",
    DoorEventKind.LEFT_OPEN: "door.left_open",
    DoorEventKind.JAMMED: "door.jammed",
    DoorEventKind.OPEN_CONFIRMED: "door.open_confirmed",
    DoorEventKind.OPEN_OUTCOME_UNKNOWN: "door.open_outcome_unknown",
}
_DOOR_ALARMS: Final = {
    DoorEventKind.OPEN_REFUSED: "door_open_rate_limited",
    DoorEventKind.UNKNOWN: "door_unobserved",
}
_SNAPSHOT_STATES: Final = {
    DoorEventKind.OPENED: "open",
    DoorEventKind.CLOSED: "closed",
    DoorEventKind.UNKNOWN: "unknown",
}


class _Wake:
    """Inbox item: the journal changed, publish."""


@dataclass(frozen=True, slots=True)
class _SendRequest:
    """Inbox item: publish a courier-desk request (the worker is the only publisher)."""

    request_id: str
    message: Outgoing


_InboxItem = LinkEvent | ResultReady | _Wake | _SendRequest


def mqtt_settings(settings: AgentSettings) -> MqttSettings:
    broker = settings.broker
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        client_id=settings.cabinet_id,
        username=broker.username,
        password=broker.password.get_secret_value(),
        tls=broker.tls,
        ca_file=broker.ca_file,
        keepalive=broker.keepalive,
        mqtt_v5=broker.protocol == "5",
    )


class _DeskOverTheLink:
    """The kiosk's courier desk (``ask``) on the link's request client: the link's
    "unreachable" in the kiosk's terms, and the signed-in courier's carrier remembered for
    the reservations the cabinet holds (asked only when the server is out of reach)."""

    def __init__(self, desk: CourierDesk) -> None:
        self._desk = desk
        self._carrier_id: int | None = None

    def ask(self, operation: Operation) -> Answer:
        try:
            answer: Answer = self._desk.requests.ask(operation)
        except ServerUnreachable as exc:
            raise CourierDeskUnreachable(str(exc)) from exc
        if isinstance(answer, SignedIn):
            self._carrier_id = answer.carrier_id
        return answer

    def offline_reservation(self, tracking_number: str) -> DoorReserved | None:
        if self._carrier_id is None:
            return None
        return self._desk.held_reservation(self._carrier_id, tracking_number)

    def record_deposit(self, deposit: RecordDeposit) -> None:
        outcome = self._desk.deposit_confirmed(
            parcel_id=deposit.parcel_id, door=deposit.door, courier_id=deposit.courier_id
        )
        logger.info("deposit of parcel %d at door %d: %s", deposit.parcel_id, deposit.door, outcome)


class AgentRuntime:
    """Runs one cabinet: door events → journal → broker, broker → commands → doors."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        serial_port: str | None = None,
        link_settings: LinkSettings | None = None,
        controller_settings: ControllerSettings | None = None,
        mqtt: MqttSettings | None = None,
        ack_timeout: float = 15.0,
        max_remote_opens_per_minute: int | None = None,
        request_timeout: float = 8.0,
        courier: CourierHooks | None = None,
    ) -> None:
        """Link, controller and remote-open limit not given come from ``settings``;
        ``request_timeout``: how long a courier-desk request waits for its answer.

        ``courier``: the courier desk and the deposit journaling for the kiosk's courier
        session; None: the kiosk uses this runtime's own courier desk over the link.
        """
        self.settings = settings
        self._courier = courier
        self.cabinet_id = settings.cabinet_id
        self.cabinet = _build_cabinet(settings, serial_port, link_settings, controller_settings)
        self.journal = Journal.open(
            settings.journal.path, max_telemetry_events=settings.journal.max_telemetry_events
        )
        self._inbox: queue.SimpleQueue[_InboxItem] = queue.SimpleQueue()
        self.link = MqttAdapter(
            mqtt or mqtt_settings(settings),
            subscriptions=[
                topics.cmd(self.cabinet_id),
                topics.evt_ack(self.cabinet_id),
                topics.sync(self.cabinet_id),
                topics.res(self.cabinet_id),
            ],
            prepare_connect=PresenceCounter(self.cabinet_id, self.journal),
            post=self._inbox.put,
        )
        self.guard = CommandGuard(
            self._guard_policy(max_remote_opens_per_minute), JournalGuardStore(self.journal)
        )
        self.allow_list = AllowList(
            settings.security.pickup_key_bytes, JournalAllowListStore(self.journal)
        )
        self.pickup_desk = PickupDesk(
            self.allow_list,
            self.journal,
            self.cabinet.doors,
            server_now=self._server_now,
            link_up=lambda: self.link.connected,
            journaled=self._wake,
        )
        self.outbox = Outbox(
            self.cabinet_id, self.journal, self.link.publish, ack_timeout=ack_timeout
        )
        self.commands = CommandRunner(
            self.cabinet_id,
            self.guard,
            self.journal,
            self.cabinet.doors,
            self._inbox.put,
            ack_timeout=ack_timeout,
        )
        self.courier_desk = self._courier_desk(request_timeout)
        self._stop = threading.Event()
        #: the link connection the outbox was restarted for (publishing waits for it)
        self._ready_connection: int | None = None
        self._worker: threading.Thread | None = None
        self._closed = False
        self._unsubscribe = self.cabinet.doors.subscribe(self._on_door_event)
        self._unsubscribe_alarms = self.cabinet.doors.subscribe_board_alarms(self._on_board_alarm)
        self.kiosk = self._build_kiosk()
        self.kiosk_web: KioskWebServer | None = None
        if self.kiosk is not None and settings.kiosk is not None:
            self.kiosk_web = KioskWebServer(self.kiosk, settings.kiosk.host, settings.kiosk.port)

    def _build_kiosk(self) -> KioskService | None:
        """The pickup kiosk when ``[kiosk]`` is configured, reading ``[camera]``/``[scanner]``."""
        section = self.settings.kiosk
        if section is None:
            if self.settings.camera is not None or self.settings.scanner is not None:
                logger.warning("[camera] and [scanner] are read only by the kiosk: add [kiosk]")
            return None
        return KioskService(
            self.pickup_desk,
            self.cabinet.doors,
            self.journal,
            rules=kiosk_rules(section),
            courier=self._courier or self._courier_hooks(),
            link_up=lambda: self.link.connected,
            journaled=self._wake,
            sources=scan_sources(self.settings),
        )

    def _courier_hooks(self) -> CourierHooks:
        """The kiosk's courier session on this runtime's own desk over the link."""
        desk = _DeskOverTheLink(self.courier_desk)
        return CourierHooks(
            desk=desk,
            record_deposit=desk.record_deposit,
            offline_reservation=desk.offline_reservation,
        )

    def _courier_desk(self, timeout: float) -> CourierDesk:
        """The kiosk's courier operations; replies are checked like every server message."""
        requests = RequestClient(
            self.cabinet_id,
            trusted_keys(self.settings.security.command_public_keys),
            self.journal,
            self.commands.refusals,
            send=self._send_request,
            link_up=lambda: self.link.connected,
            server_now=self._server_now,
            timeout=timeout,
        )
        return CourierDesk(
            requests,
            self.journal,
            cabinet_key=self.settings.security.pickup_key_bytes,
            server_now=self._server_now,
            door_closed=lambda door: self.cabinet.doors.state(door) is DoorState.CLOSED,
            journaled=self._wake,
        )

    def _send_request(self, request_id: str, topic: str, payload: bytes) -> None:
        self._inbox.put(_SendRequest(request_id, Outgoing(topic, payload)))

    def _guard_policy(self, max_opens: int | None) -> GuardPolicy:
        security = self.settings.security
        if max_opens is None:
            max_opens = self.settings.control.max_remote_opens_per_minute
        return GuardPolicy(
            cabinet_id=self.cabinet_id,
            doors=frozenset(self.cabinet.layout.doors),
            trusted_keys=trusted_keys(security.command_public_keys),
            maintenance_token_hash=security.maintenance_token_hash,
            max_opens_per_window=max_opens,
            rate_window_seconds=60.0,
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> AgentRuntime:
        if self.kiosk_web is not None:
            self.kiosk_web.start()  # first: a taken kiosk port stops the agent before it runs
        self._recover_pickups()
        self.cabinet.start()
        if not self.cabinet.doors.wait_first_poll(FIRST_POLL_TIMEOUT):
            logger.warning("not every board answered the first poll; their doors are unknown")
        self._reconcile_snapshot()
        self._worker = threading.Thread(target=self._work, name="agent-worker", daemon=True)
        self._worker.start()
        self.link.start()
        if self.kiosk is not None:
            self.kiosk.start()
        return self

    def stop(self) -> None:
        """Finish a running door action, publish what we can, say offline, close all."""
        if self._closed:
            return
        self._closed = True
        if self.kiosk_web is not None:
            self.kiosk_web.stop()
        if self.kiosk is not None:
            self.kiosk.stop()  # a door it is opening is finished first
        self._unsubscribe()
        self._unsubscribe_alarms()
        self.commands.close()
        self._stop.set()
        self._wake()
        if self._worker is not None:
            self._worker.join(timeout=10)
        # refusals counted after commands.close() (the worker ran until the join) are
        # summed up too
        self.commands.refusals.flush_all()
        if self._worker is not None:
            self._publish_due()  # e.g. the result of the door action that just finished
        self.link.stop()
        self.cabinet.stop()
        self.journal.close()

    def __enter__(self) -> AgentRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT (call from the main thread)."""
        stopping = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal %d: stopping", signum)
            stopping.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            stopping.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    # -- door events (poller thread) ------------------------------------------------------

    def _on_door_event(self, event: DoorEvent) -> None:
        """Journal the event with the snapshot change, and any pickup it completes (the
        door of a pending pickup closing), in one transaction."""
        if event.kind is DoorEventKind.FOUND:  # read after a gap: compared, not a move
            with self.journal.transaction() as tx:
                door_record.record_found(tx, event)
                self.pickup_desk.pending.on_door_event(tx, event)
            self._wake()
            return
        event_type, data = self._describe(event)
        with self.journal.transaction() as tx:
            state = _SNAPSHOT_STATES.get(event.kind)
            if state is not None:
                tx.set_door(event.door, state, event.occupied)
            door_record.record_seen(tx, event)
            # checked against the contract now, so it can never block the outbox
            to_contract_event(
                tx.append(event_type, door=event.door, data=data, device_time=event.wall)
            )
            self.pickup_desk.pending.on_door_event(tx, event)
        self._wake()

    def _on_board_alarm(self, alarm: BoardAlarm) -> None:
        with self.journal.transaction() as tx:
            door_record.record_board_alarm(tx, alarm)
        self._wake()

    @staticmethod
    def _describe(event: DoorEvent) -> tuple[str, dict[str, Any]]:
        if event.kind in _DOOR_TYPES:
            return _DOOR_TYPES[event.kind], ({"detail": event.detail} if event.detail else {})
        alarm: dict[str, Any] = {"kind": _DOOR_ALARMS[event.kind]}
        if event.detail:
            alarm["detail"] = event.detail[:200]
        return "alarm", alarm

    def _reconcile_snapshot(self) -> None:
        """Doors whose observed state or item sensor differs from the snapshot (first poll,
        board back, a compartment filled or emptied behind a closed door)."""
        observed = {
            door: DoorRecord(seen.state.value, seen.occupied)
            for door, seen in self.cabinet.doors.observations().items()
        }
        recorded = self.journal.snapshot().doors
        changed = {door: seen for door, seen in observed.items() if recorded.get(door) != seen}
        if not changed:
            return
        with self.journal.transaction() as tx:
            for door, seen in changed.items():
                tx.set_door(door, seen.state, seen.occupied)

    # -- local pickup (kiosk thread) --------------------------------------------------------

    def local_pickup(
        self, *, code: str | None = None, qr_token: str | None = None, door: int | None = None
    ) -> PickupOutcome:
        """Validate a code or QR token against the allow-list, open its door, journal it
        (see :class:`~locker_agent.pickup.PickupDesk`, which a kiosk calls directly)."""
        return self.pickup_desk.pickup(presented(code=code, qr_token=qr_token), door=door)

    def _recover_pickups(self) -> None:
        """Pickups pending from before a restart whose door was never seen open get their
        entries back; those seen open wait for the first poll (found closed: done)."""
        with self.journal.transaction() as tx:
            given_back = self.pickup_desk.pending.recover(tx)
        for pending in given_back:
            logger.warning("door %d: pickup not seen open before the restart", pending.door)

    def _server_now(self) -> datetime:
        """The server's clock as the cabinet knows it: learned from commands and time syncs."""
        return self.guard.clock_offset.server_now(utc_now())

    def _wake(self) -> None:
        self._inbox.put(_Wake())

    # -- the worker -------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=TICK)
            except queue.Empty:
                item = None
            try:
                self._handle_all(item)
                self._reconcile_snapshot()
                self._publish_due()
            except Exception:
                logger.exception("agent worker step failed; continuing")

    def _publish_due(self) -> None:
        # Only once this connection's ``Connected`` is handled (the outbox restarted for
        # it): the link may be up a moment before the worker has read that, and events
        # published then would go out again right after the restart.
        if self.link.connected and self.link.connection == self._ready_connection:
            # a command's result first: someone is waiting at the server for it, while
            # the events and the snapshot behind it are only waiting for their ack
            self.commands.publish_results(self.link.publish)
            self.outbox.flush()

    def _handle_all(self, item: _InboxItem | None) -> None:
        while item is not None:
            self._handle(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, item: _InboxItem) -> None:
        if isinstance(item, _SendRequest):
            self._publish_request(item)
        elif isinstance(item, Connected):
            self.outbox.restart()
            self.commands.restart()
            self._ready_connection = item.connection
        elif isinstance(item, Disconnected):
            logger.info("link down: %s", item.reason)
        elif isinstance(item, Received):
            self._received(item)

    def _publish_request(self, item: _SendRequest) -> None:
        try:
            self.link.publish(item.message)
        except LinkError as exc:
            self.courier_desk.requests.failed(item.request_id, str(exc))

    def _received(self, message: Received) -> None:
        kind = topics.parse(message.topic).kind
        if kind is topics.Kind.CMD:
            self.commands.receive(
                message.payload, retained=message.retain, publish=self.link.publish
            )
        elif kind is topics.Kind.EVT_ACK:
            self._on_ack(message.payload)
        elif kind is topics.Kind.SYNC:
            self._on_sync(message.payload)
        elif kind is topics.Kind.RES:
            self.courier_desk.requests.receive(message.payload)

    def _on_ack(self, payload: bytes) -> None:
        ack = self._inbound.ack(payload)
        if ack is not None:
            self.outbox.acknowledged(list(ack.body.event_ids))
            self.commands.acknowledged(list(ack.body.result_ids))

    def _on_sync(self, payload: bytes) -> None:
        sync = self._inbound.sync(payload)
        if sync is None:
            return
        body = sync.body
        if isinstance(body, AllowListSync):
            self.allow_list.apply(body)
        elif isinstance(body, TimeSync):
            if self._inbound.time_sync_is_new(body, self.allow_list.version):
                self.guard.clock_offset.observe(body.server_time, utc_now())
        elif isinstance(body, ReservationSync):
            self.courier_desk.apply_reservations(body)
        elif isinstance(body, ConfigSync):
            logger.info(
                "config version %d received (%d settings)", body.version, len(body.settings)
            )

    @functools.cached_property
    def _inbound(self) -> InboundGate:
        """Checks evt/ack and sync against the keys commands are checked against, and
        records refusals with the command runner's recorder (flushed when it closes)."""
        keys = trusted_keys(self.settings.security.command_public_keys)
        return InboundGate(self.cabinet_id, keys, self.journal, self.commands.refusals)

    # -- test and operator helpers -------------------------------------------------------------

    def door_state(self, door: int) -> DoorState:
        return self.cabinet.doors.state(door)


def _build_cabinet(
    settings: AgentSettings,
    serial_port: str | None,
    link_settings: LinkSettings | None,
    controller_settings: ControllerSettings | None,
) -> Cabinet:
    port = serial_port or (settings.serial.port if settings.serial.port_given else None)
    if port is None:
        raise ConfigError("no serial port: set [serial] port in agent.toml or pass --serial-port")
    protocol = protocol_named(settings.serial.protocol)
    layout = settings.layout(protocol)
    link = link_settings or settings.serial.link_settings(protocol)
    control = controller_settings or settings.control.controller_settings()
    return Cabinet(port, protocol, layout, link, control)
