"""The cabinets' MQTT broker: its configuration, TLS, provisioning, a development broker.

* :mod:`.mosquitto` writes a ready Mosquitto directory (``mosquitto.conf``, ``passwd``,
  ``acl``, the server account's credentials);
* :mod:`.tls` the broker CA and the broker's certificate;
* :mod:`.provisioning` issues (rotates) and revokes a cabinet's MQTT credential, writes
  the agent's directory and reloads the running broker;
* :mod:`.embedded` the in-process development broker (amqtt) used without
  ``LOCKER_MQTT_URL``;
* :mod:`.cli` the ``locker-server`` words ``broker-config`` and ``cabinet provision |
  decommission``.

Nothing here imports the MQTT bridge (:mod:`locker_server.link`).
"""
