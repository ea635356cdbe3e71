"""The command guard with real Ed25519 keys: only a fresh, signed command for us may run."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from locker_agent.link.guard import (
    Accept,
    ClockOffset,
    CommandGuard,
    GuardPolicy,
    MemoryGuardStore,
    Reject,
)
from locker_contract import (
    CommandMessage,
    RejectReason,
    encode,
    encode_public_key,
    maintenance_token_hash,
    new_message_id,
    trusted_keys,
)
from tests.contract import messages

SERVER_KEY = Ed25519PrivateKey.generate()
MAINTENANCE_TOKEN = "svc-7f3a9c"


@dataclass
class Clocks:
    """Wall clock (the agent's, possibly wrong) and a monotonic clock, moved by the test."""

    now: datetime = messages.T0 + timedelta(seconds=1)
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Cabinet:
    clocks: Clocks = field(default_factory=Clocks)
    store: MemoryGuardStore = field(default_factory=MemoryGuardStore)
    counter: int = 0

    def guard(self, offset: ClockOffset | None = None, **policy: Any) -> CommandGuard:
        values: dict[str, Any] = {
            "cabinet_id": messages.CABINET,
            "doors": frozenset({1, 2, 3}),
            "trusted_keys": trusted_keys([encode_public_key(SERVER_KEY.public_key())]),
            "maintenance_token_hash": maintenance_token_hash(MAINTENANCE_TOKEN),
        }
        values.update(policy)
        return CommandGuard(
            GuardPolicy(**values),
            self.store,
            offset,
            clock=lambda: self.clocks.now,
            monotonic=lambda: self.clocks.mono,
        )

    def command(self, key: Ed25519PrivateKey = SERVER_KEY, **fields: Any) -> CommandMessage:
        """The server's next command: counter +1, issued at the current server time."""
        self.counter += 1
        values: dict[str, Any] = {"counter": self.counter, "issued_at": self.clocks.now}
        values.update(fields)
        return messages.command(key, **values)


@pytest.fixture
def cabinet() -> Cabinet:
    return Cabinet()


def _decide(guard: CommandGuard, command: CommandMessage) -> Accept | Reject:
    return guard.check(encode(command), retained=False)


def _reason(decision: Accept | Reject) -> RejectReason | None:
    return decision.reason if isinstance(decision, Reject) else None


def test_a_fresh_signed_open_for_an_existing_door_is_accepted(cabinet: Cabinet) -> None:
    command = cabinet.command(door=3)
    decision = cabinet.guard().check(encode(command), retained=False)
    assert decision == Accept(command)
    assert decision.command_id == command.body.command_id


def test_a_retained_command_is_never_acted_on_even_when_valid(cabinet: Cabinet) -> None:
    command = cabinet.command()
    decision = cabinet.guard().check(encode(command), retained=True)
    assert decision == Reject(RejectReason.RETAINED, command.body.command_id)
    assert cabinet.store.last_counter() == 0


@pytest.mark.parametrize(
    "payload", [b"", b"open door 2", b'{"v":1,"type":"cmd"}', b"\x00" * 64], ids=repr
)
def test_garbage_on_the_command_topic_is_malformed(cabinet: Cabinet, payload: bytes) -> None:
    assert cabinet.guard().check(payload, retained=False) == Reject(RejectReason.MALFORMED, None)


def test_a_command_signed_by_an_unknown_key_is_rejected(cabinet: Cabinet) -> None:
    forged = cabinet.command(key=Ed25519PrivateKey.generate())
    decision = cabinet.guard().check(encode(forged), retained=False)
    assert _reason(decision) is RejectReason.UNKNOWN_KEY


def test_a_tampered_command_has_a_bad_signature(cabinet: Cabinet) -> None:
    document = json.loads(encode(cabinet.command(door=1)))
    document["body"]["door"] = 2
    decision = cabinet.guard().check(json.dumps(document).encode(), retained=False)
    assert _reason(decision) is RejectReason.BAD_SIGNATURE


def test_a_command_re_targeted_from_another_cabinet_has_a_bad_signature(cabinet: Cabinet) -> None:
    document = json.loads(encode(cabinet.command(cabinet_id="LOBBY-02")))
    document["cabinet_id"] = messages.CABINET
    decision = cabinet.guard().check(json.dumps(document).encode(), retained=False)
    assert _reason(decision) is RejectReason.BAD_SIGNATURE


def test_a_genuine_command_for_another_cabinet_is_wrong_cabinet(cabinet: Cabinet) -> None:
    decision = cabinet.guard().check(encode(cabinet.command(cabinet_id="LOBBY-02")), retained=False)
    assert _reason(decision) is RejectReason.WRONG_CABINET
    assert cabinet.store.last_counter() == 0  # another cabinet's counter is not ours


def test_an_open_for_a_door_we_do_not_have_is_unknown_door(cabinet: Cabinet) -> None:
    decision = cabinet.guard().check(encode(cabinet.command(door=9)), retained=False)
    assert _reason(decision) is RejectReason.UNKNOWN_DOOR


def test_a_command_arriving_after_its_expiry_is_expired(cabinet: Cabinet) -> None:
    command = cabinet.command()
    cabinet.clocks.advance(61)
    assert _reason(cabinet.guard().check(encode(command), retained=False)) is RejectReason.EXPIRED


def test_expiry_is_judged_on_server_time_learned_from_accepted_commands(cabinet: Cabinet) -> None:
    """The agent's clock is 5 minutes slow: after learning that, a stale command is expired."""
    guard = cabinet.guard()
    server_time = cabinet.clocks.now + timedelta(minutes=5)
    first = cabinet.command(action="ping", door=None, issued_at=server_time)
    assert isinstance(_decide(guard, first), Accept)
    assert guard.clock_offset.offset == timedelta(minutes=5)
    stale = cabinet.command(issued_at=cabinet.clocks.now + timedelta(seconds=170))
    assert _reason(_decide(guard, stale)) is RejectReason.EXPIRED


def test_a_fast_local_clock_does_not_expire_fresh_commands_once_learned(cabinet: Cabinet) -> None:
    offset = ClockOffset()
    offset.observe(messages.T0, messages.T0 + timedelta(minutes=10))  # local is 10 min ahead
    cabinet.clocks.now = messages.T0 + timedelta(minutes=10, seconds=2)
    guard = cabinet.guard(offset)
    command = cabinet.command(issued_at=messages.T0)
    assert isinstance(_decide(guard, command), Accept)


def test_the_same_command_delivered_twice_runs_once(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    payload = encode(cabinet.command())
    assert isinstance(guard.check(payload, retained=False), Accept)
    assert _reason(guard.check(payload, retained=False)) is RejectReason.REPLAYED_COUNTER


def test_a_command_with_an_older_counter_is_a_replay(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    older, newer = cabinet.command(), cabinet.command()
    assert isinstance(_decide(guard, newer), Accept)
    assert _reason(_decide(guard, older)) is RejectReason.REPLAYED_COUNTER


def test_a_known_command_id_under_a_new_counter_is_a_duplicate(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    command_id = new_message_id()
    assert isinstance(
        guard.check(encode(cabinet.command(command_id=command_id)), retained=False), Accept
    )
    again = cabinet.command(command_id=command_id)
    assert _reason(_decide(guard, again)) is RejectReason.DUPLICATE_COMMAND


def test_replays_stay_rejected_after_the_agent_restarts(cabinet: Cabinet) -> None:
    payload = encode(cabinet.command())
    assert isinstance(cabinet.guard().check(payload, retained=False), Accept)
    restarted = cabinet.guard()  # same store, fresh guard: what the journal gives back
    assert _reason(restarted.check(payload, retained=False)) is RejectReason.REPLAYED_COUNTER


def test_the_31st_open_within_a_minute_is_rate_limited(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    for _ in range(30):
        assert isinstance(guard.check(encode(cabinet.command()), retained=False), Accept)
        cabinet.clocks.advance(1)
    decision = guard.check(encode(cabinet.command()), retained=False)
    assert _reason(decision) is RejectReason.RATE_LIMITED
    cabinet.clocks.advance(31)  # the first opens leave the window
    assert isinstance(guard.check(encode(cabinet.command()), retained=False), Accept)


def test_pings_do_not_count_against_the_open_rate(cabinet: Cabinet) -> None:
    guard = cabinet.guard(max_opens_per_window=1)
    for _ in range(5):
        ping = cabinet.command(action="ping", door=None)
        assert isinstance(_decide(guard, ping), Accept)
    assert isinstance(guard.check(encode(cabinet.command()), retained=False), Accept)


def test_a_rate_limited_command_gets_no_second_chance_when_replayed_later(
    cabinet: Cabinet,
) -> None:
    guard = cabinet.guard(max_opens_per_window=1)
    assert isinstance(guard.check(encode(cabinet.command()), retained=False), Accept)
    limited = encode(cabinet.command())
    assert _reason(guard.check(limited, retained=False)) is RejectReason.RATE_LIMITED
    cabinet.clocks.advance(59)  # still before expiry, but after the rate window
    assert _reason(guard.check(limited, retained=False)) is RejectReason.REPLAYED_COUNTER


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_open_all_without_the_maintenance_credential_is_refused(
    cabinet: Cabinet, token: str | None
) -> None:
    command = cabinet.command(action="open_all", door=None, maintenance_token=token)
    decision = cabinet.guard().check(encode(command), retained=False)
    assert _reason(decision) is RejectReason.MAINTENANCE_REQUIRED


def test_open_all_is_refused_when_no_maintenance_hash_is_configured(cabinet: Cabinet) -> None:
    command = cabinet.command(action="open_all", door=None, maintenance_token=MAINTENANCE_TOKEN)
    decision = cabinet.guard(maintenance_token_hash=None).check(encode(command), retained=False)
    assert _reason(decision) is RejectReason.MAINTENANCE_REQUIRED


def test_open_all_with_the_maintenance_token_is_accepted(cabinet: Cabinet) -> None:
    command = cabinet.command(action="open_all", door=None, maintenance_token=MAINTENANCE_TOKEN)
    assert cabinet.guard().check(encode(command), retained=False) == Accept(command)


def test_checks_run_in_the_documented_order(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    unknown_door_and_expired = cabinet.command(door=9)
    cabinet.clocks.advance(120)
    assert _reason(_decide(guard, unknown_door_and_expired)) is RejectReason.UNKNOWN_DOOR
    expired_and_replayed = cabinet.command(
        counter=1, issued_at=cabinet.clocks.now - timedelta(hours=1)
    )
    assert _reason(_decide(guard, expired_and_replayed)) is RejectReason.EXPIRED
    forged_for_other = cabinet.command(key=Ed25519PrivateKey.generate(), cabinet_id="X")
    assert _reason(_decide(guard, forged_for_other)) is RejectReason.UNKNOWN_KEY


def test_a_rejection_names_the_command_so_the_server_can_close_it(cabinet: Cabinet) -> None:
    command = cabinet.command(door=9)
    assert cabinet.guard().check(encode(command), retained=False) == Reject(
        RejectReason.UNKNOWN_DOOR, command.body.command_id, command.body.counter
    )


def test_every_rejection_is_logged_without_the_token(
    cabinet: Cabinet, caplog: pytest.LogCaptureFixture
) -> None:
    # (DEBUG: the command runner warns about the rejections it journals, a flood is counted)
    caplog.set_level(logging.DEBUG, logger="locker_agent.link.guard")
    command = cabinet.command(action="open_all", door=None, maintenance_token="leaky-secret")
    cabinet.guard().check(encode(command), retained=False)
    assert "maintenance_required" in caplog.text
    assert command.body.command_id in caplog.text
    assert "leaky-secret" not in caplog.text


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), retained=st.booleans())
def test_no_payload_whatever_makes_the_guard_raise_or_accept(
    payload: bytes, retained: bool
) -> None:
    guard = Cabinet().guard()
    assert isinstance(guard.check(payload, retained=retained), Reject)


def test_a_rejected_old_command_does_not_move_the_learned_clock(cabinet: Cabinet) -> None:
    guard = cabinet.guard()
    old = cabinet.command(issued_at=cabinet.clocks.now - timedelta(hours=1))
    assert _reason(_decide(guard, old)) is RejectReason.EXPIRED
    assert guard.clock_offset.offset == timedelta(0)
