"""The courier desk over the link: a cabinet's ``req`` in, one signed ``res`` out.

A thin adapter: it decodes nothing itself (ingest hands it the request), lets
:func:`locker_server.services.courier_desk.answer_request` decide and audit in one
transaction, and publishes the signed answer after the commit. When the answer reserved
or released a door it also sends the cabinet its reservations (so that parcel can be
deposited even if the link drops now); a failure there is logged, never undoes the
answer. A redelivered request is answered again; the cabinet drops the second reply
(it no longer waits for that ``request_id``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from locker_contract import topics
from locker_contract.desk import Request, UnsignedReply
from locker_server.db import session_scope
from locker_server.link.bridge import LinkPublisher
from locker_server.services import cabinet_sync, courier_desk, outbound
from locker_server.services.cabinets import get_cabinet
from locker_server.services.context import DomainDeps


def answer(
    engine: Engine,
    deps: DomainDeps,
    out: LinkPublisher,
    *,
    cabinet_id: int,
    cabinet_code: str,
    request: Request,
) -> None:
    """Carry out ``request`` of the cabinet and publish the signed reply on its ``res``."""
    with session_scope(engine) as session:
        cabinet = get_cabinet(session, cabinet_id)
        outcome = courier_desk.answer_request(session, deps, cabinet=cabinet, request=request)
    body = UnsignedReply(
        request_id=request.request_id,
        expires_at=request.expires_at,
        answer=outcome.answer,
        key_id=outbound.key_id(deps.keys),
    )
    out.publish(topics.res(cabinet_code), outbound.reply(deps.keys, cabinet_code, body))
    if outcome.reservations_changed:
        with session_scope(engine) as session:
            cabinet_sync.try_send_reservations(session, out, keys=deps.keys, cabinet_id=cabinet_id)
