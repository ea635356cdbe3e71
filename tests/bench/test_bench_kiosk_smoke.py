"""The kiosk latency bench runs end to end with a few samples and reports every case.

It runs as a person would start it (``python -m bench.bench_kiosk``), against the
machine's Mosquitto at 127.0.0.1:1883 like the agent-link tests. The figures of so
short a run mean nothing; only that each case was measured and the report holds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_kiosk_bench_measures_every_case_online_and_offline(tmp_path: Path) -> None:
    report_path = tmp_path / "kiosk.json"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}

    finished = subprocess.run(
        [sys.executable, "-m", "bench.bench_kiosk", "--samples", "3", "--json", str(report_path)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    report = json.loads(report_path.read_text())
    rows = {(row["link"], row["case"]): row for row in report["results"]}
    assert set(rows) == {
        (link, case) for link in ("online", "offline") for case in ("baseline", "typed", "qr")
    }
    for row in rows.values():
        assert row["samples"] + row["missed"] == 3
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert {(g["link"], g["case"], g["goal_p99_ms"]) for g in report["goals"]} == {
        ("online", "typed", 50.0),
        ("online", "qr", 80.0),
        ("offline", "typed", 50.0),
        ("offline", "qr", 80.0),
    }
    assert all(isinstance(g["met"], bool) for g in report["goals"])
    assert "goal online typed" in finished.stdout
