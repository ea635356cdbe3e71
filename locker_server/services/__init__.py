"""Domain services: plain functions taking a session, a :class:`DomainDeps` and a
:class:`Caller`, raising errors from :mod:`locker_server.errors` and :mod:`.errors`.
Routes, the CLI and the cabinet link's ingest all drive the same functions.

* :mod:`.cabinets` the one cabinet lookup and a cabinet's audit identity
* :mod:`.layout` sites, cabinets, doors (``config.*`` audit entries)
* :mod:`.directory` recipients, carriers, couriers
* :mod:`.lifecycle` the transition table and ``move``
* :mod:`.allocation` smallest fitting free door, concurrency-safe
* :mod:`.parcels` announce, reserve, ``record_deposit``, cancel, extensions, sweeps
* :mod:`.credentials` pickup codes/QR tokens (HMAC only) and lockout counters
* :mod:`.pickup` ``attempt_pickup``
* :mod:`.doors` ``record_door_event``, ``request_remote_open``
* :mod:`.commands` signed door commands to a cabinet, their lifecycle, the kill switch
* :mod:`.cabinet_sync` a cabinet's offline allow-list and clock, kept in step
* :mod:`.offline_pickups` pickups a cabinet validated offline, reconciled once
* :mod:`.presence` a cabinet's online state and door snapshots
* :mod:`.cabinet_events` each cabinet event claimed once (``link_events``)
* :mod:`.outbound` the signing of everything sent to a cabinet; the ``Publisher`` port
"""

from locker_server.services.context import SYSTEM, Caller, DomainDeps, Target

__all__ = ["SYSTEM", "Caller", "DomainDeps", "Target"]
