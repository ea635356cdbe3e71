"""Provisioning a cabinet, rotating and revoking its credential, against the real broker.

The stories run the ``locker-server`` CLI exactly as an installer would, then start a
private Mosquitto from the generated broker directory and connect with a real client.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from locker_agent.config import AgentSettings, load_settings
from locker_contract.credentials import cabinet_pickup_key, maintenance_token_hash
from locker_contract.signing import encode_public_key
from locker_server.audit.models import AuditEntry
from locker_server.broker.mosquitto import check_mosquitto_password, read_password_file
from locker_server.broker.provisioning import CabinetCredential
from locker_server.config import Settings
from locker_server.keys import load_keys
from simulators.mosquitto import PrivateMosquitto
from tests.link_security.conftest import LockerCli
from tests.link_support.clients import ConnectionRefused, TestClient, connect


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _provision(cli: LockerCli, cabinet: str, out: Path) -> AgentSettings:
    cli.ok("cabinet", "provision", cabinet, "--out", str(out))
    return load_settings(out / "agent.toml")


def _connect_agent(broker: PrivateMosquitto, agent: AgentSettings) -> TestClient:
    password = agent.broker.password.get_secret_value()
    return connect(broker, agent.broker.username, password, client_id=agent.cabinet_id)


def _credentials(engine: Engine) -> list[CabinetCredential]:
    with Session(engine) as session:
        return list(session.exec(select(CabinetCredential).order_by(col(CabinetCredential.id))))


def test_agent_config_is_accepted_by_the_agent_and_carries_the_cabinets_doors_and_keys(
    installation: LockerCli, tmp_path: Path
) -> None:
    agent = _provision(installation, "CAB-A", tmp_path / "agent")

    keys = load_keys(tmp_path / "secrets")
    assert agent.cabinet_id == agent.broker.username == "CAB-A"
    assert agent.broker.tls
    assert agent.broker.ca_file == tmp_path / "agent" / "ca.crt"
    assert [(d.number, d.board, d.lock) for d in agent.doors] == [
        (1, 1, 1),
        (2, 1, 2),
        (3, 1, 3),
        (4, 1, 4),
    ]
    assert agent.security.command_public_keys == [
        encode_public_key(keys.command_signing_key.public_key())
    ]
    assert agent.security.pickup_key_bytes == cabinet_pickup_key(keys.pickup_hmac_key, 1)
    assert not agent.serial.port_given  # the installer fills in the serial port
    assert _mode(tmp_path / "agent" / "agent.toml") == 0o600
    assert _mode(tmp_path / "agent") == 0o700


def test_password_is_kept_only_as_a_mosquitto_hash_and_printed_nowhere(
    installation: LockerCli, tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    installation.ok("broker-config", "--out", str(tmp_path / "broker"))
    result = installation.ok("cabinet", "provision", "CAB-A", "--out", str(tmp_path / "agent"))
    password = load_settings(tmp_path / "agent" / "agent.toml").broker.password

    secret = password.get_secret_value()
    assert len(secret) >= 22  # at least 128 bits of URL-safe base64
    [credential] = _credentials(engine)
    assert credential.password_hash.startswith("$7$101$")
    assert check_mosquitto_password(secret, credential.password_hash)
    assert secret not in result.out + result.err + caplog.text
    broker_passwd = read_password_file(tmp_path / "broker" / "passwd")
    assert broker_passwd["CAB-A"] == credential.password_hash


def test_our_hash_format_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "CAB-A", "s3cret-pw"], check=True)

    hashed = read_password_file(passwd)["CAB-A"]
    assert check_mosquitto_password("s3cret-pw", hashed)
    assert not check_mosquitto_password("s3cret-pX", hashed)


def test_provisioned_cabinet_reaches_the_generated_broker_and_reprovisioning_rotates(
    installation: LockerCli, tmp_path: Path, engine: Engine, broker_dir: Path
) -> None:
    old = _provision(installation, "CAB-A", tmp_path / "old")
    installation.ok("broker-config", "--out", str(broker_dir))
    with PrivateMosquitto(broker_dir) as broker:
        assert (tmp_path / "old" / "ca.crt").read_bytes() == broker.ca_file.read_bytes()
        first = _connect_agent(broker, old)

        reloads = broker.reload_count()
        new = _provision(installation, "CAB-A", tmp_path / "new")
        broker.wait_reloaded(reloads)

        assert first.disconnected.wait(5), "the rotated-out session must be dropped"
        first.close()
        with pytest.raises(ConnectionRefused, match="Not authorized"):
            _connect_agent(broker, old)
        with _connect_agent(broker, new) as client:
            assert client.paho.is_connected()
    assert [c.revoked_at is not None for c in _credentials(engine)] == [True, False]


def test_decommissioned_cabinet_is_disconnected_at_once_and_cannot_reconnect(
    installation: LockerCli, tmp_path: Path, broker_dir: Path, engine: Engine
) -> None:
    cabinet_a = _provision(installation, "CAB-A", tmp_path / "a")
    cabinet_b = _provision(installation, "CAB-B", tmp_path / "b")
    installation.ok("broker-config", "--out", str(broker_dir))
    with PrivateMosquitto(broker_dir) as broker:
        client_a, client_b = _connect_agent(broker, cabinet_a), _connect_agent(broker, cabinet_b)
        reloads = broker.reload_count()

        result = installation.ok("cabinet", "decommission", "CAB-A")
        broker.wait_reloaded(reloads)

        assert "1 credential(s) revoked" in result.out
        assert "SIGHUP" in result.out
        assert client_a.disconnected.wait(5)
        client_a.close()
        with pytest.raises(ConnectionRefused, match="Not authorized"):
            _connect_agent(broker, cabinet_a)
        assert client_b.paho.is_connected()
        assert not client_b.disconnected.is_set()
        client_b.close()
    assert set(read_password_file(broker_dir / "passwd")) == {"CAB-B", "locker-server"}
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert actions.count("link.cabinet_decommissioned") == 1
    assert actions.count("link.cabinet_provisioned") == 2


def test_decommission_without_a_broker_directory_revokes_and_says_what_to_do(
    installation: LockerCli, tmp_path: Path, engine: Engine
) -> None:
    _provision(installation, "CAB-A", tmp_path / "a")

    result = installation.ok("cabinet", "decommission", "CAB-A")

    assert "run broker-config and reload the broker" in result.err
    assert all(c.revoked_at is not None for c in _credentials(engine))


def test_cabinet_is_named_by_code_or_unambiguous_database_id(
    installation: LockerCli, tmp_path: Path
) -> None:
    assert _provision(installation, "2", tmp_path / "by-id").cabinet_id == "CAB-B"
    installation.ok("cabinet", "add", "1", "2", "--name", "Cabinet coded 2")

    ambiguous = installation("cabinet", "provision", "2", "--out", str(tmp_path / "x"))
    unknown = installation("cabinet", "provision", "NOPE", "--out", str(tmp_path / "y"))

    assert ambiguous.code == 1
    assert "another cabinet's id" in ambiguous.err
    assert unknown.code == 1
    assert "no cabinet 'NOPE'" in unknown.err
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "y").exists()


def test_cabinet_without_doors_is_not_provisioned(
    installation: LockerCli, tmp_path: Path, engine: Engine
) -> None:
    installation.ok("cabinet", "add", "1", "CAB-NEW", "--name", "Not fitted yet")

    result = installation("cabinet", "provision", "CAB-NEW", "--out", str(tmp_path / "new"))

    assert result.code == 1
    assert "has no doors yet" in result.err
    assert not (tmp_path / "new").exists()
    assert _credentials(engine) == []


def test_maintenance_token_reaches_the_agent_only_as_its_sha256(
    installation: LockerCli, tmp_path: Path
) -> None:
    token = "night-shift-maintenance-token-42"
    installation.ok(
        "cabinet",
        "provision",
        "CAB-A",
        "--out",
        str(tmp_path / "a"),
        "--maintenance-token-stdin",
        stdin=token + "\n",
    )

    agent = load_settings(tmp_path / "a" / "agent.toml")
    assert agent.security.maintenance_token_hash == maintenance_token_hash(token)
    assert token not in (tmp_path / "a" / "agent.toml").read_text()


def test_broker_config_keeps_its_ca_and_server_password_and_certifies_the_host_names(
    installation: LockerCli, broker_dir: Path
) -> None:
    args = ("broker-config", "--out", str(broker_dir), "--host", "mqtt.example.org")
    installation.ok(*args, "--plain-port", "1884")
    ca, credentials = (broker_dir / "ca.crt").read_bytes(), (broker_dir / "server.credentials")
    first_credentials = credentials.read_text()

    installation.ok(*args)

    assert (broker_dir / "ca.crt").read_bytes() == ca
    assert credentials.read_text() == first_credentials
    cert = x509.load_pem_x509_certificate((broker_dir / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.example.org"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for secret in ("passwd", "server.credentials", "server.key", "ca.key"):
        assert _mode(broker_dir / secret) == 0o600, secret
    conf = (broker_dir / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "listener 1884" not in conf
    assert f"persistence_location {broker_dir.resolve()}/data/" in conf


def test_regenerated_broker_secrets_stay_readable_by_the_broker_account(
    installation: LockerCli, broker_dir: Path, tmp_path: Path
) -> None:
    installation.ok("broker-config", "--out", str(broker_dir))
    broker_uid, broker_gid = 105, 108  # the operator did `chown mosquitto:` on the directory
    os.chown(broker_dir / "passwd", broker_uid, broker_gid)

    installation.ok("cabinet", "provision", "CAB-A", "--out", str(tmp_path / "a"))

    passwd = (broker_dir / "passwd").stat()
    assert (passwd.st_uid, passwd.st_gid) == (broker_uid, broker_gid)
    assert "CAB-A" in read_password_file(broker_dir / "passwd")


def test_server_credentials_file_configures_the_server_settings_and_reaches_the_broker(
    installation: LockerCli, broker_dir: Path
) -> None:
    args = ("--host", "mqtt.example.org", "--port", "8884")
    installation.ok("broker-config", "--out", str(broker_dir), *args)

    settings = Settings(_env_file=broker_dir / "server.credentials")

    assert settings.mqtt_url == "mqtts://mqtt.example.org:8885"  # the server's listener: --port + 1
    assert settings.mqtt_ca_file == broker_dir.resolve() / "ca.crt"
    assert settings.mqtt_username is not None
    assert settings.mqtt_password is not None
    with PrivateMosquitto(broker_dir) as broker:
        password = settings.mqtt_password.get_secret_value()
        with connect(broker, settings.mqtt_username, password) as server:
            assert server.subscribe("$share/locker-server/lockers/v1/+/evt")[0].value < 0x80


def test_cabinets_are_sent_to_their_listener_and_the_server_to_its_own(
    installation: LockerCli, tmp_path: Path, broker_dir: Path
) -> None:
    ports = ("--port", "9883", "--server-port", "9999", "--max-connections", "50")
    installation.ok("broker-config", "--out", str(broker_dir), "--host", "mqtt.example.org", *ports)

    agent = _provision(installation, "CAB-A", tmp_path / "a")

    assert (agent.broker.host, agent.broker.port) == ("mqtt.example.org", 9883)
    settings = Settings(_env_file=broker_dir / "server.credentials")
    assert settings.mqtt_url == "mqtts://mqtt.example.org:9999"
    conf = (broker_dir / "mosquitto.conf").read_text()
    assert conf.count("max_connections 50") == 2
    cabinets_listener, server_listener = conf.split("listener 9883")[1].split("listener 9999")
    assert "use_username_as_clientid true" in cabinets_listener
    assert "use_username_as_clientid" not in server_listener
    assert set(read_password_file(broker_dir / "cabinets.passwd")) == {"CAB-A"}
    assert set(read_password_file(broker_dir / "server.passwd")) == {"locker-server"}
