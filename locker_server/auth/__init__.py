"""Identity: users, roles, password hashing, bearer tokens, carrier API keys, principals."""
