"""Mail goes to a server that demands STARTTLS and a login, and we meet both demands."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from locker_server.notifications.errors import TransientDeliveryError
from locker_server.notifications.mail import SmtpEmailTransport, build_email
from locker_server.notifications.templates import RenderedEmail
from tests.notifications.notification_support import MailSink, free_port

USERNAME, PASSWORD = "lockers", "a-long-smtp-password-for-tests"


def _self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key_pem)
    return directory / "cert.pem", directory / "key.pem", cert_pem


class Authenticator:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert session.ssl is not None, "credentials must only travel inside TLS"
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USERNAME, PASSWORD)
        if ok:
            self.logins.append(USERNAME)
        return AuthResult(success=ok)


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[tuple[MailSink, Authenticator, bytes]]:
    cert, key, cert_pem = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sink, authenticator = MailSink(free_port()), Authenticator()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    yield sink, authenticator, cert_pem
    controller.stop()


def _message() -> EmailMessage:
    rendered = RenderedEmail(subject="Parcel ready", text="Code 48213377", html="<p>x</p>")
    return build_email(
        sender="lockers@campus.example", to="alice@example.org", event_id="e-1", rendered=rendered
    )


def _transport(port: int, cert_pem: bytes, **overrides: Any) -> SmtpEmailTransport:
    options: dict[str, Any] = {
        "timeout": 5.0,
        "starttls": True,
        "username": USERNAME,
        "password": SecretStr(PASSWORD),
        "tls_context": ssl.create_default_context(cadata=cert_pem.decode()),
    } | overrides
    return SmtpEmailTransport("127.0.0.1", port, **options)


def test_mail_is_sent_after_starttls_and_login(
    secure_server: tuple[MailSink, Authenticator, bytes],
) -> None:
    sink, authenticator, cert_pem = secure_server

    _transport(sink.port, cert_pem).send(_message())

    assert authenticator.logins == [USERNAME]
    assert [m["Message-ID"] for m in sink.messages] == ["<e-1@campus.example>"]


def test_wrong_smtp_password_is_retried_later_not_a_lost_message(
    secure_server: tuple[MailSink, Authenticator, bytes],
) -> None:
    sink, authenticator, cert_pem = secure_server
    wrong = SecretStr("not-the-password-at-all")
    # Observed: after the refused login the exchange stalls until the client times out.
    transport = _transport(sink.port, cert_pem, password=wrong, timeout=1.0)

    # Our configuration is wrong, not the recipient's address: keep retrying until fixed.
    with pytest.raises(TransientDeliveryError):
        transport.send(_message())
    assert authenticator.logins == []
    assert sink.messages == []


def test_server_certificate_we_do_not_trust_stops_the_login(
    secure_server: tuple[MailSink, Authenticator, bytes],
) -> None:
    sink, authenticator, _ = secure_server
    transport = _transport(sink.port, b"", tls_context=ssl.create_default_context())

    with pytest.raises(TransientDeliveryError, match="SSLCertVerificationError"):
        transport.send(_message())
    assert authenticator.logins == []
