"""From LOCKER_MQTT_* settings to the bridge's connection: production broker or dev broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from locker_server.config import Settings
from locker_server.link.bridge import BridgeConfig


def test_a_tls_broker_url_gives_mqtt5_shared_subscriptions_with_the_service_account(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mqtt_url="mqtts://broker.example:8884",
        mqtt_username="locker-server",
        mqtt_password=SecretStr("a-long-random-password"),
        mqtt_client_id="srv-1",
    )

    config = BridgeConfig.from_settings(settings)

    assert (config.host, config.port, config.tls, config.mqtt_v5) == (
        "broker.example",
        8884,
        True,
        True,
    )
    assert (config.username, config.password) == ("locker-server", "a-long-random-password")
    assert config.subscriptions() == [
        "$share/locker-server/lockers/v1/+/presence",
        "$share/locker-server/lockers/v1/+/state",
        "$share/locker-server/lockers/v1/+/evt",
        "$share/locker-server/lockers/v1/+/cmd/res",
        "$share/locker-server/lockers/v1/+/req",
    ]


def test_without_a_broker_url_the_bridge_targets_the_embedded_dev_broker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedded_broker_port=18830)

    config = BridgeConfig.from_settings(settings)

    assert (config.host, config.port, config.mqtt_v5, config.share_group) == (
        "127.0.0.1",
        18830,
        False,
        None,
    )
    assert config.subscriptions()[0] == "lockers/v1/+/presence"
    assert settings.mqtt_client_id.startswith("locker-server-")


@pytest.mark.parametrize(
    "bad",
    [
        {"mqtt_url": "http://broker:1883"},
        {"mqtt_password": SecretStr("changeme")},
        {"mqtt_share_group": "a/b"},
        {"mqtt_client_id": "srv+1"},
    ],
)
def test_unusable_broker_settings_are_refused_at_start(
    tmp_path: Path, bad: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **bad)  # type: ignore[arg-type]
