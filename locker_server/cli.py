"""``locker-server``: the server's command line.

The parser is assembled from the ``register(subparsers)`` functions listed in
``COMMAND_REGISTRATIONS``; each module owns its own top-level words (see the server
contract). Building the parser touches neither the database nor the keys, so
``--help`` works anywhere. Exit codes: 0 ok, 1 failure, 2 usage error. A reader that
closes stdout early (``locker-server audit export | head``) ends the command quietly
with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from locker_server import cli_admin, cli_core
from locker_server.audit import cli as audit_cli
from locker_server.broker import cli as broker_cli
from locker_server.cli_context import CliContext
from locker_server.config import Settings
from locker_server.errors import DomainError
from locker_server.notifications import cli as notifications_cli

#: Each adds its module's top-level words to the parser, in this order.
COMMAND_REGISTRATIONS: tuple[Callable[[Any], None], ...] = (
    cli_core.register,  # serve, migrate, user, apikey
    audit_cli.register,
    cli_admin.register,  # site, cabinet (with the broker's provision/decommission), door, ...
    notifications_cli.register,
    broker_cli.register,  # broker-config
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace, CliContext], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locker-server",
        description="Parcel locker server: run the API, migrate, manage users and keys.",
        epilog="The database URL comes from LOCKER_DATABASE_URL "
        "(default: an SQLite file in LOCKER_DATA_DIR, ./data).",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in COMMAND_REGISTRATIONS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again.

    The recipe of the Python docs for SIGPIPE (``signal`` module, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        return EXIT_USAGE
    return _run(handler, args)


def _run(handler: Handler, args: argparse.Namespace) -> int:
    try:
        ctx = CliContext(settings=Settings())
    except ValidationError as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        return _handle(handler, args, ctx)
    finally:
        if "engine" in ctx.__dict__:  # created lazily; only dispose what was opened
            ctx.engine.dispose()


def _handle(handler: Handler, args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        code = handler(args, ctx)
    except ValidationError as exc:
        print(f"error: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
