"""Shared support for the link (issue #4) tests: a private Mosquitto and MQTT clients."""
