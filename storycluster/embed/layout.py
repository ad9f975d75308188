"""The index vector: an article's lead and headline embeddings in one vector, ``[sqrt(1-w)·lead, sqrt(w)·headline]``,
so that an inner product of two index vectors is exactly ``(1-w)·cos_lead + w·cos_headline``. ``w`` (the store's
``title_weight``) is fixed when a store is created; :class:`VectorLayout` is the one place that knows it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class VectorLayout:
    """How lead and headline vectors combine into index vectors (and split back)."""

    title_weight: float

    def combine(self, lead: np.ndarray, title: np.ndarray) -> np.ndarray:
        """Index vectors of (n, d) lead and headline vectors; built in float32 in place (no float64 temporaries)."""
        d = lead.shape[1]
        out = np.empty((len(lead), d + title.shape[1]), dtype=np.float32)
        out[:, :d] = lead
        out[:, :d] *= np.float32(np.sqrt(1.0 - self.title_weight))
        out[:, d:] = title
        out[:, d:] *= np.float32(np.sqrt(self.title_weight))
        return out

    def split(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lead, headline) back from index vectors: the inverse of :meth:`combine`."""
        d = v.shape[1] // 2
        return (v[:, :d] / np.float32(np.sqrt(1.0 - self.title_weight)),
                v[:, d:] / np.float32(np.sqrt(self.title_weight)))

    def split_in_place(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`split`'s values as two views of ``v``, divided in place (``v`` is overwritten): no new arrays
        for a batch's tens of thousands of vectors."""
        d = v.shape[1] // 2
        lead, title = v[:, :d], v[:, d:]
        lead /= np.float32(np.sqrt(1.0 - self.title_weight))
        title /= np.float32(np.sqrt(self.title_weight))
        return lead, title

    def half(self, index, rowids: np.ndarray, half: str) -> IndexedVectors:
        """The ``lead`` or ``title`` half of the vectors an index holds under ``rowids``, read by row on use."""
        return IndexedVectors(index, rowids, half, self)


class IndexedVectors:
    """The lead or headline half of index vectors, read back from a vector index by row when indexed
    (``view[rows]``), for a pair scorer over more articles than float32 copies fit (an IVF index holds 8-bit
    codes: a quarter of the memory)."""

    def __init__(self, index, rowids: np.ndarray, half: str, layout: VectorLayout) -> None:
        if half not in ("lead", "title"):
            raise ValueError(f"half must be 'lead' or 'title', not {half!r}")
        self.index, self.rowids = index, np.asarray(rowids, dtype=np.int64)
        self.half, self.layout = half, layout
        self.shape = (len(self.rowids), index.dim // 2)

    def __len__(self) -> int:
        return len(self.rowids)

    def __getitem__(self, rows) -> np.ndarray:
        ids = self.rowids[rows]
        lead, title = self.layout.split(self.index.vectors_of(ids.reshape(-1)))
        return (title if self.half == "title" else lead).reshape((*ids.shape, self.shape[1]))
