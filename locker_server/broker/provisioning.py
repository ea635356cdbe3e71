"""Per-cabinet MQTT credentials: provisioning, rotation, decommissioning.

``provision`` gives a cabinet a fresh random MQTT password (192 bits), keeps only its
Mosquitto ``$7$`` hash in ``cabinet_credentials`` (older credentials of the cabinet are
revoked: re-provisioning rotates), and writes the agent's directory::

    DIR/agent.toml   cabinet id, broker endpoint + password, command public keys,
                     this cabinet's pickup key, doors from the server's door table (0600)
    DIR/ca.crt       the broker CA the agent verifies the broker's certificate with

``decommission`` revokes the cabinet's credential. Both then bring the broker directory
up to date (``passwd`` regenerated from the active credentials) and send the running
broker SIGHUP: Mosquitto 2.0 re-reads ``passwd`` and disconnects every client whose
user is gone or whose password no longer matches (tested against the real broker in
``tests/link_security``), and the cabinet cannot connect again.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import tomli_w
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_contract import topics
from locker_contract.credentials import cabinet_pickup_key
from locker_contract.signing import encode_public_key
from locker_server.audit import Actor, AuditEvent, AuditLog
from locker_server.broker import mosquitto as broker_config
from locker_server.broker import sessions as broker_sessions
from locker_server.broker.tls import ensure_ca, write_private
from locker_server.db import session_scope
from locker_server.errors import ConfigurationError, Conflict, ValidationFailed
from locker_server.keys import ServerKeys
from locker_server.models import Cabinet, CabinetCredential, Door
from locker_server.models.types import utcnow
from locker_server.services.cabinets import find_cabinet

logger = logging.getLogger(__name__)

AGENT_CONFIG = "agent.toml"
AGENT_CA = "ca.crt"
#: what the installer must replace in ``[serial]`` (the agent refuses to drive the port)
SERIAL_PLACEHOLDER = "CHANGE-ME"
DEFAULT_JOURNAL = "/var/lib/locker-agent/journal.sqlite3"


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """Where provisioned agents connect (always TLS) and the broker directory to update."""

    host: str
    port: int
    broker_dir: Path


@dataclass(frozen=True, slots=True)
class Provisioned:
    cabinet_code: str
    cabinet_id: int
    agent_config: Path
    ca_file: Path
    doors: int


@dataclass(frozen=True, slots=True)
class BrokerSync:
    """What happened to the broker directory after a credential change."""

    passwd_written: bool
    reloaded: bool
    detail: str = field(default="")


def endpoint_from_broker_dir(
    broker_dir: Path, host: str | None = None, port: int | None = None
) -> BrokerEndpoint:
    """Host and port from ``--broker-host/--broker-port``, else from the broker's
    ``server.credentials`` (``LOCKER_MQTT_URL``), else ``localhost:8883``."""
    url = _credentials_url(broker_dir)
    default_host = url.hostname if url is not None and url.hostname else "localhost"
    default_port = url.port if url is not None and url.port else broker_config.DEFAULT_TLS_PORT
    return BrokerEndpoint(host or default_host, port or default_port, broker_dir.resolve())


def provision(
    engine: Engine,
    keys: ServerKeys,
    audit: AuditLog,
    *,
    reference: str,
    out_dir: Path,
    endpoint: BrokerEndpoint,
    maintenance_token_hash: str | None = None,
) -> Provisioned:
    """Issue (rotate) the cabinet's credential and write its agent directory."""
    if reference == broker_config.SERVER_ACCOUNT:
        raise Conflict(f"{reference!r} is the server's broker account name")
    ca_pem = ensure_ca(endpoint.broker_dir).read_bytes()
    with session_scope(engine) as session:
        cabinet = find_cabinet(session, reference)
        _check_broker_name(cabinet)
        doors = _doors(session, _id(cabinet))
        if not doors:  # the agent refuses a configuration without doors
            raise ValidationFailed(f"cabinet {cabinet.code} has no doors yet; add them first")
        password = _issue(session, _id(cabinet))
        document = _agent_document(cabinet, doors, password, keys, endpoint)
        if maintenance_token_hash is not None:
            document["security"]["maintenance_token_hash"] = maintenance_token_hash
        _write_agent_dir(out_dir, document, ca_pem)
        _record(session, audit, cabinet, "link.cabinet_provisioned")
    logger.info("provisioned cabinet %s (%d doors) into %s", cabinet.code, len(doors), out_dir)
    return Provisioned(
        cabinet.code, _id(cabinet), out_dir / AGENT_CONFIG, out_dir / AGENT_CA, len(doors)
    )


def decommission(engine: Engine, audit: AuditLog, *, reference: str) -> tuple[Cabinet, int]:
    """Revoke every active credential of the cabinet; returns it and how many were revoked."""
    with session_scope(engine) as session:
        cabinet = find_cabinet(session, reference)
        revoked = _revoke(session, _id(cabinet))
        _record(session, audit, cabinet, "link.cabinet_decommissioned", revoked=revoked)
    logger.info("decommissioned cabinet %s (%d credentials revoked)", cabinet.code, revoked)
    return cabinet, revoked


def active_password_hashes(session: Session) -> dict[str, str]:
    """``{cabinet code: $7$ hash}`` of every cabinet with an unrevoked credential."""
    rows = session.exec(
        select(Cabinet.code, CabinetCredential.password_hash)
        .join(CabinetCredential, col(CabinetCredential.cabinet_id) == Cabinet.id)
        .where(col(CabinetCredential.revoked_at).is_(None))
    )
    return {str(code): str(hashed) for code, hashed in rows.all()}


