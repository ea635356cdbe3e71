"""Periodic work that runs beside the API in ``locker-server serve``.

Three jobs, each on its own daemon thread, each surviving its own failures:

* the notification worker (outbox → SMTP / SMS gateway / webhooks);
* the parcel sweeps every ``sweep_seconds`` (stale reservations released, reminders
  queued, overdue parcels expired);
* an audit checkpoint every ``settings.audit_checkpoint_seconds``, so entries written
  just before a quiet period are still covered by a signed checkpoint in time.

A deployment that scales the API to several processes runs these once, separately
(``locker-server notifications run-worker`` and ``locker-server parcel sweep`` from cron),
and starts ``serve --no-background`` for the API processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from locker_server.audit import AuditLog
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.notifications import Notifier
from locker_server.notifications.worker import NotificationWorker
from locker_server.services import DomainDeps, parcels

logger = logging.getLogger(__name__)


def audit_log_for(settings: Settings, keys: ServerKeys) -> AuditLog:
    return AuditLog(
        signing_key=keys.audit_signing_key,
        checkpoint_entries=settings.audit_checkpoint_entries,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
    )


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
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        audit = audit_log_for(self.settings, self.keys)
        notifier = Notifier(settings=self.settings, keys=self.keys)
        deps = DomainDeps(settings=self.settings, keys=self.keys, audit=audit, notifier=notifier)
        worker = NotificationWorker(self.engine, self.settings, self.keys, audit=audit)
        self._spawn("notification-worker", lambda: worker.run_forever(self._stop))
        self._spawn("parcel-sweeps", self._every(self.sweep_seconds, lambda: self._sweep(deps)))
        checkpoint_seconds = float(self.settings.audit_checkpoint_seconds)
        self._spawn("audit-checkpoints", self._every(checkpoint_seconds, lambda: self._seal(audit)))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _every(self, seconds: float, job: Callable[[], None]) -> Callable[[], None]:
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
