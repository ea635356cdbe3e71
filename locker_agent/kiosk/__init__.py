"""The cabinet kiosk: the recipient's pickup flow on the cabinet's screen.

:mod:`~locker_agent.kiosk.machine` is the flow itself, a pure state machine (no I/O);
:mod:`~locker_agent.kiosk.texts` holds every text it shows, in each language;
:mod:`~locker_agent.kiosk.service` drives the machine with the pickup desk, the doors,
the camera and scanner and a clock; :mod:`~locker_agent.kiosk.web` serves the screen.
"""
