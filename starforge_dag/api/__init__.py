"""The HTTP API (FastAPI): `create_app()` for ASGI servers and tests, `serve()` for the CLI."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
