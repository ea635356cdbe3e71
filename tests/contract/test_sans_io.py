"""The contract is sans-IO: importing it pulls in no network, thread, MQTT or database code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import locker_agent.contract

PACKAGE = Path(locker_agent.contract.__file__).parent
FORBIDDEN = {
    "paho", "socket", "ssl", "threading", "asyncio", "sqlite3", "sqlalchemy", "sqlmodel",
    "serial", "locker_server", "subprocess", "multiprocessing", "http", "urllib", "httpx",
}  # fmt: skip


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module)
    return roots


def test_contract_modules_import_no_io_library_and_nothing_else_of_the_agent() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in _imported_roots(path):
            assert module.split(".")[0] not in FORBIDDEN, f"{path.name} imports {module}"
            if module.startswith("locker_agent"):
                assert module.startswith("locker_agent.contract"), f"{path.name}: {module}"


def test_importing_the_contract_loads_no_mqtt_database_or_agent_runtime() -> None:
    probe = "import sys, locker_agent.contract;print(' '.join(sorted(m for m in sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    for module in ("paho", "paho.mqtt", "sqlite3", "sqlalchemy", "locker_agent.doors",
                   "locker_agent.link", "locker_server", "serial"):  # fmt: skip
        assert module not in loaded


def test_the_server_imports_nothing_of_the_agent_but_the_contract() -> None:
    server = PACKAGE.parents[1] / "locker_server"
    agent_imports = {
        (path.name, module)
        for path in server.rglob("*.py")
        for module in _imported_roots(path)
        if module.split(".")[0] == "locker_agent"
    }
    assert agent_imports, "the server is expected to use the contract"
    outside = {
        (name, module)
        for name, module in agent_imports
        if not module.startswith("locker_agent.contract")
    }
    assert not outside
