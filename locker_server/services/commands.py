"""Signed door commands from the server to a cabinet, and their lifecycle.

``issue_command`` allocates the cabinet's next counter under a row lock, signs the command
with the server's Ed25519 command key (:mod:`locker_server.services.outbound`), stores it and
**commits before publishing**, so nothing ever reaches a cabinet that the database does
not hold. ``apply_result`` follows the cabinet's ``cmd/res`` answers; ``expire_overdue``
turns commands without a final answer after :data:`RESULT_TIMEOUT` into
``outcome_unknown``. A command is **never sent twice**: after a timeout the operator sees
"outcome unknown" and decides (the door may have opened).

An operator kill switch (per site and per cabinet, :func:`set_remote_open`) refuses new
remote opens; it touches nothing else, so pickup codes keep working locally and offline.

Errors: ``RemoteOpenDisabled`` (the kill switch is on) and ``LinkUnavailable`` (no link
to publish on; the command is stored as failed), from :mod:`locker_server.services.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from locker_contract import topics
from locker_contract.bodies import CommandMessage, CommandResult, UnsignedCommand
from locker_contract.envelope import Envelope, encode
from locker_contract.types import new_message_id
from locker_server.audit import Actor
from locker_server.errors import NotFound
from locker_server.keys import ServerKeys
from locker_server.models import Cabinet, Door
from locker_server.models.commands import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    CommandStatus,
    LinkCabinetControl,
    LinkCommand,
    LinkSiteControl,
)
from locker_server.models.types import utcnow
from locker_server.services import outbound
from locker_server.services.cabinets import cabinet_caller, get_cabinet
from locker_server.services.context import AuditRecorder, Caller, Target, record_audit
from locker_server.services.errors import LinkUnavailable, RemoteOpenDisabled
from locker_server.services.outbound import Publisher

logger = logging.getLogger(__name__)

#: The cabinet refuses a command after this (contract default: 60 s after issue).
COMMAND_TTL = timedelta(seconds=60)
#: No final result by then: ``outcome_unknown`` (contract default: 30 s), never resent.
RESULT_TIMEOUT = timedelta(seconds=30)
#: Actions that move a lock; the kill switch refuses them, ``ping`` stays allowed.
OPENING_ACTIONS = frozenset({"open_door", "open_all"})
#: The contract caps a command's reason; the audit entry keeps the operator's full text.
_MAX_COMMAND_REASON = 200

_WORKER = Caller(actor=Actor(type="system", id="link-commands"), channel="worker")


# --- audit -----------------------------------------------------------------------------------


def _audit(
    session: Session,
    recorder: AuditRecorder,
    command: LinkCommand | None,
    cabinet: Cabinet,
    *,
    action: str,
    caller: Caller,
    outcome: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    record_audit(
        session,
        recorder,
        action=action,
        caller=caller,
        target=Target.at_cabinet(cabinet, door_id=command.door_id if command else None),
        outcome=outcome,
        reason=reason,
        details=(_command_details(command) if command else {}) | (details or {}),
    )


def _command_details(command: LinkCommand) -> dict[str, Any]:
    return {
        "command_id": command.command_id,
        "counter": command.counter,
        "action": command.action,
        "door_number": command.door,
    }


# --- per-cabinet control row: counters and kill switch ---------------------------------------


def ensure_control(session: Session, cabinet_id: int) -> None:
    """Create the cabinet's control row if missing; a concurrent creator winning is fine."""
    if session.get(LinkCabinetControl, cabinet_id) is not None:
        return  # (no query when the row is already loaded, as issue_command has done)
    try:
        with session.begin_nested():
            session.add(LinkCabinetControl(cabinet_id=cabinet_id))
    except IntegrityError:
        logger.debug("control row of cabinet %s created concurrently", cabinet_id)


def next_value(session: Session, cabinet_id: int, column: str) -> int:
    """Increment ``column`` of the cabinet's control row and return the new value.

    One ``UPDATE ... RETURNING`` holds the row lock until commit, so two issuers (threads,
    server processes) can never be handed the same number.
    """
    ensure_control(session, cabinet_id)
    field = getattr(LinkCabinetControl, column)
    result = session.execute(
        update(LinkCabinetControl)
        .where(col(LinkCabinetControl.cabinet_id) == cabinet_id)
        .values({column: field + 1})
        .returning(field)
        .execution_options(synchronize_session=False)
    )
    return int(result.scalar_one())


