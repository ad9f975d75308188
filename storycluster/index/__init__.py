"""Persistence: the FAISS vector index, the SQLite database and the store folder that holds both."""

from .database import Database, StoredArticle
from .folder import FORMAT_VERSION, StoreConfig, WriteLock
from .vectors import VectorIndex

__all__ = ["FORMAT_VERSION", "Database", "StoreConfig", "StoredArticle", "VectorIndex", "WriteLock"]
