"""The REST API: app factory, dependencies, error mapping and one router per resource."""
