"""Generate a ready Mosquitto configuration: ``mosquitto.conf``, ``passwd``, ``acl``, TLS.

Listeners: cabinets connect to ``--port`` (8883), where Mosquitto replaces every client
id with the username (``use_username_as_clientid``): a cabinet's credential can only ever
be its own client, once. Server processes connect to ``--server-port`` (8884), where only
the server account exists and each process picks its own fixed client id. The optional
plain listener on 127.0.0.1 takes both accounts and trusts local processes with ids.

Layout of the broker directory (every path in ``mosquitto.conf`` is absolute)::

    mosquitto.conf        listeners, authentication, persistence, limits
    passwd                one ``user:$7$...`` line per active cabinet + the server account
                          (the loopback plain listener's; the other two take a part of it:)
    cabinets.passwd       the active cabinets only (the cabinets' TLS listener)
    server.passwd         the server account only (the server's TLS listener)
    acl                   least-privilege rules (see ``acl_text``)
    server.credentials    LOCKER_MQTT_* settings of the server account (mode 0600)
    ca.crt ca.key         the broker CA (reused across runs; ca.crt goes to every cabinet)
    server.crt server.key the broker's certificate for the configured host names
    data/                 Mosquitto's persistence (sessions, retained messages)
    mosquitto.pid         written by the running broker; decommissioning sends it SIGHUP

This module is pure file generation: the caller supplies the cabinets' password hashes
(``provisioning.active_password_hashes`` reads them from the database).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from locker_contract.envelope import MAX_PAYLOAD_BYTES
from locker_server.broker.tls import TlsFiles, ensure_tls, write_private
from locker_server.errors import ConfigurationError

SERVER_ACCOUNT = "locker-server"
CONF_FILE = "mosquitto.conf"
PASSWD_FILE = "passwd"  # noqa: S105  (a file name)
CABINETS_PASSWD_FILE = "cabinets.passwd"  # noqa: S105  (a file name)
SERVER_PASSWD_FILE = "server.passwd"  # noqa: S105  (a file name)
ACL_FILE = "acl"
CREDENTIALS_FILE = "server.credentials"
#: the cabinets' listener, recorded in ``server.credentials`` (the server ignores it)
CABINET_URL_KEY = "LOCKER_BROKER_CABINET_URL"
PID_FILE = "mosquitto.pid"
DATA_DIR = "data"
DEFAULT_TLS_PORT = 8883
#: Mosquitto 2.0's own defaults for ``$7$`` (PBKDF2-SHA512): 12-byte salt, 101 rounds.
_PBKDF2_ROUNDS = 101
_SALT_BYTES = 12
_PASSWORD_BYTES = 24  # 192 bits
_SHARE_GROUP_BYTES = 16  # 128 bits: the group name is a secret (see ``new_share_group``)

#: The contract's largest message plus room for an MQTT PUBLISH's own bytes: fixed header
#: (5), topic (2 + under 100 in our tree), packet id (2) and MQTT 5 properties.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
#: Connections per listener; a fleet larger than this raises ``--max-connections``.
DEFAULT_MAX_CONNECTIONS = 10000
#: Longest keepalive a client may ask for (agent 10 s, bridge 30 s): a half-open
#: connection of a client that asked for "never" (0) would otherwise be held forever.
MAX_KEEPALIVE_S = 300

#: What a cabinet may do, by topic suffix: publish its own reports, read what is for it.
CABINET_WRITES = ("presence", "state", "evt", "cmd/res", "req")
CABINET_READS = ("cmd", "evt/ack", "sync", "res")


@dataclass(frozen=True, slots=True)
class Listeners:
    """Where the broker listens: TLS always; an optional plain port bound to loopback."""

    host_names: tuple[str, ...] = ("localhost",)
    tls_port: int = DEFAULT_TLS_PORT
    plain_port: int | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: the server processes' TLS listener; ``None``: the port after ``tls_port``
    server_port: int | None = None

    @property
    def server_tls_port(self) -> int:
        return self.tls_port + 1 if self.server_port is None else self.server_port


@dataclass(frozen=True, slots=True)
class ServerCredentials:
    """The server account the bridge connects with, and its shared-subscription group."""

    username: str
    password: str = field(repr=False)
    share_group: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths of everything ``write_broker_files`` produced."""

    directory: Path
    conf: Path
    passwd: Path
    acl: Path
    credentials: Path
    pid_file: Path
    tls: TlsFiles


def new_password() -> str:
    """A random MQTT password (192 bits, URL-safe text)."""
    return secrets.token_urlsafe(_PASSWORD_BYTES)


def new_share_group() -> str:
    """A random shared-subscription group name for the server processes.

    Mosquitto does not check SUBSCRIBE against ``acl_file``: any cabinet may subscribe to
    ``$share/<group>/lockers/v1/+/evt``. If it names the server's group, the broker gives
    it its turn of the messages and then drops them (the cabinet may not read them). A
    group is only the server's when nobody else can name it, so its name is a secret.
    """
    return "srv-" + secrets.token_hex(_SHARE_GROUP_BYTES)


