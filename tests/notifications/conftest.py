"""Fixtures of the notification tests: a notifier, recipients and an SMS-enabled setup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from locker_server.config import Settings
from locker_server.keys import ServerKeys
from locker_server.notifications import Notifier, RecipientContact


@pytest.fixture
def sms_settings(settings: Settings) -> Settings:
    """Settings with an SMS gateway configured (its URL is replaced by tests that send)."""
    return settings.model_copy(
        update={
            "sms_gateway_url": "http://127.0.0.1:9/sms",
            "sms_gateway_token": SecretStr("gateway-token-for-tests-0123456789"),
        }
    )


@pytest.fixture
def notifier(sms_settings: Settings, server_keys: ServerKeys) -> Notifier:
    return Notifier(settings=sms_settings, keys=server_keys)


@pytest.fixture
def alice() -> RecipientContact:
    return RecipientContact(
        recipient_id=7,
        name="Alice Martin",
        email="alice@example.org",
        phone="+33612345678",
        language="en",
    )


@pytest.fixture
def wang() -> RecipientContact:
    return RecipientContact(
        recipient_id=8,
        name="王小明",
        email="xiaoming.wang@example.cn",
        phone="+8613800138000",
        language="zh-CN",
    )


@pytest.fixture
def expires_at() -> datetime:
    return datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
