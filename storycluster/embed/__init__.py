"""Embedders: the bundled USE-m3 by default, sentence-transformers on request."""

from __future__ import annotations

from .base import Embedder, EmbeddingCache, l2_normalize
from .use import USE_LANGUAGES, USE_MODEL_ID, USEEmbedder

DEFAULT_MODEL = USE_MODEL_ID

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbeddingCache", "USEEmbedder", "get_embedder", "l2_normalize", "model_id_for",
           "model_languages", "parse_languages"]


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


def model_languages(model_id: str, declared: list[str] | None = None) -> frozenset[str] | None:
    """The languages a model reads, as ISO 639-1 codes (None: every language): those the store was told
    (``--model-languages``), else the bundled USE-m3's 16, else (a sentence-transformers model) every language."""
    if declared is not None:
        return frozenset(declared)
    return USE_LANGUAGES if model_id == USE_MODEL_ID else None


def parse_languages(value: str | None) -> list[str] | None:
    """``--model-languages``: ``en,de,fr`` → ["de", "en", "fr"] (``deu`` is ``de``, as a record's ``lang`` is
    read); ``all`` or empty → None (every language)."""
    from ..language import base_code, language_tag

    if value is None or value.strip().lower() in ("", "all"):
        return None
    codes, bad = set(), []
    for given in filter(None, (c.strip() for c in value.split(","))):
        try:
            code = base_code(language_tag(given))
        except ValueError:
            code = None
        if code is None:
            bad.append(given)
        else:
            codes.add(code)
    if bad:
        raise ValueError(f"--model-languages: {', '.join(bad)} is not a language code; give e.g. 'en,de,fr' or 'all'")
    return sorted(codes)
