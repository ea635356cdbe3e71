"""The enqueue side: services call :class:`Notifier` inside their own transaction.

Nothing is sent here. Each call adds outbox rows to the caller's session (one per channel
the recipient accepts); they are committed or rolled back together with the business
change, and :class:`~locker_server.notifications.worker.NotificationWorker` delivers them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.models.types import utcnow as utc_now
from locker_server.notifications import outbox
from locker_server.notifications.models import (
    Channel,
    NotificationMessage,
    RecipientEvent,
)
from locker_server.notifications.sealing import PickupSecret, seal

logger = logging.getLogger(__name__)

#: The outbox ``event`` of an alarm message to staff (templates ``alarm_raised.*``).
STAFF_ALARM_EVENT = "alarm_raised"


@dataclass(frozen=True, slots=True)
class RecipientContact:
    """How to reach one recipient. ``channels`` are the recipient's accepted channels."""

    recipient_id: int
    name: str
    email: str | None
    phone: str | None
    language: str = "en"
    channels: tuple[str, ...] = (Channel.email, Channel.sms)


@dataclass(frozen=True, slots=True)
class StaffContact:
    """A staff member told about alarms (an operator of the alarm's site) by e-mail."""

    user_id: int
    email: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class AlarmNotice:
    """What an alarm message says: kind, where (names, door number) and when."""

    alarm_id: int
    kind: str
    site_name: str
    cabinet_name: str
    cabinet_code: str
    door_number: int | None
    raised_at: datetime
    detail: str | None
    site_timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class _Where:
    site_name: str
    cabinet_name: str
    door_label: str | None
    site_timezone: str

    def params(self) -> dict[str, Any]:
        return {
            "site_name": self.site_name,
            "cabinet_name": self.cabinet_name,
            "door_label": self.door_label,
            "site_timezone": self.site_timezone,
        }


