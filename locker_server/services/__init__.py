"""Domain services: plain functions taking a session, a :class:`DomainDeps` and a
:class:`Caller`, raising errors from :mod:`locker_server.errors`. Routes, the CLI and
(later) the cabinet link all drive the same functions.

* :mod:`.config` sites, cabinets, doors (``config.*`` audit entries)
* :mod:`.directory` recipients, carriers, couriers
* :mod:`.lifecycle` the transition table and ``move``
* :mod:`.allocation` smallest fitting free door, concurrency-safe
* :mod:`.parcels` announce, reserve, ``record_deposit``, cancel, extensions, sweeps
* :mod:`.credentials` pickup codes/QR tokens (HMAC only) and lockout counters
* :mod:`.pickup` ``attempt_pickup``
* :mod:`.doors` ``record_door_event``, ``request_remote_open``
"""

from locker_server.services.context import SYSTEM, Caller, DomainDeps, Target

__all__ = ["SYSTEM", "Caller", "DomainDeps", "Target"]
