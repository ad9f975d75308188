"""Word overlap: each text's hashed term counts, packed for storage, and the TF-IDF cosines (all terms, and rare
terms only) that the same-story model weighs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..parallel import thread_map

RENUMBER_MAX = 4096  # TF-IDF matrices of more rows keep hashed term ids as columns
N_FEATURES = 2**20  # hashed vocabulary; collisions are rare at news-article vocabulary sizes


def _hasher():
    from sklearn.feature_extraction.text import HashingVectorizer

    from ..normalize import lexical_terms

    return HashingVectorizer(n_features=N_FEATURES, alternate_sign=False, norm=None, analyzer=lexical_terms)


def term_vectors(texts: Sequence[str]) -> list[np.ndarray]:
    """Hashed counts of each text's lexical terms (normalized words, Arabic proclitics stripped), packed as
    uint32 ``[terms..., counts...]``."""
    if not texts:
        return []
    counts = _hasher().transform(list(texts)).tocsr()
    out = []
    for r in range(counts.shape[0]):
        lo, hi = counts.indptr[r], counts.indptr[r + 1]
        out.append(np.concatenate([counts.indices[lo:hi], counts.data[lo:hi]]).astype(np.uint32))
    return out


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = len(packed) // 2
    return packed[:half], packed[half:]


def n_tokens(packed: np.ndarray) -> int:
    return int(unpack(packed)[1].sum())


@dataclass(slots=True)
class PackedTerms:
    """Many texts' hashed term counts in three flat arrays: text ``r`` holds ``terms[offsets[r]:offsets[r + 1]]``
    with ``counts`` at the same positions. A million articles' term lists are two uint32 arrays instead of a
    million small ones (a whole-archive regroup read them as Python objects: gigabytes more). Indexing gives
    a text's packed vector (``[terms..., counts...]``, as :func:`term_vectors` makes them)."""

    terms: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, vectors: Sequence[np.ndarray] | PackedTerms) -> PackedTerms:
        if isinstance(vectors, PackedTerms):
            return vectors
        return cls.from_blobs([np.asarray(v, dtype=np.uint32).tobytes() for v in vectors])

    @classmethod
    def from_blobs(cls, blobs: Sequence[bytes]) -> PackedTerms:
        """From stored packed vectors (the ``terms`` column): one join and two gathers, no per-text arrays."""
        size = np.fromiter((len(b) // 8 for b in blobs), dtype=np.int64, count=len(blobs))  # terms per text
        buf = np.frombuffer(b"".join(blobs), dtype=np.uint32)
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum(size, out=offsets[1:])
        # each text's blob is its terms then its counts: a mask of the term positions splits the buffer
        # (a boolean mask, not int64 positions: half the time of a million-article read)
        is_term = np.repeat(np.tile(np.array([True, False]), len(blobs)), np.repeat(size, 2))
        return cls(buf[is_term], buf[~is_term], offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, r: int) -> np.ndarray:
        lo, hi = self.offsets[r], self.offsets[r + 1]
        return np.concatenate([self.terms[lo:hi], self.counts[lo:hi]])

    def __iter__(self):  # noqa: ANN204
        return (self[r] for r in range(len(self)))

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def n_tokens(self) -> np.ndarray:
        """Words of each text (the sum of its counts)."""
        sums = np.zeros(len(self), dtype=np.int64)
        filled = self.lengths() > 0
        if filled.any():
            sums[filled] = np.add.reduceat(self.counts, self.offsets[:-1][filled], dtype=np.uint32)  # no int64 copy
        return sums


def document_frequencies(vectors: Sequence[np.ndarray] | PackedTerms) -> np.ndarray:
    """How many texts hold each hashed term."""
    terms = PackedTerms.of(vectors).terms  # a text's terms are distinct: every entry is one text holding a term
    df = np.zeros(N_FEATURES, dtype=np.int64)
    for s in range(0, len(terms), 1 << 24):  # bincount copies its input as int64: in slices
        df += np.bincount(terms[s:s + (1 << 24)], minlength=N_FEATURES)
    return df.astype(np.int32)


def idf_weights(df: np.ndarray, n_docs: int, max_df: float | None = None) -> np.ndarray:
    """Smoothed IDF per hashed term (scikit-learn's formula). With ``max_df``, only rare terms keep a weight:
    those in at most ``max(2, max_df * n_docs)`` texts (names, places, numbers; a subject's common
    vocabulary drops out)."""
    idf = np.log((1.0 + n_docs) / (1.0 + df.astype(np.float64))) + 1.0
    if max_df is not None:
        idf = np.where(df <= max(2.0, max_df * n_docs), idf, 0.0)
    return idf


def tfidf_cosines(term_rows: Sequence[np.ndarray], i: np.ndarray, j: np.ndarray, *idfs: np.ndarray,
                  chunk: int = 20_000) -> list[np.ndarray]:
    """TF-IDF cosines of pairs of packed term vectors (``term_rows[i[t]]``, ``term_rows[j[t]]``), one array per
    IDF weighting given: row-wise inner products of :func:`tfidf_matrices` rows, the arithmetic grouping and
    ``compare`` use. Each row is weighted and normalized on its own and each pair multiplied on its own, so a
    pair's value does not depend on the other rows or pairs of the call."""
    out = [np.zeros(len(i)) for _ in idfs]
    if len(i) == 0:
        return out
    for res, matrix in zip(out, tfidf_matrices(term_rows, idfs), strict=True):
        for s in range(0, len(i), chunk):
            a, b = matrix[i[s:s + chunk]], matrix[j[s:s + chunk]]
            res[s:s + chunk] = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    return out


def tfidf_matrix(vectors: Sequence[np.ndarray] | PackedTerms, idf: np.ndarray):
    """Rows of sublinear-tf times ``idf`` weights, L2-normalized, as a scipy CSR matrix; the inner product of
    two rows is their TF-IDF cosine. See :func:`tfidf_matrices`."""
    return tfidf_matrices(vectors, [idf])[0]


def tfidf_matrices(vectors: Sequence[np.ndarray] | PackedTerms, idfs: Sequence[np.ndarray], chunk: int = 16_384,
                   consume: bool = False, alloc=np.empty):
    """One :func:`tfidf_matrix` per IDF weighting, built together in chunks of rows (float32 values, int32
    columns: a whole archive's transient arrays stay a chunk's size). Columns are the terms that occur
    (renumbered, so products stay cheap) up to ``RENUMBER_MAX`` rows, the hashed ids above that.

    ``consume``: the packed terms' own arrays become the first matrix's columns and values (its weights
    overwrite the counts, chunk by chunk, after they are read) when that matrix keeps every entry (an IDF
    weight above 0 for every term: the smoothed IDF of all terms) and its columns are the hashed ids; the
    packed terms must not be used afterwards. That saves a copy of the archive's term lists. ``alloc(n, dtype)``:
    where the other matrices' values and columns go (a large store's regrouping maps them from a file)."""
    from scipy.sparse import csr_matrix

    packed = PackedTerms.of(vectors)
    n, lengths = len(packed), packed.lengths()
    weights = [np.asarray(idf, dtype=np.float32) for idf in idfs]
    spans = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    # the first matrix in place of the packed arrays: the same entries, in the same order
    in_place = consume and n > RENUMBER_MAX and bool(weights) and bool((weights[0] > 0).all())
    # first pass: how many entries each matrix keeps (idf > 0) in each chunk, so its arrays are allocated
    # once and every chunk knows where its entries go (chunks then run on every core)
    kept = [np.array([np.count_nonzero(idf[packed.terms[packed.offsets[s]:packed.offsets[e]]] > 0)
                      for s, e in spans], dtype=np.int64) for idf in weights]
    at = [np.cumsum(k) - k for k in kept]
    data = [packed.counts.view(np.float32) if in_place and k == 0 else alloc(int(m.sum()), np.float32)
            for k, m in enumerate(kept)]
    columns = [packed.terms.view(np.int32) if in_place and k == 0 else alloc(int(m.sum()), np.int32)
               for k, m in enumerate(kept)]
    indptr = [np.zeros(n + 1, dtype=np.int64) for _ in weights]

    def one(c: int) -> None:
        s, e = spans[c]
        lo, hi = packed.offsets[s], packed.offsets[e]
        flat = packed.terms[lo:hi]
        tf = 1.0 + np.log(np.maximum(packed.counts[lo:hi], 1).astype(np.float32))  # read before any overwrite
        row = np.repeat(np.arange(e - s, dtype=np.int32), lengths[s:e])
        for k, idf in enumerate(weights):
            w = tf * idf[flat]
            keep = np.flatnonzero(w > 0)
            r, w = row[keep], w[keep]
            per_row = np.bincount(r, minlength=e - s)
            first = np.cumsum(per_row) - per_row
            # each row's entries are contiguous: its squared norm is one segment's sum (bincount with
            # weights took a tenth of a million-article regrouping)
            sq, filled = np.zeros(e - s), per_row > 0
            if filled.any():
                sq[filled] = np.add.reduceat(np.square(w, dtype=np.float64), first[filled])
            w /= np.where(sq > 0, np.sqrt(sq), 1.0).astype(np.float32)[r]
            a = int(at[k][c])
            if not (in_place and k == 0):  # in place, the columns are already there
                columns[k][a:a + len(w)] = flat[keep]
            data[k][a:a + len(w)] = w
            np.cumsum(per_row, out=indptr[k][s + 1:e + 1])
            indptr[k][s + 1:e + 1] += a

    thread_map(one, range(len(spans)))
    mats = []
    for k in range(len(weights)):
        cols, width = columns[k], N_FEATURES
        if n <= RENUMBER_MAX:  # a few rows: renumber the columns (a whole archive keeps hashed ids: sorting its
            vocab, inverse = np.unique(cols, return_inverse=True)  # 35M terms at 100k cost more than it saved)
            cols, width = inverse.ravel().astype(np.int32), max(len(vocab), 1)
        mats.append(csr_matrix((data[k], cols, indptr[k]), shape=(n, width)))
    return mats


def rows_csr(values: np.ndarray, columns: np.ndarray, row: np.ndarray, n: int, width: int):
    """A CSR matrix of ``n`` rows from entries listed row by row (``row`` ascending)."""
    from scipy.sparse import csr_matrix

    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))])
    return csr_matrix((values, columns, indptr), shape=(n, width))