def allocate_counter(session: Session, cabinet_id: int) -> int:
    return next_value(session, cabinet_id, "last_counter")


def site_remote_open_enabled(session: Session, site_id: int) -> bool:
    site = session.get(LinkSiteControl, site_id, populate_existing=True)
    return site is None or site.remote_open_enabled


def remote_open_enabled(session: Session, cabinet: Cabinet) -> bool:
    """Off if either the cabinet's or its site's switch is off (both default to on)."""
    own = session.get(LinkCabinetControl, cabinet.id, populate_existing=True)
    own_enabled = own is None or own.remote_open_enabled
    return own_enabled and site_remote_open_enabled(session, cabinet.site_id)


def set_remote_open(
    session: Session,
    recorder: AuditRecorder,
    *,
    cabinet_id: int,
    enabled: bool,
    reason: str,
    caller: Caller,
    now: datetime | None = None,
) -> LinkCabinetControl:
    """The operator's kill switch for one cabinet's remote opens (audited)."""
    cabinet = get_cabinet(session, cabinet_id)
    ensure_control(session, cabinet_id)
    control = session.get(LinkCabinetControl, cabinet_id, with_for_update=True)
    assert control is not None
    control.remote_open_enabled, control.remote_open_reason = enabled, reason
    control.updated_at = now or utcnow()
    session.add(control)
    action = "cabinet.remote_open_enabled" if enabled else "cabinet.remote_open_disabled"
    _audit(
        session,
        recorder,
        None,
        cabinet,
        action=action,
        caller=caller,
        outcome="success",
        reason=reason,
    )
    return control


def set_site_remote_open(
    session: Session,
    recorder: AuditRecorder,
    *,
    site_id: int,
    enabled: bool,
    reason: str,
    caller: Caller,
    now: datetime | None = None,
) -> LinkSiteControl:
    """The kill switch for every cabinet of a site (audited once, for the site)."""
    control = session.get(LinkSiteControl, site_id, with_for_update=True)
    if control is None:
        control = LinkSiteControl(site_id=site_id)
    control.remote_open_enabled, control.remote_open_reason = enabled, reason
    control.updated_at = now or utcnow()
    session.add(control)
    session.flush()
    action = "site.remote_open_enabled" if enabled else "site.remote_open_disabled"
    record_audit(
        session,
        recorder,
        action=action,
        caller=caller,
        target=Target(site_id=site_id),
        reason=reason,
    )
    return control


# --- issue -----------------------------------------------------------------------------------


def _door_id(session: Session, cabinet_id: int, door: int | None) -> int | None:
    if door is None:
        return None
    found = session.exec(
        select(Door.id).where(Door.cabinet_id == cabinet_id, Door.number == door)
    ).first()
    if found is None:
        raise NotFound(f"door {door} not found in cabinet {cabinet_id}")
    return found


def _signed_envelope(keys: ServerKeys, cabinet: Cabinet, command: LinkCommand) -> CommandMessage:
    body = UnsignedCommand(
        command_id=command.command_id,
        counter=command.counter,
        issued_at=command.issued_at,
        expires_at=command.expires_at,
        action=command.action,
        door=command.door,
        reason=command.reason[:_MAX_COMMAND_REASON] if command.reason else None,
        maintenance_token=None,
        key_id=outbound.key_id(keys),
    )
    return outbound.signed_message(
        keys, cabinet.code, body, CommandMessage, sent_at=command.issued_at
    )


def _refuse_disabled(
    session: Session,
    recorder: AuditRecorder,
    cabinet: Cabinet,
    *,
    door_id: int | None,
    action: str,
    reason: str | None,
    caller: Caller,
) -> None:
    record_audit(
        session,
        recorder,
        action="door.remote_open",
        caller=caller,
        target=Target.at_cabinet(cabinet, door_id=door_id),
        outcome="refused",
        reason=reason,
        details={"refused": "remote_open_disabled", "action": action},
    )
    session.commit()  # the refusal is audited even though the request fails
    raise RemoteOpenDisabled(f"remote opening is switched off for cabinet {cabinet.id}")


def _new_command(
    session: Session,
    cabinet: Cabinet,
    *,
    action: str,
    door: int | None,
    door_id: int | None,
    reason: str | None,
    caller: Caller,
    now: datetime,
    ttl: timedelta,
) -> LinkCommand:
    assert cabinet.id is not None
    command = LinkCommand(
        command_id=new_message_id(),
        cabinet_id=cabinet.id,
        counter=allocate_counter(session, cabinet.id),
        action=action,
        door=door,
        door_id=door_id,
        reason=reason,
        issued_by_type=caller.actor_type,
        issued_by_id=caller.actor_id,
        issued_at=now,
        expires_at=now + ttl,
        status=CommandStatus.created,
    )
    session.add(command)
    session.flush()
    return command


