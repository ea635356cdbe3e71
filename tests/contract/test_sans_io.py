"""The contract is sans-IO: importing it loads no network, thread, MQTT or database code.

Which modules it may import at all is an import-linter contract in ``pyproject.toml``;
this checks what actually gets loaded at run time, through third-party packages too.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_contract_loads_no_mqtt_database_or_agent_runtime() -> None:
    probe = "import sys, locker_contract;print(' '.join(sorted(m for m in sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    for module in ("paho", "paho.mqtt", "sqlite3", "sqlalchemy", "locker_agent.doors",
                   "locker_agent.link", "locker_server", "serial"):  # fmt: skip
        assert module not in loaded
