"""Exceptions raised by :mod:`simulators`.

Every error this package raises derives from :class:`SimulatorError`::

    SimulatorError
    ├── SimulatorConfigError   the bus or a board was described wrongly
    │                          (unknown protocol, address out of range, too many locks)
    ├── UnknownDoorError       a board address or lock number that is not on this bus
    ├── TransportError         the pty or TCP socket could not be opened or served
    │   ├── AlreadyServingError  start_pty()/start_tcp() called on a bus already serving
    │   └── NotServingError      a frame was to be sent while no transport is open
    └── BrokerStartError       a private Mosquitto exited or did not listen in time

Errors of the codecs (:mod:`firmware_protocol.errors`) that reach us while building the
bus are translated to :class:`SimulatorConfigError`; OS errors while opening a transport
become :class:`TransportError`.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error raised by simulators."""


class SimulatorConfigError(SimulatorError):
    """The simulated bus or one of its boards cannot exist as described."""


class UnknownDoorError(SimulatorError, LookupError):
    """No board with this address, or no lock with this number on the board."""


class TransportError(SimulatorError):
    """The pty or TCP transport could not be opened or served."""


class AlreadyServingError(TransportError):
    """The bus already serves a transport; stop it before starting another."""


class NotServingError(TransportError):
    """A frame was to be put on the bus, but the bus serves no transport."""


class BrokerStartError(SimulatorError, RuntimeError):
    """A private Mosquitto exited or did not accept connections in time (its log is in
    the message), or was asked to reload while not running."""