class Notifier:
    """Queues recipient notifications and carrier webhooks in the caller's session."""

    def __init__(
        self, *, settings: Settings, keys: ServerKeys, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._settings = settings
        self._sealing_key = keys.outbox_sealing_key
        self._clock = clock

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
        site_timezone: str = "UTC",
    ) -> list[NotificationMessage]:
        """Tell the recipient the parcel is ready, with its pickup code and QR token."""
        where = _Where(site_name, cabinet_name, door_label, site_timezone)
        params = where.params() | {"expires_at": expires_at.isoformat()}
        secret = PickupSecret(code=code, qr_token=qr_token)
        return self._enqueue_for(
            session, RecipientEvent.pickup_ready, parcel_id, recipient, params, secret
        )

    def reminder(
        self,
        session: Session,
        *,
        parcel_id: int,
        recipient: RecipientContact,
        site_name: str,
        cabinet_name: str,
        expires_at: datetime,
        door_label: str | None = None,
        site_timezone: str = "UTC",
    ) -> list[NotificationMessage]:
        """Remind the recipient before expiry. Codes are stored only hashed: none repeated."""
        where = _Where(site_name, cabinet_name, door_label, site_timezone)
        params = where.params() | {"expires_at": expires_at.isoformat()}
        return self._enqueue_for(session, RecipientEvent.reminder, parcel_id, recipient, params)

    def expired(
        self,
        session: Session,
        *,
        parcel_id: int,
        recipient: RecipientContact,
        site_name: str,
        cabinet_name: str,
        expired_at: datetime | None = None,
        door_label: str | None = None,
        site_timezone: str = "UTC",
    ) -> list[NotificationMessage]:
        """Tell the recipient the pickup time is over and the parcel goes back."""
        where = _Where(site_name, cabinet_name, door_label, site_timezone)
        when = expired_at if expired_at is not None else self._clock()
        params = where.params() | {"expired_at": when.isoformat()}
        return self._enqueue_for(session, RecipientEvent.expired, parcel_id, recipient, params)

    def carrier_event(
        self,
        session: Session,
        *,
        carrier_id: int,
        webhook_url: str | None,
        event_type: str,
        data: Mapping[str, Any],
        parcel_id: int | None = None,
    ) -> NotificationMessage | None:
        """Queue a signed webhook to a carrier; ``None`` if the carrier has no webhook URL."""
        if not webhook_url:
            logger.debug("carrier %s has no webhook URL; %s not queued", carrier_id, event_type)
            return None
        message = NotificationMessage(
            kind=Channel.webhook,
            event=event_type,
            parcel_id=parcel_id,
            carrier_id=carrier_id,
            destination=webhook_url,
            params={"type": event_type, "data": dict(data)},
        )
        self._stamp(message)
        session.add(message)
        return message

    def alarm_raised(
        self, session: Session, *, notice: AlarmNotice, staff: Sequence[StaffContact]
    ) -> list[NotificationMessage]:
        """Tell each of ``staff`` by e-mail that a new alarm was raised."""
        params = {
            "alarm_id": notice.alarm_id,
            "kind": notice.kind,
            "site_name": notice.site_name,
            "cabinet_name": notice.cabinet_name,
            "cabinet_code": notice.cabinet_code,
            "door_number": notice.door_number,
            "raised_at": notice.raised_at.isoformat(),
            "detail": notice.detail,
            "site_timezone": notice.site_timezone,
        }
        messages = [
            NotificationMessage(
                kind=Channel.email,
                event=STAFF_ALARM_EVENT,
                language=contact.language[:16],
                destination=contact.email,
                params=params,
            )
            for contact in staff
        ]
        for message in messages:
            self._stamp(message)
        if not messages:
            logger.warning("alarm %s: no operator with an e-mail address to tell", notice.alarm_id)
        session.add_all(messages)
        return messages

    def cancel_pending(
        self, session: Session, *, parcel_id: int, events: tuple[str, ...] = ()
    ) -> int:
        """Cancel a parcel's undelivered messages (picked up, cancelled, code re-issued)."""
        return outbox.cancel_pending(session, parcel_id=parcel_id, events=events)

    def _enqueue_for(
        self,
        session: Session,
        event: RecipientEvent,
        parcel_id: int,
        recipient: RecipientContact,
        params: dict[str, Any],
        secret: PickupSecret | None = None,
    ) -> list[NotificationMessage]:
        params = params | {"recipient_name": recipient.name}
        messages = [
            self._message(kind, destination, event, parcel_id, recipient, params, secret)
            for kind, destination in self._routes(recipient)
        ]
        if not messages:
            logger.info("recipient %s has no usable channel for %s", recipient.recipient_id, event)
        session.add_all(messages)
        return messages

    def _routes(self, recipient: RecipientContact) -> list[tuple[Channel, str]]:
        routes: list[tuple[Channel, str]] = []
        if recipient.email and Channel.email in recipient.channels:
            routes.append((Channel.email, recipient.email))
        sms_configured = bool(self._settings.sms_gateway_url)
        if recipient.phone and Channel.sms in recipient.channels and sms_configured:
            routes.append((Channel.sms, recipient.phone))
        return routes

    def _message(
        self,
        kind: Channel,
        destination: str,
        event: RecipientEvent,
        parcel_id: int,
        recipient: RecipientContact,
        params: dict[str, Any],
        secret: PickupSecret | None,
    ) -> NotificationMessage:
        event_id = str(uuid.uuid4())
        sealed = None
        if secret is not None:
            sealed = seal(self._sealing_key, secret, event_id=event_id, kind=kind)
        message = NotificationMessage(
            event_id=event_id,
            kind=kind,
            event=event,
            parcel_id=parcel_id,
            recipient_id=recipient.recipient_id,
            language=recipient.language[:16],
            destination=destination,
            params=params,
            sealed_secret=sealed,
        )
        self._stamp(message)
        return message

    def _stamp(self, message: NotificationMessage) -> None:
        message.created_at = message.next_attempt_at = self._clock()
