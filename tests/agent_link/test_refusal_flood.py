"""A flood of forged messages cannot grow the journal without bound, and no refusal is lost.

Someone holding the server's broker account can publish thousands of forged ``cmd``,
``evt/ack`` and ``sync`` messages a second. Each kind of refusal alarm gets at most
``ALARMS_PER_WINDOW`` rows of its own per window, plus ONE summary that counts the rest
exactly, by reason. A command the server genuinely issued and the cabinet refuses
(expired, rate limited, unknown door) is answered on its own whatever the flood.

The command runner, the inbound gate and the recorder run on the real journal (a SQLite
file) and real simulated boards (a pty); the recorder's clock is a counter the test moves.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from locker_agent.cabinet import Cabinet, protocol_named
from locker_agent.config import parse_settings
from locker_agent.journal import Journal
from locker_agent.link.commands import CommandRunner, ResultReady
from locker_agent.link.guard import CommandGuard, GuardPolicy
from locker_agent.link.guard_store import JournalGuardStore
from locker_agent.link.inbound import InboundGate
from locker_agent.link.mqtt import Outgoing
from locker_agent.link.refusals import (
    ALARMS_PER_WINDOW,
    WINDOW_SECONDS,
    RefusalRecorder,
    summary_detail,
)
from locker_contract import (
    CommandResultMessage,
    EventAckMessage,
    RejectReason,
    UnsignedEventAck,
    decode,
    key_id_of,
    topics,
    trusted_keys,
)
from locker_contract.bodies import AlarmData
from simulators.bus import SimulatedBus
from tests.agent_link.conftest import RigFactory
from tests.agent_link.rig import (
    DOORS,
    FAST_CONTROL,
    FAST_LINK,
    Signer,
    agent_document,
    start_bus,
    wait_until,
)
from tests.link_support import forged

N = ALARMS_PER_WINDOW
SUMMARY = re.compile(r"(\d+) more refused in \d+ s: (.*)")


@dataclass
class Monotonic:
    """The recorder's and the rate limiter's clock, moved by the test."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Station:
    """One cabinet's inbound side: guard + command runner + inbound gate, one recorder."""

    journal: Journal
    runner: CommandRunner
    gate: InboundGate
    bus: SimulatedBus
    signer: Signer
    clock: Monotonic
    published: list[Outgoing] = field(default_factory=list)

    def publish(self, outgoing: Outgoing) -> int:
        self.published.append(outgoing)
        return len(self.published)

    def receive(self, payload: bytes) -> None:
        self.runner.receive(payload, retained=False, publish=self.publish)

    def alarms(self, kind: str) -> list[str]:
        return [
            str(event.data["detail"])
            for event in self.journal.pending(limit=100_000)
            if event.type == "alarm" and event.data["kind"] == kind
        ]

    def results(self) -> list[tuple[str, str, str | None]]:
        """(command id, status, reason) of every final result waiting in the journal."""
        waiting = self.journal.pending_results()
        bodies = [decode(r.payload, CommandResultMessage).body for r in waiting]
        return [(body.command_id, body.status, body.reason) for body in bodies]

    def pulses(self) -> list[int]:
        return [self.bus.board(1).door(n).unlock_pulses for n in range(1, DOORS + 1)]


@pytest.fixture
def station(journal: Journal, cabinet_id: str) -> Iterator[Station]:
    signer = Signer(cabinet_id)
    settings = parse_settings(agent_document(cabinet_id, journal.path, signer.public_key))
    bus, port = start_bus()
    protocol = protocol_named("8a80")
    cabinet = Cabinet(port, protocol, settings.layout(protocol), FAST_LINK, FAST_CONTROL)
    cabinet.start()
    clock = Monotonic()
    keys = trusted_keys([signer.public_key])
    policy = GuardPolicy(
        cabinet_id=cabinet_id,
        doors=frozenset(cabinet.layout.doors),
        trusted_keys=keys,
        max_opens_per_window=1,
    )
    guard = CommandGuard(policy, JournalGuardStore(journal), monotonic=clock)
    recorder = RefusalRecorder(journal, monotonic=clock)
    ready: list[ResultReady] = []
    runner = CommandRunner(
        cabinet_id, guard, journal, cabinet.doors, ready.append, refusals=recorder
    )
    gate = InboundGate(cabinet_id, keys, journal, recorder)
    try:
        yield Station(journal, runner, gate, bus, signer, clock)
    finally:
        runner.close()
        cabinet.stop()
        bus.stop()