def mosquitto_password_hash(password: str, *, salt: bytes | None = None) -> str:
    """Hash ``password`` in Mosquitto 2.0's ``$7$`` format (PBKDF2-HMAC-SHA512)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ROUNDS)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"$7${_PBKDF2_ROUNDS}${encoded[0]}${encoded[1]}"


def check_mosquitto_password(password: str, hashed: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash (as Mosquitto would decide)."""
    try:
        _, kind, rounds, salt, digest = hashed.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(rounds)
        )
    except ValueError:
        return False
    return kind == "7" and secrets.compare_digest(actual, expected)


def acl_text() -> str:
    """Mosquitto ACL rules: each cabinet (``%u``) reaches only its own topic subtree."""
    lines = [
        "# Generated by `locker-server broker-config`; regenerate instead of editing.",
        "# Mosquitto checks these rules on PUBLISH and on every delivery, never on",
        "# SUBSCRIBE: a `$share/...` rule here would restrict nothing. The server's",
        "# shared-subscription group is protected by its secret name instead.",
        f"user {SERVER_ACCOUNT}",
        "topic readwrite lockers/v1/#",
        "",
        "# Every other user is a cabinet whose username is its cabinet id.",
        *(f"pattern write lockers/v1/%u/{suffix}" for suffix in CABINET_WRITES),
        *(f"pattern read lockers/v1/%u/{suffix}" for suffix in CABINET_READS),
    ]
    return "\n".join(lines) + "\n"


def passwd_text(entries: Mapping[str, str]) -> str:
    """A Mosquitto password file from ``{username: $7$ hash}``."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(entries.items()))


def conf_text(directory: Path, listeners: Listeners, tls: TlsFiles) -> str:
    """``mosquitto.conf`` for ``directory``: no anonymous access, TLS listeners, persistence."""
    lines = [
        "# Generated by `locker-server broker-config`; regenerate instead of editing.",
        "# Each listener has its own accounts: cabinets cannot log in where the server",
        "# chooses its client ids, and the server account does not exist for cabinets.",
        "per_listener_settings true",
        f"pid_file {directory / PID_FILE}",
        "persistence true",
        f"persistence_location {directory / DATA_DIR}/",
        "autosave_interval 60",
        "max_queued_messages 10000",  # an offline cabinet's commands/syncs wait in its session
        "persistent_client_expiration 14d",  # sessions of cabinets gone for good do not pile up
        "set_tcp_nodelay true",  # small command messages go out at once (round trip p99)
        "connection_messages true",
        *_limits(),
        "",
        "# Cabinets. The client id is replaced by the username: a credential can neither",
        "# take another client's id (and its session) nor hold a second connection.",
        f"listener {listeners.tls_port}",
        "use_username_as_clientid true",
        *_listener_security(directory, CABINETS_PASSWD_FILE, listeners),
        *_tls_lines(tls),
        "",
        "# Server processes (the server account only); each keeps its own fixed client id.",
        f"listener {listeners.server_tls_port}",
        *_listener_security(directory, SERVER_PASSWD_FILE, listeners),
        *_tls_lines(tls),
    ]
    if listeners.plain_port is not None:
        lines += ["", "# Plain MQTT for processes on this host only (both kinds of account)."]
        lines += [f"listener {listeners.plain_port} 127.0.0.1"]
        lines += _listener_security(directory, PASSWD_FILE, listeners)
    return "\n".join(lines) + "\n"


def server_listener_port(conf: str) -> int | None:
    """The port of the server processes' listener in a generated ``mosquitto.conf`` text."""
    port: int | None = None
    for words in (line.split() for line in conf.splitlines()):
        if words[:1] == ["listener"]:
            port = int(words[1])
        elif words[:1] == ["password_file"] and words[-1].endswith(SERVER_PASSWD_FILE):
            return port
    return None


def _listener_security(directory: Path, passwd: str, listeners: Listeners) -> list[str]:
    return [
        "allow_anonymous false",
        f"password_file {directory / passwd}",
        f"acl_file {directory / ACL_FILE}",
        f"max_connections {listeners.max_connections}",
    ]


def _tls_lines(tls: TlsFiles) -> list[str]:
    return [
        f"certfile {tls.server_cert}",
        f"keyfile {tls.server_key}",
        f"cafile {tls.ca_cert}",
        "tls_version tlsv1.2",
    ]


def _limits() -> list[str]:
    """Broker-wide limits, from the contract's message size cap."""
    return [
        "# No message of the contract is larger than MAX_PAYLOAD_BYTES: a larger payload",
        "# is dropped, a larger packet (of any kind) ends the connection.",
        f"message_size_limit {MAX_PAYLOAD_BYTES}",
        f"max_packet_size {MAX_PACKET_BYTES}",
        f"max_keepalive {MAX_KEEPALIVE_S}",
    ]


