"""HTTP API, article page and widget (``storycluster serve``); PostgreSQL export and backend."""

from .app import create_app
from .backend import Backend, StoreBackend

__all__ = ["Backend", "StoreBackend", "create_app"]
