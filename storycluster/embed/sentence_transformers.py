"""Any sentence-transformers model by name or local path (torch is imported only here)."""

from __future__ import annotations

import numpy as np

from .base import Embedder


class SentenceTransformerEmbedder(Embedder):
    """Loads ``name_or_path`` with sentence-transformers; offline when given a local folder."""

    batch_size = 32

    def __init__(self, name_or_path: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - depends on the install
            from ..errors import StoryclusterError

            raise StoryclusterError(
                "--model needs sentence-transformers: pip install 'storycluster[st]' "
                "(install torch==2.13.0 first on CPU-only machines)") from e
        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as e:  # a missing folder, an unknown name, no network: one line, not a traceback
            from ..errors import StoryclusterError

            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise StoryclusterError(f"--model {name_or_path}: cannot load this sentence-transformers model "
                                    f"({reason}); give a local model folder, or a name already in the "
                                    "Hugging Face cache") from None
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise StoryclusterError(f"--model {name_or_path}: the model does not say its embedding dimension")
        self.dim = int(dim)
        self.model_id = f"st:{name_or_path}"

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
