"""Notifications: a transactional outbox, a delivery worker, and its channels.

Services enqueue with :class:`Notifier` inside their own transaction; the
:class:`NotificationWorker` delivers later by email (SMTP, with the pickup QR as a PNG),
SMS (a pluggable HTTP gateway) and HMAC-signed webhooks to carriers. See docs/notifications.md.
"""

from __future__ import annotations

from locker_server.notifications.mail import EmailTransport, SmtpEmailTransport
from locker_server.notifications.models import Channel, NotificationMessage, Status
from locker_server.notifications.notifier import (
    AlarmNotice,
    Notifier,
    RecipientContact,
    StaffContact,
)
from locker_server.notifications.outbox import cancel_pending, list_messages, resend
from locker_server.notifications.sms import HttpSmsGateway, SmsGateway
from locker_server.notifications.webhooks import (
    HttpWebhookPoster,
    WebhookPoster,
    carrier_webhook_secret,
    verify_webhook_signature,
)
from locker_server.notifications.worker import NotificationWorker

__all__ = [
    "AlarmNotice",
    "Channel",
    "EmailTransport",
    "HttpSmsGateway",
    "HttpWebhookPoster",
    "NotificationMessage",
    "NotificationWorker",
    "Notifier",
    "RecipientContact",
    "SmsGateway",
    "SmtpEmailTransport",
    "StaffContact",
    "Status",
    "WebhookPoster",
    "cancel_pending",
    "carrier_webhook_secret",
    "list_messages",
    "resend",
    "verify_webhook_signature",
]