def server_credentials(directory: Path) -> ServerCredentials:
    """The server account of the broker in ``directory`` (from ``server.credentials``)."""
    path = directory / CREDENTIALS_FILE
    values = _read_env_file(path)
    try:
        username, password = values["LOCKER_MQTT_USERNAME"], values["LOCKER_MQTT_PASSWORD"]
    except KeyError as exc:
        raise ConfigurationError(f"{path}: not a server credentials file") from exc
    return ServerCredentials(username, password, values.get("LOCKER_MQTT_SHARE_GROUP", ""))


def write_server_credentials(directory: Path, listeners: Listeners) -> ServerCredentials:
    """(Re)write ``server.credentials`` as ``LOCKER_MQTT_*`` settings, keeping the password
    and the secret share group (running server processes must keep meeting in one group).

    The file is an environment file: ``set -a; . server.credentials`` or systemd's
    ``EnvironmentFile=`` hands it to ``locker-server serve``.
    """
    path = directory / CREDENTIALS_FILE
    current = _read_env_file(path)
    password = current.get("LOCKER_MQTT_PASSWORD") or new_password()
    group = current.get("LOCKER_MQTT_SHARE_GROUP") or new_share_group()
    host = listeners.host_names[0]
    values = {
        "LOCKER_MQTT_URL": f"mqtts://{host}:{listeners.server_tls_port}",
        "LOCKER_MQTT_USERNAME": SERVER_ACCOUNT,
        "LOCKER_MQTT_PASSWORD": password,
        "LOCKER_MQTT_CA_FILE": str(directory / "ca.crt"),
        "LOCKER_MQTT_SHARE_GROUP": group,
        # not a server setting: where `cabinet provision` sends the cabinets by default
        CABINET_URL_KEY: f"mqtts://{host}:{listeners.tls_port}",
    }
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    write_private(path, text.encode())
    return ServerCredentials(SERVER_ACCOUNT, password, group)


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def write_broker_files(
    directory: Path, cabinets: Mapping[str, str], listeners: Listeners = Listeners()
) -> BrokerFiles:
    """Write the whole broker directory; ``cabinets`` maps cabinet id → ``$7$`` hash."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / DATA_DIR).mkdir(exist_ok=True, mode=0o700)
    tls = ensure_tls(directory, listeners.host_names)
    files = _paths(directory, tls)
    account = write_server_credentials(directory, listeners)
    _write_password_files(directory, cabinets, account)
    files.acl.write_text(acl_text())
    files.conf.write_text(conf_text(directory, listeners, tls))
    return files


def rewrite_password_file(directory: Path, cabinets: Mapping[str, str]) -> Path:
    """Replace only the password files (keeping the server account) — what a reload needs."""
    directory = directory.resolve()
    _write_password_files(directory, cabinets, server_credentials(directory))
    return directory / PASSWD_FILE


def _write_password_files(
    directory: Path, cabinets: Mapping[str, str], account: ServerCredentials
) -> None:
    """``passwd`` (everyone), ``cabinets.passwd`` and ``server.passwd`` (one kind each)."""
    passwd = directory / PASSWD_FILE
    server = {account.username: _stable_hash(passwd, account)}
    cabinets = {code: hashed for code, hashed in cabinets.items() if code != account.username}
    write_private(passwd, passwd_text({**cabinets, **server}).encode())
    for name, entries in ((CABINETS_PASSWD_FILE, cabinets), (SERVER_PASSWD_FILE, server)):
        _write_owned_like(directory / name, passwd_text(entries).encode(), passwd)


def _write_owned_like(path: Path, data: bytes, model: Path) -> None:
    """Write ``path``; a file new to an existing directory (an upgrade) gets ``model``'s
    owner, so a broker that was given the directory (``chown mosquitto``) can read it."""
    new = not path.exists()
    write_private(path, data)
    if new:
        owner = model.stat()
        with contextlib.suppress(PermissionError):  # not root: ours like the rest of it
            os.chown(path, owner.st_uid, owner.st_gid)


def read_password_file(path: Path) -> dict[str, str]:
    """``{username: hash}`` from a Mosquitto password file (missing file: empty)."""
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if ":" in line]
    return dict(line.split(":", 1) for line in lines)


def _stable_hash(passwd: Path, account: ServerCredentials) -> str:
    """Keep the server account's existing hash when it still matches (no needless churn)."""
    current = read_password_file(passwd).get(account.username)
    if current and check_mosquitto_password(account.password, current):
        return current
    return mosquitto_password_hash(account.password)


def _paths(directory: Path, tls: TlsFiles) -> BrokerFiles:
    return BrokerFiles(
        directory=directory,
        conf=directory / CONF_FILE,
        passwd=directory / PASSWD_FILE,
        acl=directory / ACL_FILE,
        credentials=directory / CREDENTIALS_FILE,
        pid_file=directory / PID_FILE,
        tls=tls,
    )


def host_names(names: Sequence[str]) -> tuple[str, ...]:
    """The certificate's names: those given, else ``localhost`` (127.0.0.1 is always added)."""
    return tuple(names) or ("localhost",)
