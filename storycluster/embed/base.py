"""The Embedder base: subclasses implement one batch method; batching, L2 normalization and the
(text hash, model id) cache live here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..normalize import text_hash


class EmbeddingCache(Protocol):
    """Where computed vectors are kept, keyed by (hash of the exact input text, model id)."""

    def get_embeddings(self, hashes: Sequence[str], model_id: str) -> dict[str, np.ndarray]: ...

    def put_embeddings(self, items: dict[str, np.ndarray], model_id: str) -> None: ...


class Embedder(ABC):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    #: Stable identifier written into the store; vectors from different ids are never mixed.
    model_id: str
    dim: int
    batch_size: int = 64
    #: Texts actually sent to the model by this instance (cache hits excluded).
    n_embedded: int = 0

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch; return an array of shape (len(texts), dim). Normalization is done by the caller."""

    def embed(self, texts: Sequence[str], cache: EmbeddingCache | None = None,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` in batches, reusing cached vectors; returns (n, dim) float32, rows of unit length.

        ``progress`` is called with the number of texts done after each batch (cache hits count at once).
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        cached = cache.get_embeddings(sorted(set(hashes)), self.model_id) if cache is not None else {}
        todo: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if h in cached:
                out[i] = cached[h]
            else:
                todo.setdefault(h, []).append(i)
        if progress is not None and len(texts) - sum(map(len, todo.values())):
            progress(len(texts) - sum(map(len, todo.values())))
        pending = list(todo.items())
        for start in range(0, len(pending), self.batch_size):
            chunk = pending[start:start + self.batch_size]
            self.n_embedded += len(chunk)
            vecs = l2_normalize(np.asarray(self.embed_batch([texts[idx[0]] for _, idx in chunk]), dtype=np.float32))
            if vecs.shape != (len(chunk), self.dim):
                raise ValueError(f"{type(self).__name__}.embed_batch returned shape {vecs.shape}, "
                                 f"expected {(len(chunk), self.dim)}")
            for (_, idx), v in zip(chunk, vecs, strict=True):
                out[idx] = v
            if cache is not None:
                cache.put_embeddings({h: v for (h, _), v in zip(chunk, vecs, strict=True)}, self.model_id)
            if progress is not None:
                progress(sum(len(idx) for _, idx in chunk))
        return out


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)
