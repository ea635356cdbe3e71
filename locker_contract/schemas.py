"""JSON Schemas of every message, generated from the models (``docs/contract/*.schema.json``).

``python -m locker_contract.schemas --out docs/contract`` rewrites the committed
files; a test fails when they differ from what the models generate, so the published
schemas cannot drift from the code. Each schema describes a whole envelope with its
body, with ``type`` pinned to the message type and every envelope field required.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from locker_contract.bodies import (
    TYPED_EVENT_DATA,
    CommandMessage,
    CommandResultMessage,
    EventAckMessage,
    EventMessage,
    PresenceMessage,
    StateMessage,
    SyncMessage,
)
from locker_contract.desk import ReplyMessage, RequestMessage
from locker_contract.envelope import Envelope, MessageType

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_ID = "https://parcel-locker.example/contract/v1/"

ENVELOPES: dict[MessageType, type[Envelope[Any]]] = {
    "presence": PresenceMessage,
    "state": StateMessage,
    "evt": EventMessage,
    "evt_ack": EventAckMessage,
    "cmd": CommandMessage,
    "cmd_res": CommandResultMessage,
    "sync": SyncMessage,
    "req": RequestMessage,
    "res": ReplyMessage,
}


def schema_filename(message_type: str) -> str:
    return f"{message_type}.schema.json"


def message_schema(message_type: MessageType) -> dict[str, Any]:
    """The JSON Schema of one message type's envelope, body included."""
    schema = ENVELOPES[message_type].model_json_schema()
    schema["properties"]["type"] = {"const": message_type, "type": "string"}
    schema["required"] = list(schema["properties"])
    _close_pattern_maps(schema)
    if "Event" in schema.get("$defs", {}):
        schema["$defs"]["Event"]["allOf"] = _typed_event_data()
    header = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_ID + schema_filename(message_type),
        "title": f"lockers/v1 {message_type} message",
    }
    return header | {key: value for key, value in schema.items() if key != "title"}


def _typed_event_data() -> list[dict[str, Any]]:
    """``pickup``, ``pickup.refused`` and ``alarm`` events carry data of a fixed shape."""
    return [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {"properties": {"data": model.model_json_schema()}},
        }
        for event_type, model in sorted(TYPED_EVENT_DATA.items())
    ]


def _close_pattern_maps(node: Any) -> None:
    """Maps with key patterns (``State.doors``) allow no other keys, as the models do."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for child in node.values():
            _close_pattern_maps(child)
    elif isinstance(node, list):
        for child in node:
            _close_pattern_maps(child)


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def all_schemas() -> dict[str, str]:
    """File name → file text, for every message type."""
    return {schema_filename(kind): render(message_schema(kind)) for kind in ENVELOPES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in all_schemas().items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(ENVELOPES)} schemas to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
