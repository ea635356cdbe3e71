"""Shared support for the link tests: MQTT clients and forged messages (the private
Mosquitto they run against is :mod:`simulators.mosquitto`)."""
