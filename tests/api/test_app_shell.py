"""The app factory mounts every resource and wires the shared services."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from locker_server.api.app import ROUTERS
from locker_server.audit import AuditLog
from locker_server.cli import build_parser
from locker_server.notifications import Notifier

ISSUE_RESOURCES = (
    "/api/v1/sites",
    "/api/v1/cabinets",
    "/api/v1/cabinets/{cabinet_id}/doors",
    "/api/v1/parcels",
    "/api/v1/recipients",
    "/api/v1/couriers",
    "/api/v1/audit/events",
    "/api/v1/audit/verify",
    "/api/v1/audit/export",
    "/api/v1/auth/token",
    "/healthz",
)


def test_every_listed_router_and_every_resource_of_the_issue_is_served(
    app: FastAPI, client: TestClient
) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])

    for router in ROUTERS:
        assert any(path.startswith(router.prefix) for path in paths), router.prefix
    assert set(ISSUE_RESOURCES) <= paths


def test_app_state_holds_the_shared_services(app: FastAPI) -> None:
    assert isinstance(app.state.audit, AuditLog)
    assert isinstance(app.state.notifier, Notifier)
    assert app.state.keys.token_signing_key != app.state.keys.pickup_hmac_key


def test_the_cli_offers_the_commands_other_tools_rely_on() -> None:
    help_text = build_parser().format_help()

    for word in ("serve", "migrate", "user", "apikey", "audit", "site", "cabinet", "door"):
        assert f"    {word} " in help_text or f"    {word}\n" in help_text, word
