"""One module per resource, each exposing ``router``; listed in ``app.ROUTERS``."""
