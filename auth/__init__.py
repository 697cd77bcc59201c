"""Passwords, tokens and API keys (pure functions), and the HTTP edge's key check."""