def forged_commands(station: Station, count: int) -> tuple[list[bytes], Counter[str]]:
    """``count`` forged commands, each with its own id: 70 % signed with the attacker's own
    key, 20 % naming the server's key over the attacker's signature, 10 % not even JSON."""
    attacker = Signer(station.signer.cabinet_id)
    payloads: list[bytes] = []
    sent: Counter[str] = Counter()
    for i in range(count):
        if i % 10 == 9:
            payloads.append(b"{not json")
            sent["malformed"] += 1
        elif i % 10 >= 7:
            payloads.append(forged.claiming_key(attacker.command()[1], station.signer.key))
            sent["bad_signature"] += 1
        else:
            payloads.append(attacker.command()[1])
            sent["unknown_key"] += 1
    return payloads, sent


def summaries(details: list[str]) -> list[tuple[int, dict[str, int]]]:
    """(total, {reason: count}) of every summary alarm among ``details``."""
    found = []
    for detail in details:
        match = SUMMARY.fullmatch(detail)
        if match:
            pairs = (part.rsplit(" ", 1) for part in match[2].split(", "))
            reasons = {name: int(n) for name, n in pairs}
            found.append((int(match[1]), reasons))
    return found


def individual(details: list[str]) -> list[str]:
    return [d for d in details if not SUMMARY.fullmatch(d)]


def reasons_of(details: list[str]) -> Counter[str]:
    """Refusals by reason: the individual alarms' plus every summary's counts."""
    found = Counter(detail.split(":")[0] for detail in individual(details))
    for _, reasons in summaries(details):
        found.update(reasons)
    return found


# -- a flood of forged commands ------------------------------------------------------------


def test_ten_thousand_forged_commands_leave_the_limit_and_one_exact_summary_per_window(
    station: Station,
) -> None:
    payloads, sent = forged_commands(station, 10_000)

    for payload in payloads:
        station.receive(payload)
        station.clock.advance(1 / 128)  # 10,000 in 78 s: 7,680 in a first window, then 2,320
    station.clock.advance(WINDOW_SECONDS)
    station.runner.publish_results(station.publish)  # the worker's next pass

    details = station.alarms("command_rejected")
    assert len(details) == 2 * (N + 1)
    assert len(individual(details)) == 2 * N
    assert [total for total, _ in summaries(details)] == [7680 - N, 2320 - N]
    assert reasons_of(details) == sent  # every refusal accounted for, by reason
    answered = {command_id for command_id, _, _ in station.results()}
    assert len(answered) <= 2 * N  # no cmd/res of its own for a counted refusal
    assert answered <= {detail.rsplit(" ", 1)[1] for detail in individual(details)}
    assert station.pulses() == [0] * DOORS


def test_genuine_commands_refused_during_a_flood_are_still_answered_one_by_one(
    station: Station,
) -> None:
    payloads, _ = forged_commands(station, 200)
    for payload in payloads:
        station.receive(payload)
    assert len(station.alarms("command_rejected")) == N  # the flood used up the window
    signer = station.signer
    opened_id, opened = signer.command("open_door", door=1)
    limited_id, limited = signer.command("open_door", door=2)  # 1 remote open per minute
    expired_id, expired = signer.command("open_door", door=3, issued_ago=120, expires_in=60)
    unknown_id, unknown = signer.command("open_door", door=99)

    for payload in (opened, limited, expired, unknown):
        station.receive(payload)
    for payload in (opened, expired):  # played again by someone on the broker
        station.receive(payload)

    results = station.results()
    assert (limited_id, "rejected", "rate_limited") in results
    assert (expired_id, "expired", "expired") in results
    assert (unknown_id, "rejected", "unknown_door") in results
    details = individual(station.alarms("command_rejected"))
    for reason, command_id in [
        ("rate_limited", limited_id),
        ("expired", expired_id),
        ("unknown_door", unknown_id),
    ]:
        assert details.count(f"{reason}: command {command_id}") == 1
    # a genuine command played again is what anyone on the broker can do: only counted
    assert not [r for r in results if r[0] == opened_id and r[1] == "rejected"]
    assert wait_until(lambda: (opened_id, "succeeded", None) in station.results())
    assert station.pulses() == [1] + [0] * (DOORS - 1)
    station.runner.close()
    counted = summaries(station.alarms("command_rejected"))[0][1]
    assert (counted["replayed_counter"], counted["expired"]) == (1, 1)


def test_the_first_refusal_after_a_window_ends_journals_that_windows_summary(
    station: Station,
) -> None:
    payloads, _ = forged_commands(station, N + 15)
    for payload in payloads[:-1]:
        station.receive(payload)
    assert not summaries(station.alarms("command_rejected"))

    station.clock.advance(WINDOW_SECONDS)
    station.receive(payloads[-1])

    details = station.alarms("command_rejected")
    assert [total for total, _ in summaries(details)] == [14]
    assert len(individual(details)) == N + 1  # the new window's first refusal is its own


