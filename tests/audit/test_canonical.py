"""The canonical form is what auditors re-implement: it must be exact and stable."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from locker_server.audit import canonical

_scalars = st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1), st.text())


@given(st.lists(_scalars, min_size=16, max_size=16))
def test_canonical_bytes_are_exactly_compact_json_of_the_values(values: list[object]) -> None:
    expected = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()

    assert canonical.canonical_bytes(values) == expected
    assert canonical.canonical_bytes(tuple(values)) == expected


def test_entry_hash_matches_the_documented_formula_for_a_known_entry() -> None:
    values = [
        1,
        "2026-11-26T09:00:00.000001Z",
        None,
        "user",
        "42",
        "auth.login",
        "success",
        None,
        None,
        None,
        None,
        None,
        "api",
        "10.0.0.1",
        None,
        "{}",
    ]
    text = (
        '[1,"2026-11-26T09:00:00.000001Z",null,"user","42","auth.login","success",'
        'null,null,null,null,null,"api","10.0.0.1",null,"{}"]'
    )
    expected = hashlib.sha256(b"locker-audit-v1/entry\x00" + bytes(32) + text.encode())

    assert canonical.entry_hash(canonical.GENESIS_HASH, values) == expected.hexdigest()


def test_times_are_rfc3339_utc_with_microseconds_whatever_the_offset() -> None:
    shanghai = timezone(timedelta(hours=8))

    assert canonical.format_time(datetime(2026, 1, 2, 8, 4, 5, tzinfo=shanghai)) == (
        "2026-01-02T00:04:05.000000Z"
    )
    assert canonical.parse_time("2026-01-02T00:04:05.000007Z") == datetime(
        2026, 1, 2, 0, 4, 5, 7, tzinfo=UTC
    )


def test_details_are_sorted_compact_and_keep_unicode() -> None:
    assert canonical.canonical_details({"b": 1, "a": "取件"}) == '{"a":"取件","b":1}'
