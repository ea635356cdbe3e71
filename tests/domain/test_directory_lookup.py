"""How a courier at the kiosk finds a recipient in the directory."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from locker_server.services import DomainDeps
from locker_server.services.directory import find_recipient
from tests.domain.conftest import new_recipient


def test_a_phone_is_found_whatever_separators_either_side_wrote(
    engine: Engine, deps: DomainDeps
) -> None:
    spaced = new_recipient(engine, deps, "Spaced", phone="+86 (138) 0013-8000")
    new_recipient(engine, deps, "Other", phone="+86 139 0000 0000")
    with Session(engine) as session:
        typed_at_kiosk = find_recipient(session, kind="phone", value="+8613800138000")
        written_otherwise = find_recipient(session, kind="phone", value=" +86-138-0013 8000 ")
        nobody = find_recipient(session, kind="phone", value="+8613800138001")
    assert typed_at_kiosk is not None
    assert typed_at_kiosk.id == spaced
    assert written_otherwise is not None
    assert written_otherwise.id == spaced
    assert nobody is None


def test_two_recipients_with_the_same_digits_find_nobody(engine: Engine, deps: DomainDeps) -> None:
    new_recipient(engine, deps, "First", phone="+86 138 0013 8000")
    new_recipient(engine, deps, "Second", phone="+8613800138000")
    with Session(engine) as session:
        assert find_recipient(session, kind="phone", value="+8613800138000") is None
