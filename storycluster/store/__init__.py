"""The store: a folder (``config.json``, lock) holding the SQLite database of articles and groups and the FAISS
vector index over their embeddings."""

from .database import Database, StoredArticle
from .folder import FORMAT_VERSION, StoreConfig, WriteLock
from .vector_index import VectorIndex

__all__ = ["FORMAT_VERSION", "Database", "StoreConfig", "StoredArticle", "VectorIndex", "WriteLock"]
