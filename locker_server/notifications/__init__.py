"""Notifications: a transactional outbox, a delivery worker, and its channels.

Services enqueue with :class:`Notifier` inside their own transaction; the
:class:`NotificationWorker` delivers later by email (SMTP, with the pickup QR as a PNG),
SMS (a pluggable HTTP gateway) and HMAC-signed webhooks to carriers. See docs/notifications.md.
"""

from __future__ import annotations

from locker_server.notifications.models import Channel, NotificationMessage, Status
from locker_server.notifications.notifier import Notifier, RecipientContact

__all__ = ["Channel", "NotificationMessage", "Notifier", "RecipientContact", "Status"]
