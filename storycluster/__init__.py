"""storycluster: find duplicate and related news stories across languages."""

from .archive import Archive
from .article import Article
from .ingest import read_paths

__all__ = ["Archive", "Article", "read_paths"]
__version__ = "0.2.0"  # the one place it is written (pyproject.toml reads it)
