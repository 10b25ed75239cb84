"""Fixtures that serve the ASGI app (HTTP and WebSockets) on loopback for tests."""
