"""What every domain service receives besides its session: dependencies and the caller.

``DomainDeps`` bundles the explicit dependencies (settings, the pickup HMAC key, the
audit log, the notifier, a clock) so routes, the CLI, the cabinet link and tests
build it once and pass it in; nothing here reads globals. ``Caller`` is the audit's
who and where of one request or cabinet event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from locker_contract.lockout import LockoutPolicy
from locker_server.audit import Actor, AuditEvent
from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.models.types import utcnow
from locker_server.notifications import AlarmNotice, RecipientContact, StaffContact
from locker_server.services.credentials import lockout_policy


class AuditRecorder(Protocol):
    def record(self, session: Session, event: AuditEvent, /) -> Any: ...


class ParcelNotifier(Protocol):
    """What the services need from :class:`locker_server.notifications.Notifier`.

    Every method queues outbox rows in the caller's session (a transactional outbox).
    """

    def pickup_ready(
        self,
        session: Session,
        *,
        parcel_id: int,
        recipient: RecipientContact,
        site_name: str,
        cabinet_name: str,
        door_label: str,
        code: str,
        qr_token: str,
        expires_at: datetime,
        site_timezone: str = ...,
    ) -> Any: ...

    def reminder(
        self,
        session: Session,
        *,
        parcel_id: int,
        recipient: RecipientContact,
        site_name: str,
        cabinet_name: str,
        expires_at: datetime,
        door_label: str | None = ...,
        site_timezone: str = ...,
    ) -> Any: ...

    def expired(
        self,
        session: Session,
        *,
        parcel_id: int,
        recipient: RecipientContact,
        site_name: str,
        cabinet_name: str,
        expired_at: datetime | None = ...,
        door_label: str | None = ...,
        site_timezone: str = ...,
    ) -> Any: ...

    def cancel_pending(
        self, session: Session, *, parcel_id: int, events: tuple[str, ...] = ...
    ) -> int: ...

    def alarm_raised(
        self, session: Session, *, notice: AlarmNotice, staff: Sequence[StaffContact]
    ) -> Any: ...

    def carrier_event(
        self,
        session: Session,
        *,
        carrier_id: int,
        webhook_url: str | None,
        event_type: str,
        data: Mapping[str, Any],
        parcel_id: int | None = ...,
    ) -> Any: ...


class StaffDirectory(Protocol):
    """Who is told about a site's alarms: the identity part knows the staff
    (:func:`locker_server.auth.users.alarm_contacts`); the services only ask."""

    def __call__(self, session: Session, site_id: int, /) -> Sequence[StaffContact]: ...


@dataclass(frozen=True, slots=True)
class DomainDeps:
    settings: Settings
    keys: ServerKeys
    audit: AuditRecorder
    notifier: ParcelNotifier
    clock: Callable[[], datetime] = utcnow
    #: Defaults to ``lockout_threshold`` failures per door and per cabinet in ``lockout_minutes``.
    lockout_policy: LockoutPolicy | None = None
    #: Operators to e-mail about new alarms; None: nobody is told (logged once per alarm).
    staff: StaffDirectory | None = None

    @property
    def pickup_hmac_key(self) -> bytes:
        return self.keys.pickup_hmac_key

    @property
    def lockout(self) -> LockoutPolicy:
        if self.lockout_policy is not None:
            return self.lockout_policy
        return lockout_policy(self.settings)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts (an audit ``Actor``), through which channel, from where (IP or cabinet)."""

    actor: Actor
    channel: str = "api"
    source: str | None = None

    @property
    def actor_type(self) -> str:
        return str(self.actor.type)

    @property
    def actor_id(self) -> str:
        return str(self.actor.id) if self.actor.id is not None else "-"


SYSTEM = Caller(actor=Actor(type="system", id="scheduler"), channel="worker")


class SitedCabinet(Protocol):
    """A cabinet row, or anything that knows a cabinet's id and its site."""

    @property
    def id(self) -> int | None: ...

    @property
    def site_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Target:
    """Ids an audit entry points at (never names, never codes)."""

    site_id: int | None = None
    cabinet_id: int | None = None
    door_id: int | None = None
    parcel_id: int | None = None
    recipient_id: int | None = None

    @classmethod
    def at_cabinet(
        cls,
        cabinet: SitedCabinet,
        *,
        door_id: int | None = None,
        parcel_id: int | None = None,
        recipient_id: int | None = None,
    ) -> Target:
        """Something that happened at ``cabinet``: always with the cabinet's site, because
        site-limited security staff find their cabinets' entries by site."""
        return cls(
            site_id=cabinet.site_id,
            cabinet_id=cabinet.id,
            door_id=door_id,
            parcel_id=parcel_id,
            recipient_id=recipient_id,
        )


def audit(
    session: Session,
    deps: DomainDeps,
    *,
    action: str,
    caller: Caller,
    target: Target,
    outcome: str = "success",
    reason: str | None = None,
    device_time: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry in the caller's transaction (it commits or rolls back with it)."""
    record_audit(
        session,
        deps.audit,
        action=action,
        caller=caller,
        target=target,
        outcome=outcome,
        reason=reason,
        device_time=device_time,
        details=details,
    )


def record_audit(
    session: Session,
    recorder: AuditRecorder,
    *,
    action: str,
    caller: Caller,
    target: Target,
    outcome: str = "success",
    reason: str | None = None,
    device_time: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """:func:`audit` through a given recorder (services that hold no :class:`DomainDeps`)."""
    event = AuditEvent(
        action=action,
        actor=caller.actor,
        outcome=outcome,
        site_id=target.site_id,
        cabinet_id=target.cabinet_id,
        door_id=target.door_id,
        parcel_id=target.parcel_id,
        recipient_id=target.recipient_id,
        channel=caller.channel,
        source=caller.source,
        reason=reason,
        device_time=device_time,
        details=details or {},
    )
    recorder.record(session, event)
