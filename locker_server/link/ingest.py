"""What the bridge does with each message from a cabinet.

* ``evt``: every event id is claimed in ``link_events`` first
  (:mod:`locker_server.services.cabinet_events`), in the same transaction that applies
  the event: a duplicate — re-published, redelivered, or taken by a second server
  process at the same moment — claims nothing and is skipped, so each event drives the
  service layer exactly once. Telemetry ids are stored together. A run of consecutive
  door events shares one transaction that keeps the services' lock order (door rows
  first, all of them in id order; the audit head last, once): see
  :meth:`Ingest._apply_door_run`. If that transaction fails, its events are applied
  again one transaction each, so one bad event cannot sink the others. Every other
  event (deposit, pickup, alarm, …) has its own transaction. The ``evt/ack`` naming the
  batch's ids is published only after every one of them is committed. An event the
  domain refuses (a door that does not exist, a deposit for a parcel in the wrong
  state) is stored as refused and audited, and acked: sending it again could never
  succeed.
* ``presence`` and ``state``: see :mod:`locker_server.services.presence`.
* ``cmd/res``: handed to :func:`locker_server.services.commands.apply_result`; a final
  result is acknowledged like events (``evt/ack`` ``result_ids``) after the commit.
* ``alarm`` events, door alarms (forced open, left open, jammed), bursts of
  ``pickup.refused`` and a cabinet going offline become alarms through
  :mod:`locker_server.services.alarms`.
* ``req``: a courier-desk request, answered on ``res`` by :mod:`locker_server.link.desk`.
* an offline ``pickup`` event: :mod:`locker_server.services.offline_pickups`; a cabinet
  that comes online is sent its time and allow-list by
  :mod:`locker_server.services.cabinet_sync`.

A message from a cabinet code we do not know is dropped and audited
``link.unknown_cabinet``; one that is not a valid message is audited ``link.malformed``
(the error, never the payload). Database trouble is *raised*: nothing is acked, the
bridge retries, and the cabinet keeps its events until an ack arrives.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_contract import topics
from locker_contract.bodies import (
    AlarmData,
    CommandResultMessage,
    DoorMoveData,
    Event,
    EventMessage,
    EventType,
    PickupRefusedData,
    PresenceMessage,
    StateMessage,
    is_droppable,
)
from locker_contract.desk import RequestMessage
from locker_contract.envelope import Envelope, decode
from locker_contract.errors import ContractError
from locker_server.audit import Actor, AuditEvent
from locker_server.db import session_scope
from locker_server.errors import DomainError, NotFound
from locker_server.link import desk
from locker_server.link.bridge import InboundMessage, LinkPublisher, NotYet
from locker_server.models import Cabinet, CommandStatus, Door, DoorEvent
from locker_server.models.commands import LinkCommand
from locker_server.services import (
    alarms,
    cabinet_events,
    cabinet_sync,
    commands,
    offline_pickups,
    outbound,
    parcels,
    presence,
)
from locker_server.services.cabinets import cabinet_by_code, cabinet_caller, get_cabinet
from locker_server.services.context import AuditRecorder, Caller, DomainDeps, Target, audit
from locker_server.services.doors import apply_door_event, lock_doors_by_number, record_door_event

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
#: Applied a run at a time (consecutive ones in a message share one transaction).
_BATCHED = frozenset(_DOOR_EVENTS) | frozenset(_AUDITED_DOOR_EVENTS)
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True, slots=True)
class CabinetRef:
    """The cabinet a message came from: database id, site, and its code (= MQTT user)."""

    id: int
    site_id: int
    code: str

    @property
    def caller(self) -> Caller:
        return cabinet_caller(self.code)

    @property
    def target(self) -> Target:
        return Target.at_cabinet(self)


class RefusedEvent(Exception):
    """An event that is well-formed but cannot be applied (stored as refused, acked)."""


@runtime_checkable
class _BatchRecorder(Protocol):
    def record_many(self, session: Session, events: Sequence[AuditEvent], /) -> Any: ...


class _DeferredAudit:
    """An ``AuditRecorder`` that keeps a batch's entries until :meth:`append_all`, so the
    audit head is locked once, after every door row of the batch is locked."""

    def __init__(self, log: AuditRecorder) -> None:
        self._log = log
        self._events: list[AuditEvent] = []

    def record(self, _session: Session, event: AuditEvent, /) -> None:
        self._events.append(event)

    def append_all(self, session: Session) -> None:
        if isinstance(self._log, _BatchRecorder):  # AuditLog: one head lock, one INSERT
            self._log.record_many(session, self._events)
            return
        for event in self._events:
            self._log.record(session, event)


@dataclass(frozen=True, slots=True)
class _DoorBatch:
    """What the events of one door-event transaction share."""

    session: Session
    #: The ingest's, with a :class:`_DeferredAudit` (entries appended after every door lock).
    deps: DomainDeps
    cabinet: CabinetRef
    cabinet_row: Cabinet
    #: Every door the batch's events name, locked, by number (absent: no such door).
    doors: Mapping[int, Door]
    #: The alarms of those doors that the batch's events may end, read once.
    alarm_book: alarms.DoorAlarmBook


def _opened_remotely(command: LinkCommand | None) -> bool:
    return (
        command is not None
        and command.action in commands.OPENING_ACTIONS
        and command.status == CommandStatus.succeeded
    )


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
            topics.Kind.REQ: self._request,
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
        events, earlier = envelope.body.events, envelope.body.after_event
        logger.debug(
            "evt of %s: %d events, seq %d..%d",
            cabinet.code, len(events), events[0].seq, events[-1].seq,
        )  # fmt: skip
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
            if earlier is not None and not cabinet_events.is_stored(session, cabinet.id, earlier):
                # Applying it now would put its events before older ones still on the way;
                # unacknowledged, it comes back with them, in journal order.
                raise NotYet(f"evt of {cabinet.code} from seq {events[0].seq} overtook earlier")
            telemetry = [event for event in events if is_droppable(event.type)]
            if telemetry:  # storing the id is all there is to do: one statement for all
                cabinet_events.claim(session, cabinet.id, telemetry, received_at=self.deps.clock())
        for run in _runs(event for event in events if not is_droppable(event.type)):
            if run[0].type in _BATCHED:
                self._ingest_door_run(cabinet, run)
            else:
                self._ingest_event(cabinet, run[0])
        ack = outbound.event_ack(self.deps.keys, cabinet.code, (e.event_id for e in events))
        out.publish(topics.evt_ack(cabinet.code), ack, qos=topics.QOS)

    def _ingest_door_run(self, cabinet: CabinetRef, events: list[Event]) -> None:
        """One transaction for the run; if it fails (a deadlock victim, an event the batch
        cannot take), nothing of it stays and each event gets its own transaction."""
        try:
            with session_scope(self.engine) as session:
                self._apply_door_run(session, cabinet, events)
        except Exception:
            logger.warning(
                "batch of %d door events of %s failed; applying them one by one",
                len(events), cabinet.code, exc_info=True,
            )  # fmt: skip
            for event in events:
                self._ingest_event(cabinet, event)

    def _apply_door_run(self, session: Session, cabinet: CabinetRef, events: list[Event]) -> None:
        """Claim the ids (one statement), lock every door the new events name (one
        statement, ascending ids), apply the events in order with their audit entries
        held back, then append those entries together: the audit head is taken last and
        once, so this transaction never holds it while waiting for a door a concurrent
        request has locked (that request would then wait for the head: a deadlock)."""
        claimed = cabinet_events.claim(session, cabinet.id, events, received_at=self.deps.clock())
        fresh = [event for event in events if event.event_id in claimed]  # ids are unique
        if not fresh:
            return
        deferred = _DeferredAudit(self.deps.audit)
        numbers = {event.door for event in fresh if event.door is not None}
        batch = _DoorBatch(
            session=session,
            deps=replace(self.deps, audit=deferred),
            cabinet=cabinet,
            cabinet_row=get_cabinet(session, cabinet.id),  # held: the identity map is weak
            doors=lock_doors_by_number(session, cabinet.id, numbers),
            alarm_book=alarms.DoorAlarmBook.load(session, cabinet.id, sorted(numbers)),
        )
        for event in fresh:
            self._apply_batched(batch, event)
        deferred.append_all(session)

    def _apply_batched(self, batch: _DoorBatch, event: Event) -> None:
        session, cabinet, doors = batch.session, batch.cabinet, batch.doors
        door_event = _DOOR_EVENTS.get(event.type)
        if door_event is None:  # door.open_confirmed / door.open_outcome_unknown
            action, outcome = event.type, _AUDITED_DOOR_EVENTS[event.type]
            self._audit_event(
                session, cabinet, event, action, outcome, deps=batch.deps, doors=doors
            )
            return
        try:
            door = _reported_door(cabinet, event, doors)
        except (NotFound, RefusedEvent) as exc:  # raised before the event changed anything
            self._refuse_event(session, cabinet, event, exc, deps=batch.deps, doors=doors)
            return
        apply_door_event(
            session, batch.deps, cabinet=batch.cabinet_row, door=door, event=door_event,
            caller=cabinet.caller, device_time=event.device_time, observed=_observed(event),
            alarm_book=batch.alarm_book,
        )  # fmt: skip

    def _ingest_event(self, cabinet: CabinetRef, event: Event) -> None:
        """One event, one transaction: every event outside door-event runs, and each event
        of a run whose shared transaction failed. A transaction applying several events
        through the services one after the other would hold the audit head (taken by the
        first event's entry) while locking the next event's rows: a deadlock with a
        concurrent request. Only a door-event run locks all its rows up front."""
        with session_scope(self.engine) as session:
            if not cabinet_events.claim(
                session, cabinet.id, [event], received_at=self.deps.clock()
            ):
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
            offline_pickups.apply_offline_pickup(
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
            observed=_observed(event),
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
        refused = alarms.refused_pickups_reported(
            session, cabinet.id, since=event.device_time - self.deps.lockout.window,
            until=event.device_time,
        )  # fmt: skip
        alarms.watch_refused_pickups(
            session, self.deps, cabinet=cabinet, refused=refused, caller=cabinet.caller,
            seen_at=event.device_time,
        )  # fmt: skip
        self._audit_event(
            session, cabinet, event, "pickup.attempt", "refused", reason=data.reason,
            details={"offline": True, "credential": data.credential},
        )  # fmt: skip

    def _alarm(self, session: Session, cabinet: CabinetRef, event: Event) -> None:
        """The alarm service raises (or clears) the alarm; the report itself is audited
        as before, ``cabinet.alarm`` or ``door.alarm``."""
        data = AlarmData.model_validate(event.data)
        door_id = None if event.door is None else _door_id(session, cabinet, event.door, None)
        place = alarms.Place(cabinet, door_number=event.door, door_id=door_id)
        if data.cleared:
            alarms.clear_alarm(
                session, self.deps, place=place, kind=data.kind, caller=cabinet.caller,
                cleared_at=event.device_time,
            )  # fmt: skip
        else:
            alarms.raise_alarm(
                session, self.deps, place=place, kind=data.kind, caller=cabinet.caller,
                detail=data.detail, seen_at=event.device_time,
            )  # fmt: skip
        action = "cabinet.alarm" if event.door is None else "door.alarm"
        self._audit_event(
            session, cabinet, event, action, "cleared" if data.cleared else "alarm",
            reason=data.kind, details={"detail": data.detail, "cleared": data.cleared},
        )  # fmt: skip

    def _refuse_event(
        self,
        session: Session,
        cabinet: CabinetRef,
        event: Event,
        exc: Exception,
        *,
        deps: DomainDeps | None = None,
        doors: Mapping[int, Door] | None = None,
    ) -> None:
        code = getattr(exc, "code", "refused")
        logger.warning(
            "event %s (%s) of %s refused: %s", event.event_id, event.type, cabinet.code, exc
        )
        cabinet_events.mark_refused(session, event.event_id, code)
        self._audit_event(
            session, cabinet, event, "link.event_refused", "failure",
            reason=str(exc)[:_MAX_ERROR_TEXT], details={"event_type": event.type, "error": code},
            deps=deps, doors=doors,
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
        deps: DomainDeps | None = None,
        doors: Mapping[int, Door] | None = None,
    ) -> None:
        """Audit ``event``; ``deps`` and ``doors``: a batch's (deferred audit, locked doors)."""
        target = cabinet.target
        if event.door is not None:
            door_id = _door_id(session, cabinet, event.door, doors)
            target = Target.at_cabinet(cabinet, door_id=door_id)
        audit(
            session,
            deps or self.deps,
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
                cabinet_sync.on_cabinet_online(
                    session, publisher, keys=self.deps.keys, cabinet_id=cabinet.id
                )
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
        self, cabinet: CabinetRef, message: InboundMessage, out: LinkPublisher
    ) -> None:
        """Apply the result; a final one is acknowledged after the commit (the cabinet
        keeps it until then), whether it changed the command or was ignored: sending it
        again could change nothing."""
        envelope = _decode_from(cabinet, message.payload, CommandResultMessage)
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
            finished = commands.apply_result(
                session, cabinet_id=cabinet.id, result=envelope, audit=self.deps.audit
            )
            if _opened_remotely(finished):
                assert finished is not None
                place = alarms.Place(
                    get_cabinet(session, cabinet.id), door_number=finished.door,
                    door_id=finished.door_id,
                )  # fmt: skip
                alarms.remote_open_issued(
                    session, self.deps, place=place, caller=cabinet.caller, reason=finished.reason
                )
        if envelope.body.is_final:
            ack = outbound.event_ack(self.deps.keys, cabinet.code, (), result_ids=[envelope.id])
            out.publish(topics.evt_ack(cabinet.code), ack, qos=topics.QOS)

    def _request(self, cabinet: CabinetRef, message: InboundMessage, out: LinkPublisher) -> None:
        envelope = _decode_from(cabinet, message.payload, RequestMessage)
        with session_scope(self.engine) as session:
            presence.touch(session, cabinet.id, self._heard_at(message))
        desk.answer(
            self.engine, self.deps, out,
            cabinet_id=cabinet.id, cabinet_code=cabinet.code, request=envelope.body,
        )  # fmt: skip

    def _heard_at(self, message: InboundMessage) -> datetime | None:
        """Now — unless the broker replayed a retained message, which says nothing about
        when the cabinet was last heard from (every server start receives them all)."""
        return None if message.retained else self.deps.clock()

    # --- cabinets and refusals ---------------------------------------------------------------

    def _find_cabinet(self, code: str) -> CabinetRef | None:
        with Session(self.engine) as session:
            cabinet = cabinet_by_code(session, code)
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


def _runs(events: Iterable[Event]) -> Iterator[list[Event]]:
    """Consecutive door events together, every other event alone, in the message's order
    (a deposit between two door events is still applied between them)."""
    for batched, group in itertools.groupby(events, key=lambda event: event.type in _BATCHED):
        if batched:
            yield list(group)
        else:
            yield from ([event] for event in group)


def _observed(event: Event) -> bool:
    """False for a door move the cabinet did not see as it happened (found after a gap)."""
    data = event.typed_data()
    return not isinstance(data, DoorMoveData) or data.observed


def _reported_door(cabinet: CabinetRef, event: Event, doors: Mapping[int, Door]) -> Door:
    """The locked door a door event names; refused as the one-by-one path refuses it."""
    if event.door is None:
        raise RefusedEvent(f"{event.type} without a door number")
    door = doors.get(event.door)
    if door is None:
        raise NotFound(f"door {event.door} not found in cabinet {cabinet.id}")
    return door


def _door_id(
    session: Session, cabinet: CabinetRef, number: int, doors: Mapping[int, Door] | None
) -> int | None:
    if doors is not None:  # a batch locked every door its events name: absent = no such door
        door = doors.get(number)
        return None if door is None else door.id
    query = select(Door.id).where(Door.cabinet_id == cabinet.id, Door.number == number)
    return session.exec(query).first()
