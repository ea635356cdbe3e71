"""Core ``locker-server`` commands: ``serve``, ``migrate``, ``user ...``, ``apikey ...``.

``serve`` migrates an SQLite database itself (so the quick start is one command);
a PostgreSQL database is migrated only by an explicit ``locker-server migrate``, run
by the deployment with a role allowed to change the schema.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from sqlmodel import Session

from locker_server.audit import Actor
from locker_server.auth.api_key_admin import create_api_key, revoke_api_key
from locker_server.auth.origin import Origin
from locker_server.auth.roles import USER_ROLES, Role
from locker_server.auth.users import NewUser, create_user, list_users, site_ids_of
from locker_server.broker.errors import BrokerError, BrokerPortTaken
from locker_server.cli_context import CliContext
from locker_server.db import is_sqlite, migrate, session_scope
from locker_server.errors import ConfigurationError, ValidationFailed

CLI_ORIGIN = Origin(Actor(type="system", id="cli"), channel="cli")
_LIST_LIMIT = 10_000


def register(subparsers: Any) -> None:
    _register_serve(subparsers)
    _register_migrate(subparsers)
    _register_user(subparsers)
    _register_apikey(subparsers)


def _register_serve(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    serve.add_argument(
        "--no-background",
        action="store_true",
        help="run only the API and the cabinet link here, not the notification worker, parcel"
        " sweeps, audit checkpoints and link housekeeping (run those once elsewhere when"
        " several API processes serve)",
    )
    serve.set_defaults(handler=serve_command)


def _register_migrate(subparsers: Any) -> None:
    migrate_parser = subparsers.add_parser("migrate", help="bring the database schema up to date")
    migrate_parser.set_defaults(handler=migrate_command)


def _register_user(subparsers: Any) -> None:
    user = subparsers.add_parser("user", help="manage user accounts")
    actions = user.add_subparsers(title="user commands", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a user (password read from stdin)")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=sorted(r.value for r in USER_ROLES))
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of stdin (never from the command line)",
    )
    create.add_argument("--email", help="where alarms of the user's sites are sent (operators)")
    create.add_argument(
        "--site",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="limit an operator or security account to this site (repeatable)",
    )
    create.add_argument(
        "--courier", type=int, metavar="ID", help="the courier of a courier account"
    )
    create.set_defaults(handler=user_create_command)
    listing = actions.add_parser("list", help="list user accounts")
    listing.set_defaults(handler=user_list_command)


def _register_apikey(subparsers: Any) -> None:
    apikey = subparsers.add_parser("apikey", help="manage carrier API keys")
    actions = apikey.add_subparsers(title="apikey commands", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key (printed once)")
    create.add_argument("--carrier", type=int, required=True, metavar="ID")
    create.add_argument("--name", required=True)
    create.set_defaults(handler=apikey_create_command)
    revoke = actions.add_parser("revoke", help="revoke a key (it stops working at once)")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=apikey_revoke_command)


def serve_command(args: argparse.Namespace, ctx: CliContext) -> int:
    import uvicorn  # imported here: only `serve` needs the ASGI server

    from locker_server.background import BackgroundJobs
    from locker_server.link.bridge import LinkError
    from locker_server.web.app import create_console_app

    if is_sqlite(ctx.engine):
        migrate(ctx.engine)
    jobs = BackgroundJobs(ctx.engine, ctx.settings, ctx.keys)
    try:
        jobs.start(link_only=args.no_background)
    except (BrokerError, LinkError) as exc:
        # A server without its cabinet link would look healthy while no door could open.
        raise ConfigurationError(_link_not_started(exc)) from exc
    try:
        # Remote opens publish signed commands through this process's bridge.
        app = create_console_app(ctx.settings, link_publisher=jobs.link_publisher)
        # The app reads X-Forwarded-For itself, only from LOCKER_TRUSTED_PROXIES; uvicorn's
        # own handling would believe it from any local client.
        uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False)
    finally:
        jobs.stop()
    return 0


def _link_not_started(error: Exception) -> str:
    if isinstance(error, BrokerPortTaken):
        return (
            f"the embedded development MQTT broker cannot listen on {error.host}:{error.port}:"
            " the port is already in use. Set LOCKER_EMBEDDED_BROKER_PORT to a free port, or"
            " LOCKER_MQTT_URL to a running broker (then none is embedded)."
        )
    return f"the cabinet link cannot start: {error}"


def migrate_command(_args: argparse.Namespace, ctx: CliContext) -> int:
    migrate(ctx.engine)
    print("database schema is up to date", file=ctx.out)
    return 0


def read_password(stream: TextIO) -> str:
    """The first line of ``stream`` without its line ending (the password may hold spaces)."""
    line = stream.readline()
    if not line:
        raise ValidationFailed("no password on stdin")
    return line.rstrip("\r\n")


def user_create_command(args: argparse.Namespace, ctx: CliContext) -> int:
    password = read_password(sys.stdin)
    new = NewUser(
        username=args.username,
        password=password,
        role=Role(args.role),
        site_ids=tuple(args.site),
        courier_id=args.courier,
        email=args.email,
    )
    with session_scope(ctx.engine) as session:
        user = create_user(session, ctx.audit, CLI_ORIGIN, new)
        print(f"created user {user.id} {user.username} ({user.role})", file=ctx.out)
    return 0


def user_list_command(_args: argparse.Namespace, ctx: CliContext) -> int:
    with Session(ctx.engine) as session:
        users, _total = list_users(session, limit=_LIST_LIMIT, offset=0)
        for user in users:
            sites = ",".join(map(str, site_ids_of(session, user))) or "all"
            state = "active" if user.active else "inactive"
            print(f"{user.id}\t{user.username}\t{user.role}\t{state}\tsites={sites}", file=ctx.out)
    return 0


def apikey_create_command(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        created = create_api_key(
            session, ctx.audit, ctx.keys, CLI_ORIGIN, carrier_id=args.carrier, name=args.name
        )
    print(created.key, file=ctx.out)
    print(
        f"API key {created.row.id} (prefix {created.row.prefix}) for carrier {args.carrier}; "
        "the key above is shown only this once",
        file=ctx.err,
    )
    return 0


def apikey_revoke_command(args: argparse.Namespace, ctx: CliContext) -> int:
    with session_scope(ctx.engine) as session:
        row = revoke_api_key(session, ctx.audit, CLI_ORIGIN, args.id)
    print(f"revoked API key {row.id} (prefix {row.prefix})", file=ctx.out)
    return 0
