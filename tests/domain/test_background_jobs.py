"""`locker-server serve` runs the worker, the parcel sweeps and audit checkpoints beside the API."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from locker_server.audit.models import AuditCheckpoint, AuditEntry
from locker_server.background import BackgroundJobs
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.keys import ServerKeys
from locker_server.models import ParcelState
from locker_server.services import DomainDeps
from locker_server.services.parcels import reserve
from tests.domain.conftest import COURIER, Announce, Deliver, World, load_parcel
from tests.notifications.notification_support import MailSink, free_port
from tests.waiting import wait_until


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


#: the jobs run on their own schedule; this is how long the test gives them
JOBS_TIMEOUT_S = 20.0


def _signed_tip(engine: Engine) -> bool:
    with Session(engine) as session:
        tip = session.scalar(select(func.max(AuditEntry.seq)))
        signed = session.scalar(select(func.max(AuditCheckpoint.seq)))
    return tip is not None and signed == tip


def test_background_jobs_mail_codes_sweep_overdue_parcels_and_sign_the_log_tail(
    engine: Engine,
    settings: Settings,
    server_keys: ServerKeys,
    deps: DomainDeps,
    world: World,
    deliver: Deliver,
    announce_parcel: Announce,
    mail_sink: MailSink,
) -> None:
    # Delivered and reserved on the test clock (March 2026): long overdue in real time.
    overdue = deliver()
    stale_id = announce_parcel(world.bob)
    with session_scope(engine) as session:
        reserve(session, deps, parcel_id=stale_id, cabinet_id=world.cabinet_id, caller=COURIER)
    live = settings.model_copy(
        update={
            "smtp_port": mail_sink.port,
            "audit_checkpoint_seconds": 1,
            "embedded_broker_port": free_port(),  # the machine's Mosquitto holds 1883
        }
    )
    jobs = BackgroundJobs(engine, live, server_keys, sweep_seconds=0.1)
    jobs.start()
    try:
        assert wait_until(
            lambda: load_parcel(engine, stale_id).state == ParcelState.announced, JOBS_TIMEOUT_S
        )
        assert wait_until(
            lambda: load_parcel(engine, overdue.parcel_id).state == "expired", JOBS_TIMEOUT_S
        )
        assert wait_until(
            lambda: any(overdue.code in str(m) for m in mail_sink.messages), JOBS_TIMEOUT_S
        )
        assert wait_until(lambda: _signed_tip(engine), JOBS_TIMEOUT_S)
    finally:
        jobs.stop()
    assert all(not thread.is_alive() for thread in jobs._threads)


def test_the_default_dev_broker_port_taken_means_a_free_port_named_in_the_log(
    engine: Engine,
    settings: Settings,
    server_keys: ServerKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert "embedded_broker_port" not in settings.model_fields_set
    default_port = settings.embedded_broker_port
    with socket.socket() as holder:
        try:  # usually the machine's Mosquitto holds it already
            holder.bind(("127.0.0.1", default_port))
            holder.listen()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
        jobs = BackgroundJobs(engine, settings, server_keys)
        with caplog.at_level(logging.WARNING, logger="locker_server.background"):
            jobs.start(link_only=True)
        try:
            assert jobs.embedded_broker is not None
            chosen = jobs.embedded_broker.port
            assert chosen != default_port
            assert f"listens on 127.0.0.1:{chosen} instead" in caplog.text
            assert jobs.bridge is not None
            assert jobs.bridge.wait_until_subscribed(20)  # the link runs, on that port
        finally:
            jobs.stop()
