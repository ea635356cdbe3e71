"""``locker-server`` admin commands for the installation and the directory.

Top-level words owned here: ``site``, ``cabinet``, ``door``, ``recipient``, ``carrier``,
``courier``, ``parcel``. Every change goes through the same services as the API and is
audited with channel ``cli``. Examples::

    locker-server site add "Head office" --timezone Asia/Shanghai
    locker-server cabinet add 1 LOBBY-01 --name "Lobby"
    locker-server door add-range 1 --from 1 --to 24 --size M --board 1 --first-lock 1
    locker-server door out-of-service 7 --reason "lock coil burnt"
    locker-server carrier webhook-secret 2   # hex, to hand to the carrier (audited)
    printf '73915546' | locker-server courier add 1 "Li Wei" --code-stdin
    locker-server parcel sweep        # release reservations, send reminders, expire (cron)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from locker_server.audit import Actor
from locker_server.auth.users import alarm_contacts
from locker_server.broker import cli as broker_cli
from locker_server.cli_context import CliContext
from locker_server.db import session_scope
from locker_server.models import (
    CabinetCreate,
    CarrierCreate,
    CourierCreate,
    Door,
    DoorCreate,
    DoorUpdate,
    RecipientCreate,
    ServiceState,
    SiteCreate,
)
from locker_server.notifications import Notifier
from locker_server.services import Caller, DomainDeps, directory, layout, parcels
from locker_server.services.errors import InvalidField

_ACCESSIBLE = {True: "\taccessible", False: ""}
CLI_CALLER = Caller(actor=Actor(type="system", id="cli"), channel="cli", source=None)
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[argparse.Namespace, CliContext], int]


def _deps(ctx: CliContext) -> DomainDeps:
    notifier = Notifier(settings=ctx.settings, keys=ctx.keys)
    return DomainDeps(
        settings=ctx.settings, keys=ctx.keys, audit=ctx.audit, notifier=notifier,
        staff=alarm_contacts,
    )  # fmt: skip


def _valid(model: type[Model], data: dict[str, Any]) -> Model:
    """Build a request model; the first problem becomes an error naming the field."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "input"
        raise InvalidField(field, first["msg"]) from exc


def _print(ctx: CliContext, lines: Iterable[str]) -> int:
    for line in lines:
        print(line, file=ctx.out)
    return 0


def _command(parent: Any, name: str, handler: Handler, help_text: str) -> Any:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def register(subparsers: Any) -> None:
    for register_word in (_sites, _cabinets, _doors, _recipients, _carriers, _couriers, _parcels):
        register_word(subparsers)


# --- site --------------------------------------------------------------------------------------


def _sites(subparsers: Any) -> None:
    words = subparsers.add_parser("site", help="sites").add_subparsers(metavar="ACTION")
    add = _command(words, "add", site_add, "add a site")
    add.add_argument("name")
    add.add_argument("--timezone", default="UTC")
    add.add_argument("--address")
    _command(words, "list", site_list, "list sites")


def site_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(
        SiteCreate, {"name": args.name, "timezone": args.timezone, "address": args.address}
    )
    with session_scope(ctx.engine) as session:
        site = layout.create_site(session, _deps(ctx), body, caller=CLI_CALLER)
        return _print(ctx, [f"site {site.id} created: {site.name}"])


