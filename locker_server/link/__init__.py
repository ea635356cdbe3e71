"""The server's MQTT adapter for the cabinet link: the bridge and the ingest.

``bridge`` owns the broker connection (``MqttBridge``, ``LinkPublisher``); ``ingest``
decodes each cabinet message and hands it to the services exactly once (presence,
commands, allow-list sync and offline pickups are rules of :mod:`locker_server.services`).
The wire format is ``locker_contract``. The link's tables are in
:mod:`locker_server.models`; broker configuration, TLS, provisioning and the embedded
development broker are in :mod:`locker_server.broker`.
"""
