"""The agent's side of the cabinet ↔ server MQTT link (issue #4).

``guard`` (which received commands may run) and ``allowlist`` (offline pickups) are
sans-IO decision logic with small storage Protocols; the journal and the MQTT adapter
provide I/O. The wire format itself lives in :mod:`locker_contract`.
"""
