"""What the bridge does with each message from a cabinet.

* ``evt``: every event id is claimed in ``link_events`` first (INSERT … ON CONFLICT DO
  NOTHING), in the same transaction that applies the event: a duplicate — re-published,
  redelivered, or taken by a second server process at the same moment — claims nothing
  and is skipped, so each event drives the service layer exactly once. Each event has
  its own transaction (the services' lock order: rows first, audit last); telemetry ids
  are stored together. The ``evt/ack`` naming the batch's ids is published only after
  every one of them is committed. An event the domain refuses (a door that does not exist, a deposit
  for a parcel in the wrong state) is stored as refused and audited, and acked: sending
  it again could never succeed.
* ``presence`` and ``state``: see :mod:`locker_server.link.presence`.
* ``cmd/res``: handed to :func:`locker_server.link.commands.apply_result`.

A message from a cabinet code we do not know is dropped and audited
``link.unknown_cabinet``; one that is not a valid message is audited ``link.malformed``
(the error, never the payload). Database trouble is *raised*: nothing is acked, the
bridge retries, and the cabinet keeps its events until an ack arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from locker_agent.contract import topics
from locker_agent.contract.bodies import (
    AlarmData,
    CommandResultMessage,
    Event,
    EventAck,
    EventMessage,
    EventType,
    PickupRefusedData,
    PresenceMessage,
    StateMessage,
    is_droppable,
)
from locker_agent.contract.envelope import Envelope, decode, encode, new_envelope
from locker_agent.contract.errors import ContractError
from locker_server.audit import Actor
from locker_server.db import session_scope
from locker_server.errors import DomainError
from locker_server.link import commands, presence, reconcile, sync
from locker_server.link.bridge import InboundMessage, LinkPublisher
from locker_server.link.models import LinkEvent
from locker_server.models import Cabinet, Door, DoorEvent
from locker_server.services import parcels
from locker_server.services.context import Caller, DomainDeps, Target, audit
from locker_server.services.doors import record_door_event

logger = logging.getLogger(__name__)

_DOOR_EVENTS: dict[str, DoorEvent] = {
    EventType.DOOR_OPENED: DoorEvent.opened,
    EventType.DOOR_CLOSED: DoorEvent.closed,
    EventType.DOOR_FORCED_OPEN: DoorEvent.forced_open,
    EventType.DOOR_LEFT_OPEN: DoorEvent.left_open,
    EventType.DOOR_JAMMED: DoorEvent.jammed,
}
#: Door events with no door-state meaning: audited as they are, with this outcome.
_AUDITED_DOOR_EVENTS: dict[str, str] = {
    EventType.DOOR_OPEN_CONFIRMED: "success",
    EventType.DOOR_OPEN_OUTCOME_UNKNOWN: "unknown",
}
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True, slots=True)
class CabinetRef:
    """The cabinet a message came from: database id, site, and its code (= MQTT user)."""

    id: int
    site_id: int
    code: str

    @property
    def caller(self) -> Caller:
        return Caller(
            actor=Actor(type="cabinet", id=self.code), channel="cabinet", source=self.code
        )

    @property
    def target(self) -> Target:
        return Target(site_id=self.site_id, cabinet_id=self.id)


class RefusedEvent(Exception):
    """An event that is well-formed but cannot be applied (stored as refused, acked)."""


class Ingest:
    """The bridge's message handler (``MessageHandler``)."""

    def __init__(self, engine: Engine, deps: DomainDeps) -> None:
        self.engine = engine
        self.deps = deps
        self._routes: dict[
            topics.Kind, Callable[[CabinetRef, InboundMessage, LinkPublisher], None]
        ] = {
            topics.Kind.EVT: self._events,
            topics.Kind.PRESENCE: self._presence,
            topics.Kind.STATE: self._state,
            topics.Kind.CMD_RES: self._command_result,
        }

    def __call__(self, message: InboundMessage, publisher: LinkPublisher) -> None:
        try:
            cabinet_code, kind = topics.parse(message.topic)
        except ContractError as exc:
            self._audit_malformed(None, "topic", exc)
            return
        route = self._routes.get(kind)
        if route is None or not message.payload:  # not ours, or a retained message cleared
            return
        cabinet = self._find_cabinet(cabinet_code)
        if cabinet is None and message.retained:  # an old retained message, not an attempt
            logger.info("retained %s of unknown cabinet %s ignored", kind.value, cabinet_code)
            return
        if cabinet is None:
            self._audit_unknown_cabinet(cabinet_code, kind)
            return
        try:
            route(cabinet, message, publisher)
        except ContractError as exc:
            self._audit_malformed(cabinet, kind, exc)

    # --- evt ---------------------------------------------------------------------------------

    def _events(self, cabinet: CabinetRef, message: InboundMessage, out: LinkPublisher) -> None:
        envelope = _decode_from(cabinet, message.payload, EventMessage)
        events = envelope.body.events
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
            telemetry = [event for event in events if is_droppable(event.type)]
            if telemetry:  # storing the id is all there is to do: one statement for all
                _claim(session, cabinet, telemetry, received_at=self.deps.clock())
        for event in events:
            if not is_droppable(event.type):
                self._ingest_event(cabinet, event)
        ack = new_envelope(cabinet.code, EventAck(event_ids=[event.event_id for event in events]))
        out.publish(topics.evt_ack(cabinet.code), encode(ack), qos=topics.QOS)

    def _ingest_event(self, cabinet: CabinetRef, event: Event) -> None:
        """One transaction per event: the services lock their rows before writing audit
        entries, and a transaction spanning several audited events would hold the audit
        head while locking the next event's rows (a deadlock with a concurrent request)."""
        with session_scope(self.engine) as session:
            if not _claim(session, cabinet, [event], received_at=self.deps.clock()):
                logger.debug("event %s of %s already stored", event.event_id, cabinet.code)
                return
            try:
                with session.begin_nested():  # a refusal undoes this event's changes only
                    self._apply_event(session, cabinet, event)
            except (DomainError, RefusedEvent) as exc:
                self._refuse_event(session, cabinet, event, exc)

    def _apply_event(self, session: Session, cabinet: CabinetRef, event: Event) -> None:
        kind = event.type
        if kind in _DOOR_EVENTS:
            self._door_event(session, cabinet, event, _DOOR_EVENTS[kind])
        elif kind in _AUDITED_DOOR_EVENTS:
            self._audit_event(session, cabinet, event, kind, _AUDITED_DOOR_EVENTS[kind])
        elif kind == EventType.DEPOSIT:
            self._deposit(session, cabinet, event)
        elif kind == EventType.PICKUP:
            reconcile.apply_offline_pickup(
                session, self.deps, cabinet_id=cabinet.id, event=event, audit=self.deps.audit
            )
        elif kind == EventType.PICKUP_REFUSED:
            self._pickup_refused(session, cabinet, event)
        elif kind == EventType.ALARM:
            self._alarm(session, cabinet, event)
        # telemetry.*: stored in link_events (so it is acked once), nothing to drive.

    def _door_event(
        self, session: Session, cabinet: CabinetRef, event: Event, door_event: DoorEvent
    ) -> None:
        if event.door is None:
            raise RefusedEvent(f"{event.type} without a door number")
        record_door_event(
            session,
            self.deps,
            cabinet_id=cabinet.id,
            door_number=event.door,
            event=door_event,
            caller=cabinet.caller,
            device_time=event.device_time,
        )

    def _deposit(self, session: Session, cabinet: CabinetRef, event: Event) -> None:
        parcel_id = event.data.get("parcel_id")
        if not isinstance(parcel_id, int) or isinstance(parcel_id, bool):
            self._audit_event(session, cabinet, event, "parcel.deposit_unmatched", "unmatched")
            return
        parcels.record_deposit(
            session,
            self.deps,
            cabinet_id=cabinet.id,
            door_number=event.door,
            parcel_id=parcel_id,
            caller=cabinet.caller,
            device_time=event.device_time,
        )

    def _pickup_refused(self, session: Session, cabinet: CabinetRef, event: Event) -> None:
        data = PickupRefusedData.model_validate(event.data)
        self._audit_event(
            session, cabinet, event, "pickup.attempt", "refused", reason=data.reason,
            details={"offline": True, "credential": data.credential},
        )  # fmt: skip

    def _alarm(self, session: Session, cabinet: CabinetRef, event: Event) -> None:
        data = AlarmData.model_validate(event.data)
        action = "cabinet.alarm" if event.door is None else "door.alarm"
        self._audit_event(
            session, cabinet, event, action, "alarm", reason=data.kind,
            details={"detail": data.detail},
        )  # fmt: skip

    def _refuse_event(
        self, session: Session, cabinet: CabinetRef, event: Event, exc: Exception
    ) -> None:
        code = getattr(exc, "code", "refused")
        logger.warning(
            "event %s (%s) of %s refused: %s", event.event_id, event.type, cabinet.code, exc
        )
        session.execute(
            update(LinkEvent)
            .where(LinkEvent.event_id == event.event_id)  # type: ignore[arg-type]
            .values(outcome=f"refused:{code}"[:32])
        )
        self._audit_event(
            session, cabinet, event, "link.event_refused", "failure",
            reason=str(exc)[:_MAX_ERROR_TEXT], details={"event_type": event.type, "error": code},
        )  # fmt: skip

    def _audit_event(
        self,
        session: Session,
        cabinet: CabinetRef,
        event: Event,
        action: str,
        outcome: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        target = cabinet.target
        if event.door is not None:
            target = Target(
                site_id=cabinet.site_id,
                cabinet_id=cabinet.id,
                door_id=_door_id(session, cabinet, event.door),
            )
        audit(
            session,
            self.deps,
            action=action,
            caller=cabinet.caller,
            target=target,
            outcome=outcome,
            reason=reason,
            device_time=event.device_time,
            details={"event_id": event.event_id, "door_number": event.door} | (details or {}),
        )

    # --- presence, state, cmd/res ------------------------------------------------------------

    def _presence(self, cabinet: CabinetRef, message: InboundMessage, out: LinkPublisher) -> None:
        envelope = _decode_from(cabinet, message.payload, PresenceMessage)
        with session_scope(self.engine) as session:
            change = presence.apply_presence(
                session, self.deps, cabinet_id=cabinet.id, site_id=cabinet.site_id,
                presence=envelope.body, caller=cabinet.caller,
                heard_at=self._heard_at(message), sent_at=envelope.sent_at,
            )  # fmt: skip
        if change.came_online:
            self._sync_after_online(cabinet, out)

    def _sync_after_online(self, cabinet: CabinetRef, publisher: LinkPublisher) -> None:
        """Send time and the full allow-list; a failure here never undoes the presence."""
        try:
            with session_scope(self.engine) as session:
                sync.on_cabinet_online(session, publisher, cabinet_id=cabinet.id)
        except Exception:
            logger.exception("online sync for cabinet %s failed", cabinet.code)

    def _state(self, cabinet: CabinetRef, message: InboundMessage, _out: LinkPublisher) -> None:
        envelope = _decode_from(cabinet, message.payload, StateMessage)
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
            presence.apply_state(
                session, cabinet_id=cabinet.id, state=envelope.body, observed_at=envelope.sent_at
            )

    def _command_result(
        self, cabinet: CabinetRef, message: InboundMessage, _out: LinkPublisher
    ) -> None:
        envelope = _decode_from(cabinet, message.payload, CommandResultMessage)
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
            commands.apply_result(
                session, cabinet_id=cabinet.id, result=envelope, audit=self.deps.audit
            )

    def _heard_at(self, message: InboundMessage) -> datetime | None:
        """Now — unless the broker replayed a retained message, which says nothing about
        when the cabinet was last heard from (every server start receives them all)."""
        return None if message.retained else self.deps.clock()

    # --- cabinets and refusals ---------------------------------------------------------------

    def _find_cabinet(self, code: str) -> CabinetRef | None:
        with Session(self.engine) as session:
            cabinet = session.exec(select(Cabinet).where(Cabinet.code == code)).first()
        if cabinet is None or cabinet.id is None:
            return None
        return CabinetRef(id=cabinet.id, site_id=cabinet.site_id, code=cabinet.code)

    def _audit_unknown_cabinet(self, code: str, kind: topics.Kind) -> None:
        logger.warning("message on %s from unknown cabinet %s dropped", kind.value, code)
        caller = Caller(actor=Actor(type="anonymous"), channel="cabinet", source=code)
        with session_scope(self.engine) as session:
            audit(
                session, self.deps, action="link.unknown_cabinet", caller=caller,
                target=Target(), outcome="refused",
                details={"cabinet_code": code, "kind": kind.value},
            )  # fmt: skip

    def _audit_malformed(self, cabinet: CabinetRef | None, kind: str, exc: ContractError) -> None:
        logger.warning(
            "malformed %s message from %s: %s", kind, cabinet and cabinet.code, type(exc).__name__
        )
        caller = (
            cabinet.caller if cabinet else Caller(actor=Actor(type="anonymous"), channel="cabinet")
        )
        with session_scope(self.engine) as session:
            audit(
                session, self.deps, action="link.malformed", caller=caller,
                target=cabinet.target if cabinet else Target(), outcome="refused",
                reason=str(exc)[:_MAX_ERROR_TEXT],
                details={"kind": str(kind), "error": type(exc).__name__},
            )  # fmt: skip


def _decode_from(cabinet: CabinetRef, payload: bytes, expected: type[Any]) -> Envelope[Any]:
    """Decode, and insist that the envelope names the cabinet whose topic carried it."""
    envelope: Envelope[Any] = decode(payload, expected)
    if envelope.cabinet_id != cabinet.code:
        raise _Mismatch(f"envelope names cabinet {envelope.cabinet_id!r}, topic {cabinet.code!r}")
    return envelope


class _Mismatch(ContractError):
    """The envelope's cabinet is not the topic's cabinet (the broker ACL vouches for the topic)."""


def _claim(
    session: Session, cabinet: CabinetRef, events: list[Event], *, received_at: datetime
) -> set[str]:
    """Insert the batch's event ids first, in one statement; answer the ids that were new.

    An id already stored (a re-publish, a redelivery, another server process that got
    there first — on PostgreSQL its uncommitted row makes us wait, then skip) is absent.
    """
    rows = [
        {
            "event_id": event.event_id,
            "cabinet_id": cabinet.id,
            "seq": event.seq,
            "type": event.type,
            "outcome": "applied",
            "device_time": event.device_time,
            "received_at": received_at,
        }
        for event in events
    ]
    return set(presence.insert_ignoring_duplicates(session, LinkEvent, rows, LinkEvent.event_id))


def _door_id(session: Session, cabinet: CabinetRef, number: int) -> int | None:
    query = select(Door.id).where(Door.cabinet_id == cabinet.id, Door.number == number)
    return session.exec(query).first()
