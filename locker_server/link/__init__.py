"""The server's side of the cabinet link (issue #4): MQTT bridge, ingest, presence, commands.

``bridge`` owns the broker connection (``MqttBridge``, ``LinkPublisher``); ``ingest``
turns cabinet messages into service-layer calls exactly once; ``presence`` keeps the
cabinets' online state; ``embedded_broker`` is the development broker used when no
``LOCKER_MQTT_URL`` is set. The wire format is ``locker_contract`` — the only
part of ``locker_agent`` the server may import.
"""

# The bridge's tables belong to the package: importing any part of it registers them.
from locker_server.link import models as _models  # noqa: F401
