"""The committed JSON Schemas: up to date, and agreeing with the models on what is valid."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import ValidationError

from locker_contract import Envelope, decode, encode
from locker_contract.schemas import ENVELOPES, all_schemas, main
from tests.contract import messages
from tests.contract.schema_validation import (
    SCHEMA_DIR,
    SchemaCheckingPublisher,
    assert_matches_schema,
)

KEY = Ed25519PrivateKey.generate()


def test_committed_schema_files_equal_what_the_models_generate() -> None:
    committed = {path.name: path.read_text("utf-8") for path in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == all_schemas(), (
        "docs/contract is stale: run python -m locker_contract.schemas --out docs/contract"
    )


def test_the_generator_writes_one_schema_per_message_type(tmp_path: Any) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(f"{kind}.schema.json" for kind in ENVELOPES)


@pytest.mark.parametrize("envelope", messages.every_message(KEY), ids=lambda e: e.type)
def test_every_message_either_side_sends_validates_against_its_schema(
    envelope: Envelope[Any],
) -> None:
    assert_matches_schema(encode(envelope))


@pytest.mark.parametrize(
    ("message", "change"),
    [
        (messages.presence, lambda d: d["body"].update(extra=1)),
        (messages.presence, lambda d: d.pop("v")),
        (messages.presence, lambda d: d.update(type="state")),
        (messages.state, lambda d: d["body"]["doors"].update({"x": {"state": "open"}})),
        (messages.presence, lambda d: d.update(sent_at="2026-11-26 10:00")),
        (messages.presence, lambda d: d.update(cabinet_id="a/b")),
        (messages.allow_list_sync, lambda d: d["body"].update(kind="teleport")),
        (messages.event_batch, lambda d: d["body"]["events"][3]["data"].update(code="1234")),
        (messages.event_batch, lambda d: d["body"]["events"][2]["data"].update(mode="online")),
        (messages.event_batch, lambda d: d["body"]["events"][4].update(data={})),
    ],
    ids=[
        "extra-field",
        "no-version",
        "wrong-type",
        "door-key",
        "timestamp",
        "cabinet",
        "kind",
        "refusal-with-code",
        "online-pickup",
        "alarm-without-kind",
    ],
)
def test_what_the_models_refuse_the_schemas_refuse_too(message: Any, change: Any) -> None:
    document = json.loads(encode(message()))
    change(document)
    with pytest.raises(ValidationError):
        assert_matches_schema(document)


def _readme_examples() -> list[dict[str, Any]]:
    text = (SCHEMA_DIR / "README.md").read_text("utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    documents = [json.loads(block) for block in blocks]
    return [doc for doc in documents if isinstance(doc, dict) and "type" in doc and "v" in doc]


def test_the_readme_shows_an_example_of_every_message_type() -> None:
    assert {doc["type"] for doc in _readme_examples()} == set(ENVELOPES)


@pytest.mark.parametrize("document", _readme_examples(), ids=lambda d: d["type"])
def test_every_readme_example_is_a_valid_message(document: dict[str, Any]) -> None:
    assert_matches_schema(document)
    decode(json.dumps(document).encode(), ENVELOPES[document["type"]])


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, payload, retain))


def test_a_checking_publisher_passes_valid_messages_and_stops_invalid_ones() -> None:
    recorder = _Recorder()
    publisher = SchemaCheckingPublisher(recorder)
    publisher.publish("lockers/v1/LOBBY-01/presence", encode(messages.presence()), retain=True)
    bad = json.loads(encode(messages.presence()))
    bad["body"]["connection"] = 0
    with pytest.raises(ValidationError):
        publisher.publish("lockers/v1/LOBBY-01/presence", json.dumps(bad).encode())
    assert publisher.checked == 1
    assert [topic for topic, _, _ in recorder.sent] == ["lockers/v1/LOBBY-01/presence"]
