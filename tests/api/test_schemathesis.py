"""Bad input never produces a 500, and every answer is one the document promises:
schemathesis fuzzes every operation of /openapi.json.

Every operation of the full app (every router present) gets valid and invalid
requests generated from the schema, sent with an admin token so they pass the
authentication layer and reach the handlers. Each answer must not be a 5xx, and its
status and content type must be documented for the operation. A method a path does not
serve answers 405 with ``Allow`` naming exactly the documented methods.
``LOCKER_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 12),
which keeps the run near a minute on both databases.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.api.conftest import AuthHeaders

EXAMPLES = int(os.environ.get("LOCKER_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
UNUSUAL = ("PUT", "DELETE", "OPTIONS", "TRACE")


def _fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        # No invalid request exists for an operation without inputs (GET /healthz).
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_no_operation_answers_a_server_error_to_generated_input(
    app: FastAPI, admin_headers: AuthHeaders, make_site: Callable[[str], int]
) -> None:
    make_site("Fuzzed site")  # so that some generated ids name a real row
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, dict(admin_headers))
        fuzzed.append(operation.label)

    assert "POST /api/v1/auth/token" in fuzzed
    assert "PATCH /api/v1/users/{user_id}" in fuzzed


def test_a_method_a_path_does_not_serve_gets_405_naming_the_documented_methods(
    client: TestClient, admin_headers: AuthHeaders
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for template, operations in paths.items():
        documented = {method.upper() for method in operations}
        path = _concrete(template)
        for method in sorted(set(UNUSUAL) - documented):
            response = client.request(method, path, headers=admin_headers)
            assert response.status_code == 405, (method, path)
            assert response.json()["error"]["code"] == "method_not_allowed"
            allowed = {part.strip() for part in response.headers["Allow"].split(",")}
            assert allowed == documented, (method, path)


def test_every_error_status_is_documented_in_the_one_envelope(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/healthz":  # no input, no credentials: its 503 is {"status": ...}
                continue
            errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
            assert errors, (method, path)
            for status, response in errors.items():
                assert response["content"]["application/json"]["schema"] == envelope
                assert response["description"], (method, path, status)
    secured = document["paths"]["/api/v1/sites/{site_id}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(secured)
    assert (
        "Retry-After" in document["paths"]["/api/v1/pickups"]["post"]["responses"]["429"]["headers"]
    )
    assert "HTTPValidationError" not in document["components"]["schemas"]


def _concrete(template: str) -> str:
    """The path with every ``{name}`` replaced by an id, e.g. /api/v1/sites/1."""
    return re.sub(r"\{[^}]+\}", "1", template)
