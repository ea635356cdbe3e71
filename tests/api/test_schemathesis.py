"""Bad input never produces a 500: schemathesis fuzzes every operation of /openapi.json.

Every operation of the full app (every router present) gets valid and invalid
requests generated from the schema, sent with an admin token so they pass the
authentication layer and reach the handlers, and each answer must not be a 5xx.
``LOCKER_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 12),
which keeps the run near a minute on both databases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.api.conftest import AuthHeaders

EXAMPLES = int(os.environ.get("LOCKER_FUZZ_EXAMPLES", "12"))


def _fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

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
