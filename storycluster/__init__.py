"""storycluster: find duplicate and related news stories across languages."""

from .archive import Archive
from .article import Article
from .ingest import read_paths

__all__ = ["Archive", "Article", "read_paths"]
__version__ = "0.1.0"
