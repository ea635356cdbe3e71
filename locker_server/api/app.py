"""The application factory: ``create_app(settings)`` wires settings, database, keys,
the audit log and the notifier into ``app.state`` and mounts every router.

Routers are modules ``locker_server.api.routes.<name>`` exposing ``router``, listed in
``ROUTER_MODULES``; a missing or broken router module fails the app at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from locker_server.api.errors import install_error_handlers
from locker_server.api.openapi import document_errors
from locker_server.audit import AuditLog
from locker_server.auth.login import LoginThrottle
from locker_server.config import Settings
from locker_server.db import make_engine
from locker_server.keys import load_keys
from locker_server.notifications import Notifier

ROUTER_MODULES = (
    "health",
    "auth",
    "users",
    "api_keys",
    "sites",
    "cabinets",
    "parcels",
    "recipients",
    "couriers",
    "carriers",
    "pickups",
    "audit",
    "notifications",
)

_PACKAGE = "locker_server.api.routes"


def load_router(name: str) -> APIRouter:
    module = importlib.import_module(f"{_PACKAGE}.{name}")
    router: APIRouter = module.router
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
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
    install_error_handlers(app)
    for name in ROUTER_MODULES:
        app.include_router(load_router(name))
    document_errors(app)
    return app
