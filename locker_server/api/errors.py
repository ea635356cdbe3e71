"""The one place where errors become HTTP responses.

Every error answer has the same envelope::

    {"error": {"code": "not_found", "message": "parcel 7 not found", "fields": []}}

* ``DomainError`` (``locker_server.errors``) → its ``http_status`` and ``code``; a domain
  error may carry ``fields`` (a list of ``{"field", "reason"}``) and ``retry_after``
  (→ ``Retry-After``, on every 429). ``PermissionDenied``
  is audited here as ``access.denied`` (own transaction), whoever raised it.
* Request validation → 422 ``validation_failed``, one field entry per problem
  (``{"field": "body.email", "reason": "value is not a valid email address"}``).
* ``IntegrityError`` → 409 ``conflict``; ``DataError`` (value out of range for the
  database, NUL in text) and the SQLite driver's ``OverflowError`` (an integer beyond
  64 bits) → 422 ``validation_failed``: bad input is never a 500. Routes should still
  bound their ids (``IdPath``, ``le=MAX_ID``); this is the safety net.
* Starlette HTTP errors (unknown route, wrong method) → the same envelope; a 405 carries
  ``Allow`` with every method the path serves.
* ``ErrorResponse`` is the envelope's schema, documented for every operation's error
  statuses by ``locker_server.api.openapi``.
* Anything else → 500 ``internal_error`` with an ``error_id`` that is logged with the
  traceback; no exception text reaches the client.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from locker_server.api.deps import record_refusal
from locker_server.errors import AuthenticationFailed, DomainError, PermissionDenied

logger = logging.getLogger(__name__)


class ErrorField(BaseModel):
    """One problem with the request."""

    field: str = Field(description="Where: body.email, query.limit, path.site_id, or a name")
    reason: str = Field(description="What is wrong with it, for people")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: not_found, validation_failed, ...")
    message: str = Field(description="For people; never personal data or a secret")
    fields: list[ErrorField] = Field(description="Each field at fault (may be empty)")
    error_id: str | None = Field(
        default=None, description="Only on 500: the id under which the server logged the error"
    )


class ErrorResponse(BaseModel):
    """The envelope of every error answer."""

    error: ErrorDetail


_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"})

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, message: str, fields: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": list(fields)}}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Sequence[dict[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


def handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, PermissionDenied):
        record_refusal(request, action="access.denied", reason=exc.message)
    fields = getattr(exc, "fields", None) or ()
    return error_response(exc.http_status, exc.code, exc.message, fields, _headers_of(exc))


def _headers_of(exc: DomainError) -> dict[str, str] | None:
    headers = {}
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, exc.retry_after))
    return headers or None


def _field_name(location: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in location)


def handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field_name(error.get("loc", ())), "reason": str(error.get("msg", "invalid"))}
        for error in exc.errors()
    ]
    return error_response(422, "validation_failed", "the request is not valid", fields)


def handle_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.info("integrity conflict: %s", type(getattr(exc, "orig", exc)).__name__)
    return error_response(409, "conflict", "the change conflicts with existing data")


def handle_statement_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StatementError)
    if isinstance(exc, DataError) or isinstance(exc.orig, OverflowError | ValueError):
        return error_response(422, "validation_failed", "a value is not acceptable to store")
    return handle_unexpected_error(request, exc)


def handle_overflow(_request: Request, exc: Exception) -> JSONResponse:
    logger.info("number out of range for the database: %s", exc)
    return error_response(422, "validation_failed", "a number is too large")


def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    allowed = _allowed_methods(request) if exc.status_code == 405 else None
    if allowed:
        headers["Allow"] = allowed
    return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)


def _allowed_methods(request: Request) -> str | None:
    """The methods the OpenAPI document lists for this path (a literal path first, else
    every template it fits), so ``Allow`` and the document always agree."""
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    path = request.url.path
    operations = paths.get(path)
    if operations is None:
        fitting = [ops for template, ops in paths.items() if _fits(template, path)]
        operations = {method: op for ops in fitting for method, op in ops.items()}
    methods = sorted(method.upper() for method in operations if method.upper() in _METHODS)
    return ", ".join(methods) or None


def _fits(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex
    logger.error(
        "unexpected error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc
    )
    body = error_body("internal_error", "internal server error")
    body["error"]["error_id"] = error_id
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(IntegrityError, handle_integrity_error)
    app.add_exception_handler(StatementError, handle_statement_error)
    app.add_exception_handler(OverflowError, handle_overflow)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected_error)
