"""``/api/v1/audit``: read, verify and export the tamper-evident audit log.

Security staff and admins only. A site-limited principal sees only entries of its sites
(entries without a site, such as logins, are not theirs to see) and asking for another
site is refused (``PermissionDenied``, audited as ``access.denied``). Every call is itself
recorded: ``audit.viewed``, ``audit.verified``, ``audit.exported``. Verification bundles
are exported with the CLI (``locker-server audit export --format bundle``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlmodel import Session

from locker_server.api.deps import (
    MAX_ID,
    AuditDep,
    ClientContext,
    ClientInfo,
    Page,
    PageDep,
    SessionDep,
    require_roles,
)
from locker_server.audit import export, service
from locker_server.audit.export import EntryFilter
from locker_server.audit.service import Reader
from locker_server.auth.principal import Principal
from locker_server.auth.roles import Role
from locker_server.errors import PermissionDenied, ValidationFailed

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

SecurityStaff = Annotated[Principal, Depends(require_roles(Role.security))]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
ActionPrefix = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z0-9_.]{1,64}$",
        description="action prefix, e.g. `parcel.` or `auth.login`",
    ),
]
Since = Annotated[datetime | None, Query(alias="from", description="from this time (ISO 8601)")]
Until = Annotated[datetime | None, Query(alias="to", description="before this time (ISO 8601)")]


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class AuditEntryPublic(BaseModel):
    seq: int
    recorded_at: str
    device_time: str | None
    actor_type: str
    actor_id: str | None
    action: str
    outcome: str
    site_id: int | None
    cabinet_id: int | None
    door_id: int | None
    parcel_id: int | None
    recipient_id: int | None
    channel: str
    source: str | None
    reason: str | None
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class FindingPublic(BaseModel):
    kind: str
    seq: int
    message: str


class VerificationPublic(BaseModel):
    ok: bool
    entries_checked: int
    checkpoints_checked: int
    last_seq: int
    last_entry_hash: str
    latest_checkpoint_seq: int | None
    first_bad_seq: int | None
    kind: str | None
    message: str
    #: Checkpoints of the server's witness file held against the database (0: no witness).
    witness_checked: int = 0
    #: Every problem found, first position first.
    findings: list[FindingPublic] = []


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationFailed(f"{name} is out of range") from exc


def get_entry_filter(
    principal: SecurityStaff,
    since: Since = None,
    until: Until = None,
    action: ActionPrefix = None,
    site_id: OptionalId = None,
    cabinet_id: OptionalId = None,
    parcel_id: OptionalId = None,
) -> EntryFilter:
    """The query's filter, narrowed to the principal's sites."""
    if site_id is not None and not principal.can_access_site(site_id):
        raise PermissionDenied(f"no access to site {site_id}")
    return EntryFilter(
        since=_utc(since, "from"),
        until=_utc(until, "to"),
        action_prefix=action,
        site_id=site_id,
        cabinet_id=cabinet_id,
        parcel_id=parcel_id,
        allowed_sites=principal.site_ids,
    )


FilterDep = Annotated[EntryFilter, Depends(get_entry_filter)]


def _reader(principal: Principal, client: ClientInfo) -> Reader:
    return Reader(actor=principal.actor, channel=client.channel, source=client.source)


@router.get("/events", response_model=Page[AuditEntryPublic])
def list_events(
    entry_filter: FilterDep,
    page: PageDep,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: SecurityStaff,
) -> Page[AuditEntryPublic]:
    """Entries matching the filters, oldest first (``limit``/``offset`` paging)."""
    result = service.list_entries(
        audit,
        session,
        _reader(principal, client),
        entry_filter,
        limit=page.limit,
        offset=page.offset,
    )
    items = [AuditEntryPublic(**entry) for entry in result.entries]
    return Page(items=items, total=result.total, limit=page.limit, offset=page.offset)


@router.get("/verify", response_model=VerificationPublic)
def verify(
    session: SessionDep, audit: AuditDep, client: ClientContext, principal: SecurityStaff
) -> VerificationPublic:
    """Verify the whole chain, every checkpoint, the checkpoint cadence and the server's
    witness file; names the first bad entry and the kind."""
    report = service.verify_log(audit, session, _reader(principal, client))
    return VerificationPublic(**report.to_dict())


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def export_entries(
    request: Request,
    entry_filter: FilterDep,
    session: SessionDep,
    audit: AuditDep,
    client: ClientContext,
    principal: SecurityStaff,
    format: Annotated[ExportFormat, Query()] = ExportFormat.jsonl,
) -> StreamingResponse:
    """Matching entries as CSV or JSON Lines, streamed (each with its hashes)."""
    service.record_export(
        audit, session, _reader(principal, client), entry_filter, export_format=format.value
    )
    lines = _stream(request.app.state.engine, format, entry_filter)
    media_type = "text/csv" if format is ExportFormat.csv else "application/x-ndjson"
    filename = f"audit-export.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(lines, media_type=media_type, headers=headers)


def _stream(engine: Any, export_format: ExportFormat, entry_filter: EntryFilter) -> Iterator[str]:
    # Its own session: the request's session is committed and closed before the body streams.
    with Session(engine) as session:
        if export_format is ExportFormat.csv:
            yield from export.csv_lines(session, entry_filter)
        else:
            yield from export.jsonl_lines(session, entry_filter)
