"""The web console: server-rendered pages for security staff and operators."""