def issue_command(
    session: Session,
    publisher: Publisher | None,
    keys: ServerKeys,
    *,
    cabinet_id: int,
    action: str,
    door: int | None,
    reason: str | None,
    caller: Caller,
    audit: AuditRecorder,
    ttl: timedelta = COMMAND_TTL,
    now: datetime | None = None,
) -> LinkCommand:
    """Sign, store, **commit**, then publish one command; answer it marked ``sent``.

    This function owns the transaction: it commits the caller's session (the command and
    its audit entry) before anything is published. Without a publisher, or when publishing
    raises, the stored command is marked ``failed`` (committed) and ``LinkUnavailable`` is
    raised. With the kill switch on, an opening action is refused (audited) with
    ``RemoteOpenDisabled``.
    """
    now = now or utcnow()
    cabinet = get_cabinet(session, cabinet_id)
    door_id = _door_id(session, cabinet_id, door)
    if action in OPENING_ACTIONS and not remote_open_enabled(session, cabinet):
        _refuse_disabled(
            session, audit, cabinet, door_id=door_id, action=action, reason=reason, caller=caller
        )
    command = _new_command(
        session,
        cabinet,
        action=action,
        door=door,
        door_id=door_id,
        reason=reason,
        caller=caller,
        now=now,
        ttl=ttl,
    )
    envelope = _signed_envelope(keys, cabinet, command)
    audit_action = "door.remote_open" if action in OPENING_ACTIONS else f"command.{action}"
    _audit(
        session,
        audit,
        command,
        cabinet,
        action=audit_action,
        caller=caller,
        outcome="requested",
        reason=reason,
    )
    session.commit()
    _publish(session, publisher, audit, cabinet, command, encode(envelope))
    return command


def _publish(
    session: Session,
    publisher: Publisher | None,
    recorder: AuditRecorder,
    cabinet: Cabinet,
    command: LinkCommand,
    payload: bytes,
) -> None:
    if publisher is None:
        _fail_unsent(session, recorder, cabinet, command, "link_unavailable")
    try:
        publisher.publish(topics.cmd(cabinet.code), payload, qos=1, retain=False)
    except Exception as exc:
        logger.warning("publishing command %s failed: %s", command.command_id, exc)
        _fail_unsent(session, recorder, cabinet, command, "publish_failed")
    _advance(
        session,
        command,
        CommandStatus.sent,
        from_statuses=[CommandStatus.created],
        sent_at=utcnow(),
    )
    session.commit()
    session.refresh(command)


def _fail_unsent(
    session: Session, recorder: AuditRecorder, cabinet: Cabinet, command: LinkCommand, why: str
) -> NoReturn:
    """Record the stored command as failed (never sent) and tell the caller."""
    _advance(
        session,
        command,
        CommandStatus.failed,
        from_statuses=[CommandStatus.created],
        result_reason=why,
        finished_at=utcnow(),
    )
    _audit(
        session,
        recorder,
        command,
        cabinet,
        action="command.failed",
        caller=_WORKER,
        outcome="failure",
        reason=why,
    )
    session.commit()
    raise LinkUnavailable("the cabinet link is not available: the command was not sent")


