"""Counter allocation under real concurrency (PostgreSQL): many operators issuing commands to
one cabinet at the same moment never share a counter, even for the cabinet's very first one
(when its control row does not exist yet)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from locker_server.db import make_engine
from locker_server.models.commands import LinkCommand
from locker_server.services import DomainDeps, commands
from tests.domain.conftest import OPERATOR, World
from tests.link_commands.conftest import RecordingPublisher

pytestmark = pytest.mark.postgres

ISSUERS = 8
COMMANDS_EACH = 5


def _issue_many(engine: Engine, deps: DomainDeps, world: World, barrier: threading.Barrier,
                errors: list[BaseException]) -> None:  # fmt: skip
    publisher = RecordingPublisher()
    barrier.wait()
    try:
        for index in range(COMMANDS_EACH):
            with Session(engine, expire_on_commit=False) as session:
                commands.issue_command(
                    session, publisher, deps.keys, cabinet_id=world.cabinet_id,
                    action="open_door", door=1 + index % 6, reason="parallel test",
                    caller=OPERATOR, audit=deps.audit,
                )  # fmt: skip
    except BaseException as exc:  # reported to the test thread
        errors.append(exc)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_parallel_issuers_never_share_a_counter_and_counters_have_no_gaps(
    database_url: str, deps: DomainDeps, world: World
) -> None:
    engine = make_engine(database_url)
    barrier = threading.Barrier(ISSUERS)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_issue_many, args=(engine, deps, world, barrier, errors))
        for _ in range(ISSUERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with Session(engine) as session:
        counters = sorted(session.exec(select(LinkCommand.counter)).all())
    engine.dispose()
    assert errors == []
    assert counters == list(range(1, ISSUERS * COMMANDS_EACH + 1))
