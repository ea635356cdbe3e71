"""The whole HTTP application ``locker-server serve`` runs: the API and the console pages."""

from __future__ import annotations

from fastapi import FastAPI

from locker_server.api.app import create_app
from locker_server.config import Settings
from locker_server.services.outbound import Publisher
from locker_server.web import admin, alarm_pages, operations, pages, recipient


def create_console_app(
    settings: Settings | None = None, *, link_publisher: Publisher | None = None
) -> FastAPI:
    """``create_app`` plus the console's pages at ``/``."""
    app = create_app(settings, link_publisher=link_publisher)
    app.include_router(pages.router)
    app.include_router(operations.router)
    app.include_router(admin.router)
    app.include_router(alarm_pages.router)
    app.include_router(recipient.router)
    recipient.redact_access_log()
    return app
