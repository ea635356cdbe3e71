"""locker_agent package."""
