"""``locker-server`` commands of the cabinet link: broker configuration and provisioning.

Top-level word owned here: ``broker-config``. The ``cabinet provision`` and ``cabinet
decommission`` actions are added under ``cabinet`` by ``locker_server.cli_admin``::

    locker-server broker-config --out /etc/mosquitto/locker --host mqtt.example.org
    locker-server cabinet provision LOBBY-01 --out ./LOBBY-01
    locker-server cabinet decommission LOBBY-01

The broker directory that provisioning keeps up to date is ``--broker-dir``, else
``$LOCKER_BROKER_DIR``, else ``$LOCKER_DATA_DIR/broker``. No secret is ever printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from locker_contract.credentials import maintenance_token_hash
from locker_server.broker import mosquitto as broker_config
from locker_server.broker import provisioning
from locker_server.broker.provisioning import BrokerSync
from locker_server.cli_context import CliContext
from locker_server.db import session_scope
from locker_server.errors import ValidationFailed

BROKER_DIR_ENV = "LOCKER_BROKER_DIR"


def register(subparsers: Any) -> None:
    text = "write a ready Mosquitto configuration (passwd, ACLs, TLS) for the provisioned cabinets"
    parser = subparsers.add_parser("broker-config", help=text, description=text)
    parser.add_argument("--out", type=Path, required=True, help="broker directory to write")
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="host name (or address) cabinets use to reach the broker; repeatable",
    )
    parser.add_argument("--port", type=int, default=broker_config.DEFAULT_TLS_PORT)
    parser.add_argument(
        "--server-port",
        type=int,
        help="TLS port of the server processes' listener (default: --port + 1)",
    )
    parser.add_argument("--plain-port", type=int, help="extra plain listener on 127.0.0.1")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=broker_config.DEFAULT_MAX_CONNECTIONS,
        help="connections each listener accepts (default %(default)s)",
    )
    parser.set_defaults(handler=broker_config_command)


def add_cabinet_commands(words: Any) -> None:
    """Add ``provision`` and ``decommission`` under the ``cabinet`` word."""
    text = "create (rotate) the cabinet's MQTT credential and write its agent.toml + ca.crt"
    provision = words.add_parser("provision", help=text, description=text)
    provision.add_argument("cabinet", help="cabinet code (its MQTT id) or database id")
    provision.add_argument("--out", type=Path, required=True, help="directory for the agent")
    provision.add_argument("--broker-host", help="host the cabinet connects to")
    provision.add_argument("--broker-port", type=int, help="TLS port (default 8883)")
    provision.add_argument(
        "--maintenance-token-stdin",
        action="store_true",
        help="read the open-all maintenance token from stdin; only its SHA-256 is written",
    )
    _broker_dir_option(provision)
    provision.set_defaults(handler=cabinet_provision)
    text = "revoke the cabinet's MQTT credential and disconnect it from the broker"
    decommission = words.add_parser("decommission", help=text, description=text)
    decommission.add_argument("cabinet", help="cabinet code (its MQTT id) or database id")
    _broker_dir_option(decommission)
    decommission.set_defaults(handler=cabinet_decommission)


def broker_config_command(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        with session_scope(ctx.engine) as session:
            hashes = provisioning.active_password_hashes(session)
    except SQLAlchemyError as exc:
        return _database_error(ctx, exc)
    listeners = broker_config.Listeners(
        broker_config.host_names(args.host),
        args.port,
        args.plain_port,
        args.max_connections,
        args.server_port,
    )
    files = broker_config.write_broker_files(args.out, hashes, listeners)
    reloaded, detail = provisioning.reload_broker(files.directory)
    print(
        f"broker configuration written to {files.directory} ({len(hashes)} cabinets)", file=ctx.out
    )
    print(f"  start: mosquitto -c {files.conf}", file=ctx.out)
    print(f"  cabinets connect to port {listeners.tls_port}", file=ctx.out)
    print(f"  server settings: {files.credentials} (LOCKER_MQTT_* environment file)", file=ctx.out)
    print(f"  cabinets verify the broker with {files.tls.ca_cert}", file=ctx.out)
    if reloaded:
        print(f"  running broker reloaded: {detail}", file=ctx.out)
    return 0


def cabinet_provision(args: argparse.Namespace, ctx: CliContext) -> int:
    broker_dir = _broker_dir(args, ctx)
    endpoint = provisioning.endpoint_from_broker_dir(broker_dir, args.broker_host, args.broker_port)
    token_hash = _maintenance_token_hash() if args.maintenance_token_stdin else None
    try:
        done = provisioning.provision(
            ctx.engine,
            ctx.keys,
            ctx.audit,
            reference=args.cabinet,
            out_dir=args.out,
            endpoint=endpoint,
            maintenance_token_hash=token_hash,
        )
        sync = provisioning.sync_broker(ctx.engine, broker_dir)
    except SQLAlchemyError as exc:
        return _database_error(ctx, exc)
    print(
        f"cabinet {done.cabinet_code} provisioned: {done.agent_config} ({done.doors} doors)",
        file=ctx.out,
    )
    print(f"  agent connects to {endpoint.host}:{endpoint.port} (TLS)", file=ctx.out)
    print(f"  agent trusts the broker CA of {endpoint.broker_dir}", file=ctx.out)
    return _report_sync(ctx, sync)


def cabinet_decommission(args: argparse.Namespace, ctx: CliContext) -> int:
    broker_dir = _broker_dir(args, ctx)
    try:
        cabinet, revoked = provisioning.decommission(ctx.engine, ctx.audit, reference=args.cabinet)
        sync = provisioning.sync_broker(ctx.engine, broker_dir)
    except SQLAlchemyError as exc:
        return _database_error(ctx, exc)
    print(f"cabinet {cabinet.code} decommissioned: {revoked} credential(s) revoked", file=ctx.out)
    code = _report_sync(ctx, sync)
    if sync.reloaded:
        _report_session_end(ctx, broker_dir, cabinet.code)
    return code


def _report_session_end(ctx: CliContext, broker_dir: Path, cabinet_code: str) -> None:
    ended, detail = provisioning.end_cabinet_session(broker_dir, cabinet_code)
    if ended:
        print(f"  {detail}", file=ctx.out)
    else:
        print(f"warning: the cabinet's broker session may remain: {detail}", file=ctx.err)


def _report_sync(ctx: CliContext, sync: BrokerSync) -> int:
    if not sync.passwd_written:
        print(f"warning: {sync.detail}; run broker-config and reload the broker", file=ctx.err)
    elif not sync.reloaded:
        print(f"warning: broker passwd updated but {sync.detail}", file=ctx.err)
    else:
        print(f"  broker passwd updated; {sync.detail}", file=ctx.out)
    return 0


def _broker_dir_option(parser: Any) -> None:
    parser.add_argument(
        "--broker-dir",
        type=Path,
        help=f"broker directory (default ${BROKER_DIR_ENV}, else $LOCKER_DATA_DIR/broker)",
    )


def _broker_dir(args: argparse.Namespace, ctx: CliContext) -> Path:
    if args.broker_dir is not None:
        return Path(args.broker_dir)
    configured = os.environ.get(BROKER_DIR_ENV)
    return Path(configured) if configured else ctx.settings.data_dir / "broker"


def _maintenance_token_hash() -> str:
    token = sys.stdin.readline().strip()
    if len(token) < 16:
        raise ValidationFailed("the maintenance token must be at least 16 characters")
    return maintenance_token_hash(token)


def _database_error(ctx: CliContext, exc: SQLAlchemyError) -> int:
    orig = getattr(exc, "orig", None)
    reason = type(orig if orig is not None else exc).__name__
    print(f"error: database unavailable or not migrated ({reason})", file=ctx.err)
    return 1
