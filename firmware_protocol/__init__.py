"""Byte-level protocols of real lock-control boards. Sans-IO: no serial, no asyncio."""
