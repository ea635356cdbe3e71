"""locker_server package."""
