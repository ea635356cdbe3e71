"""Who is calling: a user, a carrier API key or a cabinet, with its role and scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from locker_server.audit import Actor
from locker_server.auth.roles import Role

PrincipalKind = Literal["user", "api_key", "cabinet"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. Built per request from the database, never from the token alone.

    ``site_ids`` is ``None`` for "all sites"; a frozenset limits the principal to those
    sites (operators and security staff). ``carrier_id`` is set for couriers and carrier
    API keys, ``courier_id`` for courier users.
    """

    kind: PrincipalKind
    id: int
    name: str
    role: Role
    site_ids: frozenset[int] | None = None
    carrier_id: int | None = None
    courier_id: int | None = None

    def can_access_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def actor(self) -> Actor:
        """The audit ``Actor`` for this principal (type ``user``/``api_key``/``cabinet``)."""
        return Actor(type=self.kind, id=str(self.id))
