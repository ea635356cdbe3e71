"""User accounts: creation, changes of role and site scope, listing.

Shared by the API (``/api/v1/users``) and the CLI (``locker-server user ...``); every
change is audited in the caller's transaction (``user.created``, ``role.changed``,
``user.updated``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from locker_server.audit import AuditLog
from locker_server.auth.models import User, UserSite
from locker_server.auth.origin import Origin
from locker_server.auth.passwords import hash_password
from locker_server.auth.roles import SITE_SCOPED_ROLES, USER_ROLES, Role
from locker_server.errors import Conflict, NotFound, ValidationFailed
from locker_server.models import Courier, Site
from locker_server.models.people import EMAIL_PATTERN
from locker_server.notifications import StaffContact

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_MAX_EMAIL = 254


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    password: str
    role: Role
    site_ids: tuple[int, ...] = ()
    courier_id: int | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class UserChange:
    """Fields left ``None`` stay as they are; ``site_ids=()`` means all sites."""

    role: Role | None = None
    active: bool | None = None
    site_ids: tuple[int, ...] | None = None
    courier_id: int | None = None
    password: str | None = None
    #: Only with ``change_email``: the new address, None to remove it.
    email: str | None = None
    change_email: bool = False


def create_user(session: Session, audit: AuditLog, origin: Origin, new: NewUser) -> User:
    _check_username(new.username)
    _check_email(new.email)
    _check_role(new.role, new.site_ids, new.courier_id)
    _check_sites_exist(session, new.site_ids)
    _check_courier_exists(session, new.courier_id)
    if session.exec(select(User.id).where(User.username == new.username)).first() is not None:
        raise Conflict("a user with this username already exists")
    user = User(
        username=new.username,
        password_hash=hash_password(new.password),
        role=new.role.value,
        all_sites=not new.site_ids,
        courier_id=new.courier_id,
        email=new.email,
    )
    session.add(user)
    session.flush()
    _replace_sites(session, user, new.site_ids)
    audit.record(session, origin.event("user.created", details=_scope_details(user, new.site_ids)))
    return user


def update_user(
    session: Session, audit: AuditLog, origin: Origin, user_id: int, change: UserChange
) -> User:
    _check_email(change.email)
    user = get_user(session, user_id)
    before = (user.role, site_ids_of(session, user))
    role = change.role or Role(user.role)
    site_ids = change.site_ids if change.site_ids is not None else before[1]
    courier_id = change.courier_id if change.courier_id is not None else user.courier_id
    _check_role(role, site_ids, courier_id)
    _check_sites_exist(session, site_ids)
    _check_courier_exists(session, courier_id)
    _keep_an_admin(session, user, role, change.active)
    _apply(session, user, role, site_ids, courier_id, change)
    after = (user.role, site_ids_of(session, user))
    if after != before:
        details = {"from_role": before[0], "from_sites": list(before[1])}
        details |= _scope_details(user, site_ids)
        audit.record(session, origin.event("role.changed", details=details))
    if change.active is not None or change.password is not None or change.change_email:
        audit.record(session, origin.event("user.updated", details=_account_details(user, change)))
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    total = session.exec(select(func.count()).select_from(User)).one()
    rows = session.exec(select(User).order_by(col(User.id)).limit(limit).offset(offset))
    return list(rows.all()), int(total)


def alarm_contacts(session: Session, site_id: int, /) -> list[StaffContact]:
    """The active operators of ``site_id`` (limited to it, or to no site) with an e-mail
    address: who is told about the site's new alarms."""
    of_site = select(UserSite.user_id).where(UserSite.site_id == site_id)
    query = (
        select(User)
        .where(User.role == Role.operator.value, col(User.active), col(User.email).is_not(None))
        .where(col(User.all_sites) | col(User.id).in_(of_site))
        .order_by(col(User.id))
    )
    return [
        StaffContact(user_id=user.id, email=user.email)
        for user in session.exec(query).all()
        if user.id is not None and user.email
    ]


