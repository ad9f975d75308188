"""Embedders: the bundled USE-m3 by default, sentence-transformers on request."""

from __future__ import annotations

from .base import Embedder, EmbeddingCache, l2_normalize
from .use import USE_MODEL_ID, USEEmbedder

DEFAULT_MODEL = USE_MODEL_ID

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbeddingCache", "USEEmbedder", "get_embedder", "l2_normalize", "model_id_for"]


def get_embedder(model: str | None = None, threads: int = 2) -> Embedder:
    """The embedder for a model name: ``use-multilingual-v3`` (default) or a sentence-transformers
    name or path (optionally prefixed ``st:``)."""
    if model in (None, "", USE_MODEL_ID):
        return USEEmbedder(threads=threads)
    from .sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model.removeprefix("st:"))


def model_id_for(model: str | None) -> str:
    """The model id a store records for ``--model`` (without loading the model)."""
    if model in (None, "", USE_MODEL_ID):
        return USE_MODEL_ID
    return model if model.startswith("st:") else f"st:{model}"
