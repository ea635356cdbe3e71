"""Finding a cabinet, and who a cabinet is in the audit log.

Every service that starts from a cabinet id (configuration, parcels, door events,
commands, allow-list sync, offline pickups) and the provisioning tooling (which is given
a code or an id on the command line) look the cabinet up here, so "not found" and "not
in your sites" read the same everywhere. :func:`cabinet_caller` is the one identity a
cabinet has in the audit log (``actor: cabinet/<code>``, ``channel: cabinet``).
"""

from __future__ import annotations

from sqlmodel import Session, select

from locker_server.audit import Actor
from locker_server.errors import Conflict, NotFound
from locker_server.models import Cabinet
from locker_server.services.context import Caller

#: The sites a principal may see; ``None`` = every site.
Scope = frozenset[int] | None


def in_scope(site_id: int, site_ids: Scope) -> bool:
    return site_ids is None or site_id in site_ids


def get_cabinet(session: Session, cabinet_id: int, *, site_ids: Scope = None) -> Cabinet:
    """The cabinet with this id; ``NotFound`` if there is none or it is outside ``site_ids``."""
    cabinet = session.get(Cabinet, cabinet_id)
    if cabinet is None or not in_scope(cabinet.site_id, site_ids):
        raise NotFound(f"cabinet {cabinet_id} not found")
    return cabinet


def cabinet_by_code(session: Session, code: str) -> Cabinet | None:
    """The cabinet whose code (its MQTT user name) is ``code``, if there is one."""
    return session.exec(select(Cabinet).where(Cabinet.code == code)).first()


def find_cabinet(session: Session, reference: str) -> Cabinet:
    """The cabinet whose code is ``reference``, or whose database id it is (if unambiguous)."""
    by_code = cabinet_by_code(session, reference)
    by_id = session.get(Cabinet, int(reference)) if reference.isdigit() else None
    if by_code is not None and by_id is not None and by_code.id != by_id.id:
        raise Conflict(f"{reference!r} is one cabinet's code and another cabinet's id")
    cabinet = by_code or by_id
    if cabinet is None:
        raise NotFound(f"no cabinet {reference!r}")
    return cabinet


def cabinet_caller(code: str) -> Caller:
    """The audit identity of the cabinet whose code (= MQTT user) is ``code``."""
    return Caller(actor=Actor(type="cabinet", id=code), channel="cabinet", source=code)
