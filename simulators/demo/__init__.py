"""``locker-demo``: the whole locker system on one machine, and a scripted story on it.

``locker-demo`` starts the server (SQLite), the embedded development broker, a mail
catcher and two simulated cabinets with their agents and kiosk pages
(:mod:`simulators.demo.system`), prints where everything is and the demo accounts, and
runs until Ctrl-C or SIGTERM. ``locker-demo --scenario`` runs the story of
:mod:`simulators.demo.scenario` on the same system and exits 0 only if every step
happened.

It lives with the simulators because it needs every side: the server, the real agent,
and the simulated boards, camera and network around it (nothing else imports it).
"""

from simulators.demo.cli import main

__all__ = ["main"]
