"""Value sets of the domain, stored as short strings (no native database enums)."""

from __future__ import annotations

from enum import StrEnum


class ServiceState(StrEnum):
    in_service = "in_service"
    out_of_service = "out_of_service"


class DoorState(StrEnum):
    """Last door state a cabinet *reported*; ``unknown`` until it reports one."""

    open = "open"
    closed = "closed"
    unknown = "unknown"


class Occupancy(StrEnum):
    empty = "empty"
    reserved = "reserved"
    occupied = "occupied"


class Language(StrEnum):
    en = "en"
    zh_cn = "zh-CN"


class ParcelState(StrEnum):
    announced = "announced"
    reserved = "reserved"
    deposited = "deposited"
    notified = "notified"
    picked_up = "picked_up"
    expired = "expired"
    collected_for_return = "collected_for_return"
    returned = "returned"
    cancelled = "cancelled"


class CredentialKind(StrEnum):
    code = "code"
    qr = "qr"


class DoorEvent(StrEnum):
    """Door events a cabinet reports (audited as ``door.<event>``)."""

    opened = "opened"
    closed = "closed"
    forced_open = "forced_open"
    left_open = "left_open"
    jammed = "jammed"