def site_list(_args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        sites = layout.list_sites(session)
        return _print(ctx, (f"{s.id}\t{s.name}\t{s.timezone}" for s in sites))


# --- cabinet -----------------------------------------------------------------------------------


def _cabinets(subparsers: Any) -> None:
    words = subparsers.add_parser("cabinet", help="cabinets").add_subparsers(metavar="ACTION")
    add = _command(words, "add", cabinet_add, "add a cabinet to a site")
    add.add_argument("site_id", type=int)
    add.add_argument("code", help="machine id: letters, digits, _ . - (no + # /)")
    add.add_argument("--name", required=True)
    listing = _command(words, "list", cabinet_list, "list cabinets")
    listing.add_argument("--site", type=int, dest="site_id")
    broker_cli.add_cabinet_commands(words)  # provision, decommission (the broker credential)


def cabinet_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(CabinetCreate, {"site_id": args.site_id, "code": args.code, "name": args.name})
    with session_scope(ctx.engine) as session:
        cabinet = layout.create_cabinet(session, _deps(ctx), body, caller=CLI_CALLER)
        return _print(ctx, [f"cabinet {cabinet.id} created: {cabinet.code}"])


def cabinet_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        cabinets = layout.list_cabinets(session, site_id=args.site_id)
        return _print(
            ctx,
            (
                f"{c.id}\t{c.code}\t{c.name}\tsite {c.site_id}\t"
                f"{'in service' if c.in_service and not c.maintenance else 'not in service'}"
                for c in cabinets
            ),
        )


# --- door --------------------------------------------------------------------------------------


def _doors(subparsers: Any) -> None:
    words = subparsers.add_parser("door", help="doors").add_subparsers(metavar="ACTION")
    add = _command(words, "add", door_add, "add one door to a cabinet")
    add.add_argument("cabinet_id", type=int)
    add.add_argument("--number", type=int, required=True)
    _door_hardware(add, lock_flag="--lock")
    bulk = _command(words, "add-range", door_add_range, "add numbered doors in one go")
    bulk.add_argument("cabinet_id", type=int)
    bulk.add_argument("--from", type=int, required=True, dest="first")
    bulk.add_argument("--to", type=int, required=True, dest="last")
    _door_hardware(bulk, lock_flag="--first-lock")
    listing = _command(words, "list", door_list, "list the doors of a cabinet")
    listing.add_argument("cabinet_id", type=int)
    out = _command(words, "out-of-service", door_out_of_service, "take a door out of service")
    out.add_argument("door_id", type=int)
    out.add_argument("--reason", required=True)
    back = _command(words, "in-service", door_in_service, "put a door back in service")
    back.add_argument("door_id", type=int)


def _door_hardware(parser: Any, *, lock_flag: str) -> None:
    parser.add_argument("--size", required=True, help="size class code, e.g. S, M, L, XL")
    parser.add_argument("--board", type=int, required=True)
    parser.add_argument(lock_flag, type=int, required=True, dest="lock")
    parser.add_argument("--accessible", action="store_true", help="accessible-height door")


def _add_doors(ctx: CliContext, cabinet_id: int, bodies: list[DoorCreate]) -> int:
    with session_scope(ctx.engine) as session:
        doors = layout.add_doors(session, _deps(ctx), cabinet_id, bodies, caller=CLI_CALLER)
        return _print(ctx, [f"{len(doors)} door(s) added to cabinet {cabinet_id}"])


def door_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(
        DoorCreate,
        {
            "number": args.number,
            "size": args.size,
            "board": args.board,
            "lock": args.lock,
            "accessible_height": args.accessible,
        },
    )
    return _add_doors(ctx, args.cabinet_id, [body])


def door_add_range(args: argparse.Namespace, ctx: CliContext) -> int:
    spec = layout.DoorRange(
        first_number=args.first,
        last_number=args.last,
        size=args.size,
        board=args.board,
        first_lock=args.lock,
        accessible_height=args.accessible,
    )
    try:
        bodies = layout.door_range(spec)
    except ValidationError as exc:
        raise InvalidField("door", str(exc.errors()[0]["msg"])) from exc
    return _add_doors(ctx, args.cabinet_id, bodies)


def door_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        codes = layout.size_codes(session)
        doors = layout.list_doors(session, args.cabinet_id)
        return _print(
            ctx,
            (
                f"{d.id}\t#{d.number}\t{codes[d.size_class_id]}\tboard {d.board} lock {d.lock}\t"
                f"{d.service_state}\t{d.occupancy}\t{d.door_state}"
                + _ACCESSIBLE[d.accessible_height]
                for d in doors
            ),
        )


def _set_service(ctx: CliContext, door_id: int, body: DoorUpdate) -> int:
    with session_scope(ctx.engine) as session:
        door = session.get(Door, door_id)
        if door is None:
            raise InvalidField("door_id", f"door {door_id} not found")
        layout.update_door(session, _deps(ctx), door.cabinet_id, door_id, body, caller=CLI_CALLER)
        return _print(ctx, [f"door {door_id} is now {door.service_state}"])


def door_out_of_service(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(
        DoorUpdate, {"service_state": ServiceState.out_of_service, "service_reason": args.reason}
    )
    return _set_service(ctx, args.door_id, body)


def door_in_service(args: argparse.Namespace, ctx: CliContext) -> int:
    return _set_service(ctx, args.door_id, DoorUpdate(service_state=ServiceState.in_service))


# --- recipient, carrier, courier ---------------------------------------------------------------


def _recipients(subparsers: Any) -> None:
    words = subparsers.add_parser("recipient", help="recipient directory").add_subparsers(
        metavar="ACTION"
    )
    add = _command(words, "add", recipient_add, "add a recipient")
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--phone")
    add.add_argument("--department")
    add.add_argument("--language", default="en", choices=["en", "zh-CN"])
    add.add_argument("--accessibility-need", action="store_true")
    add.add_argument("--consent", action="store_true", help="consents to locker delivery")
    _command(words, "list", recipient_list, "list recipients (ids and names)")


def recipient_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(
        RecipientCreate,
        {
            "name": args.name,
            "email": args.email,
            "phone": args.phone,
            "department": args.department,
            "language": args.language,
            "accessibility_need": args.accessibility_need,
            "consent_locker_delivery": args.consent,
        },
    )
    with session_scope(ctx.engine) as session:
        recipient = directory.create_recipient(session, _deps(ctx), body, caller=CLI_CALLER)
        return _print(ctx, [f"recipient {recipient.id} created"])


def recipient_list(_args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        recipients = directory.list_recipients(session)
        return _print(
            ctx,
            (
                f"{r.id}\t{r.name}\t{'consents' if r.consent_locker_delivery else 'no consent'}"
                for r in recipients
            ),
        )


def _carriers(subparsers: Any) -> None:
    words = subparsers.add_parser("carrier", help="carriers").add_subparsers(metavar="ACTION")
    add = _command(words, "add", carrier_add, "add a carrier")
    add.add_argument("name")
    add.add_argument("--webhook-url")
    _command(words, "list", carrier_list, "list carriers")
    secret = _command(
        words,
        "webhook-secret",
        carrier_webhook_secret,
        "print the secret that signs a carrier's webhooks (hex; the look is audited)",
    )
    secret.add_argument("carrier_id", type=int)


def carrier_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = _valid(CarrierCreate, {"name": args.name, "webhook_url": args.webhook_url})
    with session_scope(ctx.engine) as session:
        carrier = directory.create_carrier(session, _deps(ctx), body, caller=CLI_CALLER)
        return _print(ctx, [f"carrier {carrier.id} created: {carrier.name}"])


def carrier_list(_args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        return _print(ctx, (f"{c.id}\t{c.name}" for c in directory.list_carriers(session)))


def carrier_webhook_secret(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        secret = directory.reveal_webhook_secret(
            session, _deps(ctx), args.carrier_id, caller=CLI_CALLER
        )
    print(secret.hex(), file=ctx.out)
    print(
        f"webhook signing secret of carrier {args.carrier_id} (hex); hand it to the carrier"
        " over a confidential channel (verification: docs/notifications.md)",
        file=ctx.err,
    )
    return 0


def _couriers(subparsers: Any) -> None:
    words = subparsers.add_parser("courier", help="couriers").add_subparsers(metavar="ACTION")
    add = _command(words, "add", courier_add, "add a courier; the code is read from stdin")
    add.add_argument("carrier_id", type=int)
    add.add_argument("name")
    add.add_argument(
        "--code-stdin",
        action="store_true",
        required=True,
        help="read the courier code from standard input (never from argv)",
    )
    listing = _command(words, "list", courier_list, "list couriers")
    listing.add_argument("--carrier", type=int, dest="carrier_id")


def courier_add(args: argparse.Namespace, ctx: CliContext) -> int:
    code = sys.stdin.readline().strip()
    body = _valid(CourierCreate, {"carrier_id": args.carrier_id, "name": args.name, "code": code})
    with session_scope(ctx.engine) as session:
        courier = directory.create_courier(session, _deps(ctx), body, caller=CLI_CALLER)
        return _print(ctx, [f"courier {courier.id} created for carrier {courier.carrier_id}"])


def courier_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        couriers = directory.list_couriers(session, carrier_id=args.carrier_id)
        return _print(ctx, (f"{c.id}\t{c.name}\tcarrier {c.carrier_id}" for c in couriers))


# --- parcel ------------------------------------------------------------------------------------


def _parcels(subparsers: Any) -> None:
    words = subparsers.add_parser("parcel", help="parcel operations").add_subparsers(
        metavar="ACTION"
    )
    _command(
        words,
        "sweep",
        parcel_sweep,
        "release stale reservations, send due reminders, expire overdue parcels",
    )


def parcel_sweep(_args: argparse.Namespace, ctx: CliContext) -> int:
    deps = _deps(ctx)
    now = deps.clock()
    with session_scope(ctx.engine) as session:
        released = parcels.release_expired_reservations(session, deps, now=now)
        reminded = parcels.send_due_reminders(session, deps, now=now)
        expired = parcels.expire_overdue(session, deps, now=now)
    return _print(ctx, [f"released {released}, reminded {reminded}, expired {expired}"])
