"""The API fixtures of ``tests/api`` (app, client, users, sites), for the audit routes' tests."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401  (fixtures are found by name)
    app,
    audit_entries,
    client,
    make_site,
    make_user,
)
