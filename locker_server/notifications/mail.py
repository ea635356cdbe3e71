"""Email: building the message (text + HTML + the QR PNG) and sending it over SMTP."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

from pydantic import SecretStr

from locker_server.config import Settings
from locker_server.notifications.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from locker_server.notifications.templates import RenderedEmail

logger = logging.getLogger(__name__)

QR_FILENAME = "pickup-qr.png"
# An enhanced status code ("5.1.1") says what went wrong without echoing the address.
_ENHANCED_STATUS = re.compile(rb"\b[245]\.\d{1,3}\.\d{1,3}\b")


class EmailTransport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message over; raise Transient/PermanentDeliveryError if refused."""


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id(event_id: str, sender: str) -> str:
    """The stable Message-ID of a notification: the same on every retry."""
    return f"<{event_id}@{sender_domain(sender)}>"


def build_email(
    *,
    sender: str,
    to: str,
    event_id: str,
    rendered: RenderedEmail,
    qr_png: bytes | None = None,
    qr_cid: str | None = None,
) -> EmailMessage:
    """Text body, HTML alternative and, for a pickup, the QR code as an inline PNG."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = _address(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(event_id, sender)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if qr_png is not None:
        _attach_qr(message, qr_png, qr_cid or new_content_id(sender))
    return message


def new_content_id(sender: str) -> str:
    """A Content-ID (without angle brackets) for the inline QR image."""
    return make_msgid(idstring="qr", domain=sender_domain(sender))[1:-1]


def _address(to: str) -> Address:
    try:
        return Address(addr_spec=to)
    except (ValueError, IndexError, MessageError) as exc:
        raise PermanentDeliveryError("malformed email address") from exc


def _attach_qr(message: EmailMessage, png: bytes, cid: str) -> None:
    html_part = next(p for p in message.iter_parts() if p.get_content_type() == "text/html")
    html_part.add_related(
        png, "image", "png", cid=f"<{cid}>", filename=QR_FILENAME, disposition="inline"
    )


class SmtpEmailTransport:
    """Sends through an SMTP server, with STARTTLS and login when configured."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._starttls, self._timeout = starttls, timeout
        self._username, self._password = username, password
        #: Verifies the server's certificate (system CAs unless a context is given).
        self._tls_context = tls_context

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmailTransport:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.notification_timeout_seconds,
        )

    def send(self, message: EmailMessage) -> None:
        try:
            self._send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc) from exc
        except smtplib.SMTPResponseException as exc:
            raise _response_error(exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(f"SMTP {type(exc).__name__}") from exc

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=self._tls_context or ssl.create_default_context())
            if self._username:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self._username, password)
            smtp.send_message(message)
        logger.debug("email handed to %s:%s", self._host, self._port)


def _describe(code: int, text: bytes | str) -> str:
    raw = text.encode() if isinstance(text, str) else text
    enhanced = _ENHANCED_STATUS.search(raw)
    return f"{code} {enhanced.group().decode()}" if enhanced else str(code)


def _refused(exc: smtplib.SMTPRecipientsRefused) -> DeliveryError:
    code, text = next(iter(exc.recipients.values()))
    return _classify("recipient refused", code, text, permanent_rejections=True)


def _response_error(exc: smtplib.SMTPResponseException) -> DeliveryError:
    # A refused sender or failed login is our configuration: retry once it is fixed.
    permanent = isinstance(exc, smtplib.SMTPDataError)
    return _classify(type(exc).__name__, exc.smtp_code, exc.smtp_error, permanent)


def _classify(what: str, code: int, text: bytes | str, permanent_rejections: bool) -> DeliveryError:
    message = f"SMTP {what}: {_describe(code, text)}"
    if code >= 500 and permanent_rejections:
        return PermanentDeliveryError(message)
    return TransientDeliveryError(message)
