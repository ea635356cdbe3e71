"""FastAPI dependencies shared by every router.

Use them through the ``Annotated`` aliases::

    @router.post("")
    def create_site(
        body: SiteCreate,
        session: SessionDep,
        audit: AuditDep,
        client: ClientContext,
        principal: Annotated[Principal, Depends(require_roles(Role.operator))],
    ) -> SitePublic: ...

* ``SessionDep``: one session per request, committed when the handler returns
  normally (before the response is sent, so a failing commit still becomes an error
  response), rolled back when it raises.
* ``CurrentPrincipal``: the authenticated caller (``Authorization: Bearer <JWT or API
  key>``); missing credentials → 401 (not audited: that is only noise); invalid,
  expired or revoked credentials → 401, audited as ``auth.token_rejected``.
* ``require_roles(*roles)``: the principal if its role is listed (admin always passes),
  else ``PermissionDenied``. Every ``PermissionDenied`` raised while handling a request,
  here or in a service, is audited once as ``access.denied`` by the error mapping
  (``locker_server.api.errors``), in its own transaction. Do not audit it yourself.
* ``record_refusal(request, ...)``: audit any other refusal in its own short
  transaction, so it survives the rollback of the request's session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.api.forwarding import client_address
from locker_server.audit import Actor, AuditEvent, AuditLog
from locker_server.auth.errors import CredentialsRejected
from locker_server.auth.principal import Principal
from locker_server.auth.principals import authenticate_credential
from locker_server.auth.roles import Role
from locker_server.config import Settings
from locker_server.db import session_scope
from locker_server.errors import AuthenticationFailed, PermissionDenied
from locker_server.keys import ServerKeys
from locker_server.notifications import Notifier
from locker_server.services.outbound import Publisher

logger = logging.getLogger(__name__)

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105  (a path, not a secret)

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description=(
        "Users: a bearer token from the password flow. "
        "Carrier integrations: `Authorization: Bearer lk_<prefix>_<secret>` (an API key)."
    ),
)

#: Largest id accepted in a path: fits a 32-bit signed integer column on every backend.
MAX_ID = 2**31 - 1


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_keys(request: Request) -> ServerKeys:
    keys: ServerKeys = request.app.state.keys
    return keys


def get_audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


def get_link_publisher(request: Request) -> Publisher | None:
    """Where this process publishes to cabinets (``create_app``'s ``link_publisher``);
    ``None`` when it serves without a cabinet link."""
    publisher: Publisher | None = request.app.state.link_publisher
    return publisher


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[ServerKeys, Depends(get_keys)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
LinkPublisherDep = Annotated[Publisher | None, Depends(get_link_publisher)]

#: A positive database id in a path, e.g. ``site_id: IdPath`` (bounded so no backend overflows).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request came from, for the audit log's "where"."""

    channel: str
    source: str | None
    method: str
    path: str


def get_client_info(request: Request) -> ClientInfo:
    peer = request.client.host if request.client else None
    proxies = request.app.state.settings.trusted_proxies
    source = client_address(peer, request.headers.get("x-forwarded-for"), proxies)
    path = request.url.path
    channel = "api" if path.startswith("/api/") else "web"
    return ClientInfo(channel=channel, source=source, method=request.method, path=path)


ClientContext = Annotated[ClientInfo, Depends(get_client_info)]


def record_refusal(
    request: Request,
    *,
    action: str,
    reason: str,
    outcome: str = "denied",
    actor: Actor | None = None,
    **targets: Any,
) -> None:
    """Audit a refusal in its own transaction (the request's own session will roll back).

    ``targets`` are the audit event's id fields (``site_id``, ``cabinet_id``, ``door_id``,
    ``parcel_id``, ``recipient_id``) and optionally ``details``. ``reason`` must carry no
    personal data and no secret.
    """
    client = get_client_info(request)
    details = {"method": client.method, "path": client.path, **targets.pop("details", {})}
    event = AuditEvent(
        action=action,
        actor=actor or _request_actor(request),
        outcome=outcome,
        channel=client.channel,
        source=client.source,
        reason=reason,
        details=details,
        **targets,
    )
    _append_alone(request.app.state.engine, request.app.state.audit, event)


def _request_actor(request: Request) -> Actor:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.actor if principal is not None else Actor(type="anonymous")


def _append_alone(engine: Engine, audit: AuditLog, event: AuditEvent) -> None:
    try:
        with session_scope(engine) as session:
            audit.record(session, event)
    except Exception:
        # The refusal itself still stands; losing its audit entry is an operations alarm.
        logger.exception("could not audit refusal %s", event.action)


def get_current_principal(
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    credential: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    if not credential:
        raise AuthenticationFailed("not authenticated")
    try:
        principal = authenticate_credential(session, keys, credential)
    except CredentialsRejected as exc:
        record_refusal(request, action="auth.token_rejected", reason=exc.reason)
        raise
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """Dependency factory: the current principal if it holds one of ``roles`` (or is admin)."""
    allowed = frozenset(roles) | {Role.admin}

    def _require(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PermissionDenied(f"role {principal.role.value} may not do this")
        return principal

    return _require


def require_site(principal: Principal, site_id: int) -> None:
    """Raise ``PermissionDenied`` unless ``principal`` may act on ``site_id``."""
    if not principal.can_access_site(site_id):
        raise PermissionDenied(f"no access to site {site_id}")


ItemT = TypeVar("ItemT")

# Pagination convention for list endpoints: ?limit=&offset=, answered with a Page.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int


def get_page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(get_page_params)]


class Page(BaseModel, Generic[ItemT]):
    """A page of a list: ``items`` plus the ``total`` number matching the filters."""

    items: list[ItemT] = Field(description="The items of this page")
    total: int = Field(description="Every item matching the filters and the caller's scope")
    limit: int = Field(description="The most items a page holds (?limit=)")
    offset: int = Field(description="Items skipped before this page (?offset=)")