def end_cabinet_session(broker_dir: Path, cabinet_code: str) -> tuple[bool, str]:
    """Discard the session the cabinet left on the running broker (:mod:`.sessions`).

    Call it after ``sync_broker`` reloaded the broker: the cabinet is disconnected and
    cannot log in again, so no new session can replace the one ended here. (Mosquitto
    handles the SIGHUP at the top of its loop, before it can have read our CONNECT,
    which needs a TCP accept and a TLS handshake first.)
    """
    pid = _running_mosquitto_pid(broker_dir / broker_config.PID_FILE)
    if pid is None:
        return False, "no running broker found (pid file missing or stale)"
    try:
        return True, broker_sessions.end_session(broker_dir.resolve(), pid, cabinet_code)
    except ConfigurationError as exc:
        return False, str(exc)


def sync_broker(engine: Engine, broker_dir: Path) -> BrokerSync:
    """Regenerate ``passwd`` in an existing broker directory and reload the running broker."""
    if not (broker_dir / broker_config.CONF_FILE).exists():
        return BrokerSync(False, False, f"no broker configuration in {broker_dir}")
    with session_scope(engine) as session:
        hashes = active_password_hashes(session)
    broker_config.rewrite_password_file(broker_dir, hashes)
    reloaded, detail = reload_broker(broker_dir)
    return BrokerSync(True, reloaded, detail)


def reload_broker(broker_dir: Path) -> tuple[bool, str]:
    """SIGHUP the Mosquitto whose pid file is in ``broker_dir`` (if it is running)."""
    pid = _running_mosquitto_pid(broker_dir / broker_config.PID_FILE)
    if pid is None:
        return False, "no running broker found (pid file missing or stale)"
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        return False, f"not allowed to signal broker pid {pid}; reload it yourself (SIGHUP)"
    except ProcessLookupError:
        return False, f"broker pid {pid} has exited"
    return True, f"sent SIGHUP to broker pid {pid}"


def _running_mosquitto_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is a Mosquitto (a reused pid is not)."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"mosquitto" in command.split(b"\x00")[0] else None


def _check_broker_name(cabinet: Cabinet) -> None:
    """A code stored before the contract refused it (``.``, ``locker-server...``) gets no
    broker account: it would be a path word or collide with the server's accounts."""
    problem = topics.cabinet_id_problem(cabinet.code)
    if problem is not None:
        raise ValidationFailed(f"cabinet code {cabinet.code!r} cannot be an MQTT name: {problem}")


def _issue(session: Session, cabinet_id: int) -> str:
    _revoke(session, cabinet_id)
    password = broker_config.new_password()
    hashed = broker_config.mosquitto_password_hash(password)
    session.add(CabinetCredential(cabinet_id=cabinet_id, password_hash=hashed))
    return password


def _revoke(session: Session, cabinet_id: int) -> int:
    active = session.exec(
        select(CabinetCredential)
        .where(CabinetCredential.cabinet_id == cabinet_id)
        .where(col(CabinetCredential.revoked_at).is_(None))
    ).all()
    now = utcnow()
    for credential in active:
        credential.revoked_at = now
        session.add(credential)
    session.flush()
    return len(active)


def _doors(session: Session, cabinet_id: int) -> list[Door]:
    query = select(Door).where(Door.cabinet_id == cabinet_id).order_by(col(Door.number))
    return list(session.exec(query).all())


def _agent_document(
    cabinet: Cabinet, doors: list[Door], password: str, keys: ServerKeys, endpoint: BrokerEndpoint
) -> dict[str, Any]:
    pickup_key = cabinet_pickup_key(keys.pickup_hmac_key, _id(cabinet))
    public_key = encode_public_key(keys.command_signing_key.public_key())
    broker = {"host": endpoint.host, "port": endpoint.port, "tls": True, "ca_file": AGENT_CA}
    return {
        "cabinet_id": cabinet.code,
        "broker": {**broker, "username": cabinet.code, "password": password, "keepalive": 10},
        "security": {"command_public_keys": [public_key], "pickup_key": pickup_key.hex()},
        "serial": {"port": SERIAL_PLACEHOLDER, "protocol": "8a80"},
        "doors": [{"number": d.number, "board": d.board, "lock": d.lock} for d in doors],
        "journal": {"path": DEFAULT_JOURNAL},
    }


def _write_agent_dir(out_dir: Path, document: dict[str, Any], ca_pem: bytes) -> None:
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(out_dir / AGENT_CONFIG, tomli_w.dumps(document).encode())
    (out_dir / AGENT_CA).write_bytes(ca_pem)


def _record(
    session: Session, audit: AuditLog, cabinet: Cabinet, action: str, **details: int
) -> None:
    event = AuditEvent(
        action=action,
        actor=Actor(type="system", id="cli"),
        outcome="success",
        channel="cli",
        site_id=cabinet.site_id,
        cabinet_id=cabinet.id,
        details=details,
    )
    audit.record(session, event)


def _credentials_url(broker_dir: Path) -> SplitResult | None:
    """The cabinets' listener recorded in ``server.credentials`` (older directories have
    only ``LOCKER_MQTT_URL``, which then was the one listener of cabinets and server)."""
    path = broker_dir / broker_config.CREDENTIALS_FILE
    if not path.exists():
        return None
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    url = values.get(broker_config.CABINET_URL_KEY) or values.get("LOCKER_MQTT_URL")
    return urlsplit(url.strip()) if url else None


def _id(cabinet: Cabinet) -> int:
    assert cabinet.id is not None  # loaded from the database
    return cabinet.id
