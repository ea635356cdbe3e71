"""The application factory: ``create_app(settings, link_publisher=...)`` wires settings,
database, keys, the audit log, the notifier and the cabinet link's publisher into
``app.state`` (read by the dependencies of ``locker_server.api.deps``) and mounts every
router listed in ``ROUTERS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from locker_server.api.errors import install_error_handlers
from locker_server.api.openapi import document_errors
from locker_server.api.routes import (
    alarms,
    api_keys,
    audit,
    auth,
    cabinets,
    carriers,
    couriers,
    health,
    notifications,
    parcels,
    pickups,
    recipients,
    sites,
    users,
)
from locker_server.audit import AuditLog
from locker_server.auth.login import LoginThrottle
from locker_server.config import Settings
from locker_server.db import make_engine
from locker_server.keys import load_keys
from locker_server.notifications import Notifier
from locker_server.services.outbound import Publisher

#: Every router (one module per resource), in the order the OpenAPI document lists them.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    users.router,
    api_keys.router,
    sites.router,
    cabinets.router,
    parcels.router,
    recipients.router,
    couriers.router,
    carriers.router,
    pickups.router,
    audit.router,
    notifications.router,
    alarms.router,
)


def create_app(
    settings: Settings | None = None, *, link_publisher: Publisher | None = None
) -> FastAPI:
    """The API; remote opens publish through ``link_publisher`` (``None``: no cabinet link,
    they answer 503 ``link_unavailable``)."""
    settings = settings or Settings()
    keys = load_keys(settings.resolved_secrets_dir)
    engine = make_engine(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Parcel locker server",
        version="0.1.0",
        description="Sites, cabinets, parcels, pickups and the tamper-evident audit log.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.engine = engine
    app.state.audit = AuditLog.for_server(settings, keys)
    app.state.notifier = Notifier(settings=settings, keys=keys)
    app.state.login_throttle = LoginThrottle()
    app.state.link_publisher = link_publisher
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    document_errors(app)
    return app