def site_ids_of(session: Session, user: User) -> tuple[int, ...]:
    """The sites a user is limited to; empty when the user may act on all sites."""
    if user.all_sites:
        return ()
    query = select(UserSite.site_id).where(UserSite.user_id == user.id)
    return tuple(sorted(session.exec(query).all()))


def _apply(
    session: Session,
    user: User,
    role: Role,
    site_ids: tuple[int, ...],
    courier_id: int | None,
    change: UserChange,
) -> None:
    user.role = role.value
    user.courier_id = courier_id if role is Role.courier else None
    if change.active is not None:
        user.active = change.active
    if change.password is not None:
        user.password_hash = hash_password(change.password)
    if change.change_email:
        user.email = change.email
    user.all_sites = not site_ids
    session.add(user)
    _replace_sites(session, user, site_ids)


def _replace_sites(session: Session, user: User, site_ids: Iterable[int]) -> None:
    assert user.id is not None
    session.exec(delete(UserSite).where(col(UserSite.user_id) == user.id))
    for site_id in sorted(set(site_ids)):
        session.add(UserSite(user_id=user.id, site_id=site_id))
    session.flush()


def _check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise ValidationFailed(
            "a username has 3-64 characters: letters, digits and . _ @ -, starting with a "
            "letter or digit"
        )


def _check_email(email: str | None) -> None:
    if email is not None and (len(email) > _MAX_EMAIL or not _EMAIL.match(email)):
        raise ValidationFailed("an e-mail address looks like name@example.org")


def _check_role(role: Role, site_ids: Sequence[int], courier_id: int | None) -> None:
    if role not in USER_ROLES:
        raise ValidationFailed(f"role {role.value} is not for user accounts")
    if site_ids and role not in SITE_SCOPED_ROLES:
        raise ValidationFailed("only operators and security staff can be limited to sites")
    if role is Role.courier and courier_id is None:
        raise ValidationFailed("a courier account needs the courier it belongs to")


def _check_sites_exist(session: Session, site_ids: Sequence[int]) -> None:
    for site_id in site_ids:
        if session.get(Site, site_id) is None:
            raise NotFound(f"site {site_id} not found")


def _check_courier_exists(session: Session, courier_id: int | None) -> None:
    if courier_id is not None and session.get(Courier, courier_id) is None:
        raise NotFound(f"courier {courier_id} not found")


def _keep_an_admin(session: Session, user: User, role: Role, active: bool | None) -> None:
    stays_admin = role is Role.admin and active is not False
    if user.role != Role.admin or not user.active or stays_admin:
        return
    query = select(func.count()).select_from(User)
    others = query.where(User.role == Role.admin.value, col(User.active), User.id != user.id)
    if session.exec(others).one() == 0:
        raise Conflict("the last active admin cannot be demoted or deactivated")


def _scope_details(user: User, site_ids: Sequence[int]) -> dict[str, Any]:
    return {"user_id": user.id, "role": user.role, "sites": sorted(set(site_ids))}


def _account_details(user: User, change: UserChange) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "active": user.active,
        "password_changed": change.password is not None,
        "email_changed": change.change_email,
    }


def usernames(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """User names by id (for showing who an audit entry's ``user`` actor is)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = session.exec(select(User).where(col(User.id).in_(wanted)))
    return {user.id: user.username for user in rows if user.id is not None}


def user_id_by_name(session: Session, username: str) -> int | None:
    user = session.exec(select(User).where(User.username == username)).first()
    return user.id if user else None


def console_language(session: Session, user_id: int) -> str | None:
    user = session.get(User, user_id)
    return user.language if user is not None else None


def remember_console_language(session: Session, user_id: int, language: str) -> None:
    """Keep the language a user chose in the console for their next visit (any browser)."""
    user = session.get(User, user_id)
    if user is not None and user.language != language:
        user.language = language
        session.add(user)