def test_a_window_that_ends_quietly_is_summed_up_on_the_workers_next_pass(
    station: Station,
) -> None:
    payloads, sent = forged_commands(station, N + 30)
    for payload in payloads:
        station.receive(payload)
    station.runner.publish_results(station.publish)
    assert not summaries(station.alarms("command_rejected"))  # the window is still open

    station.clock.advance(WINDOW_SECONDS)
    station.runner.publish_results(station.publish)

    details = station.alarms("command_rejected")
    assert [total for total, _ in summaries(details)] == [30]
    assert reasons_of(details) == sent


def test_a_clean_shutdown_journals_the_summary_of_a_window_still_open(station: Station) -> None:
    payloads, sent = forged_commands(station, N + 30)
    for payload in payloads:
        station.receive(payload)

    station.runner.close()

    details = station.alarms("command_rejected")
    assert [total for total, _ in summaries(details)] == [30]
    assert reasons_of(details) == sent


# -- forged acks and syncs: same recorder, a budget per kind -------------------------------------


def test_forged_acks_and_syncs_are_bounded_per_kind_and_leave_the_command_budget_alone(
    station: Station,
) -> None:
    cabinet_id = station.signer.cabinet_id
    attacker = Signer(cabinet_id).key
    own_key = UnsignedEventAck(event_ids=["0" * 32], key_id=key_id_of(attacker.public_key()))
    for _ in range(250):
        station.gate.ack(forged.unsigned("evt_ack", cabinet_id, {"event_ids": ["0" * 32]}))
        station.gate.ack(forged.signed_by(attacker, cabinet_id, own_key, EventAckMessage))
        station.gate.sync(forged.unsigned("sync", cabinet_id, {"kind": "time", "version": 9}))
    assert len(station.alarms("ack_rejected")) == len(station.alarms("sync_rejected")) == N

    payloads, _ = forged_commands(station, 5)
    for payload in payloads:
        station.receive(payload)
    assert len(station.alarms("command_rejected")) == 5
    station.runner.close()

    assert reasons_of(station.alarms("ack_rejected")) == {"unsigned": 250, "unknown_key": 250}
    assert reasons_of(station.alarms("sync_rejected")) == {"unsigned": 250}
    assert len(station.alarms("ack_rejected")) == len(station.alarms("sync_rejected")) == N + 1


def test_a_summary_naming_every_reason_fits_the_contract_and_keeps_the_exact_total() -> None:
    counted = Counter({reason.value: 123_456 + i for i, reason in enumerate(RejectReason)})

    detail = summary_detail(counted, WINDOW_SECONDS)

    assert len(detail) <= 200
    AlarmData(kind="command_rejected", detail=detail)
    (most, count), *_ = counted.most_common()
    assert detail.startswith(f"{counted.total()} more refused in 60 s: {most} {count}, ")
    assert detail.endswith(", …")  # the rarest reasons did not fit


# -- the same flood through the real broker, next to the real runtime ---------------------------


def test_a_flood_on_the_broker_keeps_the_journal_bounded_and_a_genuine_command_still_opens(
    cabinet_id: str, make_rig: RigFactory
) -> None:
    rig = make_rig(cabinet_id)
    rig.door(4).force_open()
    event_ids = [e.event_id for e in rig.server.wait(lambda s: s.events_of("door.forced_open"))]
    attacker = Signer(cabinet_id)
    forged_ack = forged.unsigned("evt_ack", cabinet_id, {"event_ids": event_ids})
    flood = 300  # a few seconds on the local broker: well inside one window

    for door in (n % DOORS + 1 for n in range(flood)):
        rig.send(attacker.command("open_door", door=door)[1])
        rig.server.client.publish(topics.evt_ack(cabinet_id), forged_ack)
    rig.server.ack(event_ids)  # handled after every forged ack before it (same topic)
    journal = rig.runtime.journal
    assert wait_until(lambda: not {e.event_id for e in journal.pending()} & set(event_ids), 30)
    command_id, payload = rig.signer.command("open_door", door=3)
    rig.send(payload)  # handled after every forged command before it

    assert rig.server.result(command_id, timeout=30).status == "succeeded"
    assert [rig.door(n).unlock_pulses for n in range(1, DOORS + 1)] == [0, 0, 1] + [0] * 5
    rig.runtime.stop()
    reopened = Journal.open(journal.path)
    try:
        for kind, reason in (("command_rejected", "unknown_key"), ("ack_rejected", "unsigned")):
            details = [
                str(e.data["detail"])
                for e in reopened.pending(limit=10_000)
                if e.type == "alarm" and e.data["kind"] == kind
            ]
            assert len(individual(details)) == N
            assert summaries(details) == [(flood - N, {reason: flood - N})]
    finally:
        reopened.close()
