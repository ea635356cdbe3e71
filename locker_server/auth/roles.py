"""The roles a principal can hold (docs/server.md, "Roles").

=========  ==============================================================
admin      everything, including users, roles and API keys
operator   sites, cabinets, doors, maintenance, remote open with a reason
courier    registers and deposits parcels for its own carrier
security   reads the audit log and alarms; acknowledges alarms, changes nothing else
cabinet    a machine identity used by the cabinet link
carrier    an API key of a carrier integration (announces parcels)
=========  ==============================================================

Operators and security staff may be limited to listed sites; the other roles are
not site-scoped (a courier is bounded by its carrier instead).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    courier = "courier"
    security = "security"
    cabinet = "cabinet"
    carrier = "carrier"


#: Roles whose access can be limited to a list of sites.
SITE_SCOPED_ROLES = frozenset({Role.operator, Role.security})

#: Roles a human user account may hold (carrier is for API keys, cabinet for machines).
USER_ROLES = frozenset({Role.admin, Role.operator, Role.courier, Role.security})

#: Who may acknowledge an alarm with a note (admins always may). Security staff change
#: nothing else: handling an alarm they watch is part of watching it.
ALARM_ACKNOWLEDGERS = frozenset({Role.operator, Role.security})
