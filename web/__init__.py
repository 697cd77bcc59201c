"""The HTTP edge: the GraphQL view, health checks, headers and JSON error bodies."""
