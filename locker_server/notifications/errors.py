"""Errors of the notifications package.

Channel adapters translate library errors (``smtplib``, ``httpx``) into these where they
enter our code; the worker only needs to know whether trying again could help::

    NotificationError
    ├── DeliveryError                 a channel did not take the message
    │   ├── TransientDeliveryError    try again later (timeout, refused connection, SMTP 4xx,
    │   │                             HTTP 408/425/429/5xx, channel not configured yet)
    │   └── PermanentDeliveryError    retrying cannot help (SMTP 5xx recipient/data refused,
    │                                 other HTTP 4xx, malformed destination)
    ├── TemplateRenderError           no template for this event, or a parameter missing
    ├── SealingError                  a sealed pickup secret cannot be opened (wrong key or
    │                                 an edited row)
    ├── WebhookSignatureInvalid       receiver side: missing, stale or wrong signature
    ├── LinkRejected                  a recipient link that is malformed, forged, altered
    │                                 or expired
    ├── MessageNotFound               also a locker_server.errors.NotFound (HTTP 404)
    └── NotResendable                 also a locker_server.errors.Conflict (HTTP 409)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from locker_server.errors import Conflict, NotFound

if TYPE_CHECKING:
    from locker_server.notifications.recipient_link import RecipientLink


class NotificationError(Exception):
    """Base of every error raised by ``locker_server.notifications``."""


class DeliveryError(NotificationError):
    """A channel did not accept a message. The text never holds a secret or an address."""

    permanent: bool = False


class TransientDeliveryError(DeliveryError):
    permanent = False


class PermanentDeliveryError(DeliveryError):
    permanent = True


class TemplateRenderError(NotificationError):
    """A message text could not be rendered (missing template or parameter)."""


class SealingError(NotificationError):
    """The sealed secret of an outbox row could not be opened."""


class WebhookSignatureInvalid(NotificationError):
    """A received webhook does not carry a valid, fresh signature."""


class LinkRejected(NotificationError):
    """A recipient link that does not open (``malformed``, ``forged``) or has ``expired``.

    ``link`` is what an expired link said (it opened: only its time is over), else None.
    """

    def __init__(self, reason: str, *, link: RecipientLink | None = None) -> None:
        super().__init__(f"recipient link {reason}")
        self.reason = reason
        self.link = link


class MessageNotFound(NotFound, NotificationError):
    """No outbox message with that id."""


class NotResendable(Conflict, NotificationError):
    """Only failed (or cancelled) messages whose secret is still sealed can be resent."""
