"""Reading codes at the cabinet: camera frames and the serial barcode scanner.

:mod:`~locker_agent.scan.decoders` (QR and Code 128 in a frame),
:mod:`~locker_agent.scan.camera` (frame sources, debounce, reconnect),
:mod:`~locker_agent.scan.scanner` (the serial scanner module's lines),
:mod:`~locker_agent.scan.events` (what the kiosk receives). See docs/scanning.md.
"""
