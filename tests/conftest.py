"""Fixtures shared by the whole suite.

Database tests run twice: on SQLite and on the real PostgreSQL server (127.0.0.1:5432,
trust auth). Each test gets a fresh database copied from a template migrated once per
session with the project's real Alembic migrations, so tests never share state.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from locker_server.config import Settings
from locker_server.db import make_engine, migrate
from locker_server.keys import ServerKeys, load_keys

PG_ADMIN_URL = os.environ.get(
    "LOCKER_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _pg_admin(statement: str) -> None:
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"locker_tpl_{os.getpid()}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    engine = make_engine(pg_url(name))
    migrate(engine)
    engine.dispose()
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_sqlite(template: Path, directory: Path) -> str:
    target = directory / "locker.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, fully migrated database on each backend."""
    if request.param == "sqlite":
        yield _fresh_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    template = request.getfixturevalue("pg_template")
    name = f"locker_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield pg_url(name)
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def server_keys(tmp_path: Path) -> ServerKeys:
    return load_keys(tmp_path / "secrets")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secrets_dir=tmp_path / "secrets",
    )


SHARED_BROKER = ("127.0.0.1", 1883)


def _clear_retained_link_messages() -> int:
    """Remove every retained `lockers/v1/...` message from the machine's shared broker.

    Tests publish retained presence and state there under throw-away cabinet ids; left
    behind, they pile up run after run and flood every new subscriber (Mosquitto then drops
    live QoS 1 messages beyond its per-client queue). The broker on 127.0.0.1:1883 is this
    machine's test broker: never point the suite at a broker that carries real cabinets.
    """
    import threading
    import time

    import paho.mqtt.client as mqtt

    topics: set[str] = set()
    last_seen = [time.monotonic()]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            topics.add(message.topic)
        last_seen[0] = time.monotonic()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    try:
        client.connect(*SHARED_BROKER)
    except OSError:
        return 0  # no shared broker: the tests that need it say so themselves
    client.loop_start()
    client.subscribe("lockers/v1/#", qos=0)
    subscribed.wait(5)
    # Quiet for half a second means every retained message has arrived; bounded, because
    # a busy shared broker (another test run, a cabinet left running) is never quiet.
    give_up = time.monotonic() + 10
    while time.monotonic() - last_seen[0] < 0.5 and time.monotonic() < give_up:
        time.sleep(0.1)
    sent = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
    for info in sent:
        info.wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return len(topics)


@pytest.fixture(scope="session", autouse=True)
def _shared_broker_without_stale_retained_messages() -> Iterator[None]:
    _clear_retained_link_messages()
    yield
    _clear_retained_link_messages()
