"""The delivery worker: claims due outbox rows, sends them, records what happened.

Delivery is at-least-once. A row is *claimed* first (status ``sending``, a lease in
``next_attempt_at``) by one ``UPDATE ... RETURNING`` statement: on PostgreSQL its
sub-select locks candidates ``FOR UPDATE SKIP LOCKED`` so parallel workers pass each other
by; SQLite serialises writers on the whole file, so a claim there is atomic too. The
message is sent outside any transaction and the outcome recorded in a second one. A worker
that dies mid-send leaves a lease that expires, and the row is tried again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from locker_server.audit import Actor, AuditEvent
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models.types import utcnow as utc_now
from locker_server.notifications.delivery import Dispatcher, OutboxItem
from locker_server.notifications.errors import DeliveryError
from locker_server.notifications.mail import EmailTransport, SmtpEmailTransport
from locker_server.notifications.models import NotificationMessage, Status
from locker_server.notifications.sms import HttpSmsGateway, SmsGateway
from locker_server.notifications.webhooks import HttpWebhookPoster, WebhookPoster

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
_CLAIMABLE = (Status.pending, Status.sending)
_WORKER_ACTOR_ID = "notification-worker"


class AuditRecorder(Protocol):
    """The part of :class:`locker_server.audit.AuditLog` the worker uses."""

    def record(self, session: Session, event: AuditEvent, /) -> Any: ...


def backoff_delay(attempt: int, base_seconds: float, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``."""
    ceiling = min(base_seconds * 2 ** max(attempt - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


class NotificationWorker:
    """Delivers due outbox messages; run :meth:`run_once` from a loop or a scheduler."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        keys: ServerKeys,
        *,
        email: EmailTransport | None = None,
        sms: SmsGateway | None = None,
        webhooks: WebhookPoster | None = None,
        audit: AuditRecorder | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        batch_size: int = 20,
        poll_seconds: float = 5.0,
    ) -> None:
        self._engine, self._settings, self._audit, self._clock = engine, settings, audit, clock
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not security)
        self._batch_size, self._poll_seconds = batch_size, poll_seconds
        # A send never outlives its timeout by much; after this the row is taken again.
        self._lease = timedelta(seconds=settings.notification_timeout_seconds * 3 + 30)
        self._dispatcher = Dispatcher(
            keys=keys,
            sender=settings.smtp_sender,
            email=email or SmtpEmailTransport.from_settings(settings),
            sms=sms or HttpSmsGateway.from_settings(settings),
            webhooks=webhooks or HttpWebhookPoster(settings.notification_timeout_seconds),
            public_base_url=settings.public_base_url,
        )

    def run_once(self) -> int:
        """Deliver every message due now; return how many delivery attempts were made."""
        attempted = 0
        while batch := self._claim():
            for item in batch:
                self._attempt(item)
            attempted += len(batch)
        return attempted

    def run_forever(self, stop_event: threading.Event) -> None:
        """Deliver until ``stop_event`` is set, sleeping ``poll_seconds`` when idle."""
        logger.info("notification worker started")
        while not stop_event.is_set():
            try:
                attempted = self.run_once()
            except Exception:
                logger.exception("notification worker pass failed; retrying after a pause")
                attempted = 0
            if attempted == 0:
                stop_event.wait(self._poll_seconds)
        logger.info("notification worker stopped")

    def _claim(self) -> list[OutboxItem]:
        """Take up to ``batch_size`` due rows in one atomic ``UPDATE ... RETURNING``."""
        now = self._clock()
        due = (
            select(NotificationMessage.id)
            .where(col(NotificationMessage.status).in_(_CLAIMABLE))
            .where(col(NotificationMessage.next_attempt_at) <= now)
            .order_by(col(NotificationMessage.next_attempt_at), col(NotificationMessage.id))
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite locks the whole file
        )
        claim = (
            update(NotificationMessage)
            .where(col(NotificationMessage.id).in_(due.scalar_subquery()))
            .values(
                status=Status.sending,
                attempts=NotificationMessage.attempts + 1,
                next_attempt_at=now + self._lease,
            )
            .returning(NotificationMessage)
            .execution_options(synchronize_session=False)
        )
        with session_scope(self._engine) as session:
            rows = session.scalars(claim).all()
            items = [OutboxItem.of(row) for row in rows]
        return sorted(items, key=lambda item: item.id)

    def _attempt(self, item: OutboxItem) -> None:
        try:
            self._dispatcher.deliver(item, self._clock())
        except DeliveryError as exc:
            self._record_failure(item, exc)
        else:
            self._record_success(item)

    def _record_success(self, item: OutboxItem) -> None:
        with session_scope(self._engine) as session:
            session.execute(
                self._finish(item).values(
                    status=Status.delivered,
                    delivered_at=self._clock(),
                    sealed_secret=None,  # the code has reached the recipient: forget it
                    last_error=None,
                )
            )
        logger.info("notification %s (%s) delivered", item.id, item.kind)

    def _record_failure(self, item: OutboxItem, error: DeliveryError) -> None:
        final = error.permanent or item.attempts >= self._settings.notification_max_attempts
        reason = str(error)[:500]
        with session_scope(self._engine) as session:
            if final:
                result = session.execute(
                    self._finish(item).values(status=Status.failed, last_error=reason)
                )
                if _rowcount(result) == 1:
                    self._audit_failure(session, item, reason)
            else:
                retry_at = self._clock() + self._backoff(item.attempts)
                values = {"status": Status.pending, "next_attempt_at": retry_at}
                session.execute(self._finish(item).values(last_error=reason, **values))
        logger.warning(
            "notification %s (%s) attempt %s failed%s: %s",
            item.id,
            item.kind,
            item.attempts,
            " for good" if final else "; will retry",
            reason,
        )

    def _backoff(self, attempt: int) -> timedelta:
        return backoff_delay(attempt, self._settings.notification_backoff_seconds, self._rng)

    @staticmethod
    def _finish(item: OutboxItem) -> Any:
        # Only the claim we hold: a row whose lease expired and was re-claimed is not ours.
        return (
            update(NotificationMessage)
            .where(col(NotificationMessage.id) == item.id)
            .where(col(NotificationMessage.status) == Status.sending)
            .where(col(NotificationMessage.attempts) == item.attempts)
            .execution_options(synchronize_session=False)
        )

    def _audit_failure(self, session: Session, item: OutboxItem, reason: str) -> None:
        if self._audit is None:
            return
        event = AuditEvent(
            action="notification.failed",
            actor=Actor(type="system", id=_WORKER_ACTOR_ID),
            outcome="failure",
            channel="worker",
            parcel_id=item.parcel_id,
            recipient_id=item.recipient_id,
            reason=reason,
            details={
                "message_id": item.id,
                "kind": item.kind,
                "event": item.event,
                "attempts": item.attempts,
                "carrier_id": item.carrier_id,
            },
        )
        self._audit.record(session, event)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