def _advance(
    session: Session,
    command: LinkCommand,
    status: CommandStatus,
    *,
    from_statuses: Iterable[CommandStatus],
    **values: Any,
) -> bool:
    """Move ``command`` to ``status`` only from ``from_statuses`` (a result may race us)."""
    result = session.execute(
        update(LinkCommand)
        .where(col(LinkCommand.id) == command.id, col(LinkCommand.status).in_(list(from_statuses)))
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --- results ---------------------------------------------------------------------------------


def _locked_command(session: Session, command_id: str) -> LinkCommand | None:
    query = (
        select(LinkCommand)
        .where(LinkCommand.command_id == command_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(query).first()


def _ignore_result(
    session: Session,
    recorder: AuditRecorder,
    cabinet: Cabinet,
    command: LinkCommand | None,
    body: CommandResult,
    why: str,
) -> None:
    logger.info("ignoring result %s for command %s: %s", body.status, body.command_id, why)
    _audit(
        session,
        recorder,
        command,
        cabinet,
        action="command.result_ignored",
        caller=cabinet_caller(cabinet.code),
        outcome=why,
        details={"reported_command_id": body.command_id, "reported_status": body.status},
    )


def apply_result(
    session: Session,
    *,
    cabinet_id: int,
    result: Envelope[CommandResult],
    audit: AuditRecorder,
    now: datetime | None = None,
) -> LinkCommand | None:
    """Move a command along on the cabinet's ``cmd/res`` (in the caller's transaction);
    answers the command if this result finished it, else None.

    ``received`` → ``delivered``; a final status is recorded once with its reason and
    outcome. The cabinet sends a final result again until it is acknowledged, so the same
    final result for a command already finished with it changes nothing and is not
    audited again. Any other result for an unknown command, another cabinet's command or
    a command that is already final is ignored and audited (``command.result_ignored``).
    """
    now = now or utcnow()
    cabinet = get_cabinet(session, cabinet_id)
    body = result.body
    command = _locked_command(session, body.command_id)
    if command is None or command.cabinet_id != cabinet_id:
        _ignore_result(session, audit, cabinet, None, body, "unknown_command")
    elif _repeats_the_recorded_result(command, body):
        logger.debug("result %s for command %s already recorded", body.status, body.command_id)
    elif command.status in FINAL_STATUSES:
        _ignore_result(session, audit, cabinet, command, body, "already_final")
    elif body.status == "received":
        _mark_delivered(session, command, now)
    else:
        _finish(session, audit, cabinet, command, body, now)
        return command
    return None


def _repeats_the_recorded_result(command: LinkCommand, body: CommandResult) -> bool:
    """The final result this command already finished with, sent again (its ack was lost)."""
    recorded = (command.status, command.result_reason, command.result_outcome)
    return body.is_final and recorded == (body.status, body.reason, body.outcome)


def _mark_delivered(session: Session, command: LinkCommand, now: datetime) -> None:
    if command.status != CommandStatus.delivered:
        command.status, command.delivered_at = CommandStatus.delivered, now
        session.add(command)


_FINAL_AUDIT = {
    "succeeded": ("command.succeeded", "success"),
    "failed": ("command.failed", "failure"),
    "rejected": ("command.rejected", "rejected"),
    "expired": ("command.expired", "expired"),
}


def _finish(
    session: Session,
    recorder: AuditRecorder,
    cabinet: Cabinet,
    command: LinkCommand,
    body: CommandResult,
    now: datetime,
) -> None:
    command.status = CommandStatus(body.status)
    command.result_reason, command.result_outcome = body.reason, body.outcome
    command.delivered_at = command.delivered_at or now
    command.finished_at = now
    session.add(command)
    action, outcome = _FINAL_AUDIT[body.status]
    _audit(
        session,
        recorder,
        command,
        cabinet,
        action=action,
        caller=cabinet_caller(cabinet.code),
        outcome=outcome,
        reason=body.reason,
        details={"outcome": body.outcome},
    )


# --- timeout ---------------------------------------------------------------------------------


def expire_overdue_commands(
    session: Session,
    *,
    now: datetime,
    audit: AuditRecorder,
    timeout: timedelta = RESULT_TIMEOUT,
) -> int:
    """Commands with no final result ``timeout`` after issue become ``outcome_unknown``.

    They are never published again: the door may or may not have opened, and only the
    cabinet's door events (or a person on site) can tell. Returns how many were marked.
    """
    query = (
        select(LinkCommand)
        .where(
            col(LinkCommand.status).in_(list(OPEN_STATUSES)),
            col(LinkCommand.issued_at) <= now - timeout,
        )
        .order_by(col(LinkCommand.id))
        .with_for_update()
    )
    overdue = list(session.exec(query).all())
    for command in overdue:
        last_status = command.status
        command.status, command.finished_at = CommandStatus.outcome_unknown, now
        session.add(command)
        cabinet = get_cabinet(session, command.cabinet_id)
        _audit(
            session, audit, command, cabinet, action="command.outcome_unknown", caller=_WORKER,
            outcome="unknown", details={"last_status": last_status},
        )  # fmt: skip
    return len(overdue)


def get_command(session: Session, *, cabinet_id: int, command_id: str) -> LinkCommand:
    command = session.exec(
        select(LinkCommand).where(
            LinkCommand.command_id == command_id, LinkCommand.cabinet_id == cabinet_id
        )
    ).first()
    if command is None:
        raise NotFound(f"command {command_id} not found")
    return command
