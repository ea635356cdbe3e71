"""Document in ``/openapi.json`` the errors each operation can really answer.

FastAPI documents only the success status and a 422 in its own ``{"detail": ...}`` shape,
which this server never sends. ``document_errors(app)`` gives every operation the
statuses it can answer, each with the one error envelope (``ErrorResponse``):

* 401, 403 for every operation that needs credentials (all but the public ones);
* 404 for operations that name an object (a path id) or change something (a body may
  name one: ``site_id``, ``recipient_id``);
* 409 for operations that change something;
* 422 for operations that take any input, 400 for those with a body (unreadable JSON);
* extra statuses of single operations (429 at login and pickup, 503 for remote opens).

It runs once, after the routers are mounted and before the schema is first built.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from locker_server.api.errors import ErrorResponse

_REF = "#/components/schemas/"
PUBLIC_PATHS = frozenset({"/healthz", "/api/v1/auth/token"})
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the attempt is checked again",
        "schema": {"type": "integer", "minimum": 1},
    }
}

DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be read: not JSON, or not in its declared encoding (`bad_request`)",
    401: "No credentials, or invalid, expired or revoked ones (`authentication_failed`)",
    403: "The role or site scope does not allow this (`permission_denied`)",
    404: "An id that does not exist or lies outside the caller's scope (`not_found`)",
    409: (
        "Conflicts with existing data or with the object's state "
        "(`conflict`, `invalid_transition`, `no_door_available`, `alarm_already_acknowledged`)"
    ),
    422: "The request is not valid; `fields` names each problem (`validation_failed`)",
    429: "Too many failed attempts; `Retry-After` says when to try again",
    503: "No cabinet link runs in this server (`link_unavailable`); the command is kept as failed",
}

#: Statuses only some operations answer, by (method, path).
EXTRA: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/api/v1/auth/token"): {
        401: "Incorrect username or password (`authentication_failed`)",
        429: "Too many failed logins (`too_many_attempts`); `Retry-After` says when to retry",
    },
    ("POST", "/api/v1/pickups"): {
        403: "Unknown or wrong code, or an expired parcel (`pickup_refused`, the same answer)",
        429: "Too many failed attempts at this door or cabinet (`locked_out`)",
    },
    ("POST", "/api/v1/cabinets/{cabinet_id}/doors/{door_id}/open"): {503: DESCRIPTIONS[503]},
}


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` build the schema with every operation's error statuses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _add_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _add_errors(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    envelope = ErrorResponse.model_json_schema(ref_template=f"{_REF}{{model}}")
    components.update(envelope.pop("$defs", {}))
    components["ErrorResponse"] = envelope
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in sorted(_statuses(path, method.upper(), operation).items()):
                responses[str(status)] = _response(status, description)
    # FastAPI's own validation error shape is never sent: its 422s were replaced above.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _statuses(path: str, method: str, operation: dict[str, Any]) -> dict[int, str]:
    statuses: dict[int, str] = {}
    changes = method in CHANGES
    if path not in PUBLIC_PATHS:
        statuses |= {401: DESCRIPTIONS[401], 403: DESCRIPTIONS[403]}
        if "{" in path or changes:
            statuses[404] = DESCRIPTIONS[404]
        if changes:
            statuses[409] = DESCRIPTIONS[409]
    if operation.get("parameters") or "requestBody" in operation or changes:
        statuses[422] = DESCRIPTIONS[422]
    if "requestBody" in operation:
        statuses[400] = DESCRIPTIONS[400]
    return statuses | EXTRA.get((method, path), {})


def _response(status: int, description: str) -> dict[str, Any]:
    documented: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"{_REF}ErrorResponse"}}},
    }
    if status == 429:
        documented["headers"] = _RETRY_AFTER
    if status == 401:
        documented["headers"] = {
            "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
        }
    return documented
