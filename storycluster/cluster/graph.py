"""Candidate pairs for grouping: top-k vector neighbours above a similarity floor, plus MinHash band
collisions (lexical duplicates that the embedding might rank low, e.g. long texts with different leads)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np

from ..embed.layout import IndexedVectors, VectorLayout
from ..language import base_code, macrolanguage, reads
from ..lexical import (
    PackedNumbers,
    PackedTerms,
    candidate_pairs,
    document_frequencies,
    idf_weights,
    jaccard,
    number_matrices,
    rows_csr,
    tfidf_matrices,
)
from ..parallel import thread_map
from .model import FEATURES, REGIMES, StoryModel
from .scoring import DAY, Thresholds, number_overlap, pair_logits


def _codes(values: Sequence[object]) -> np.ndarray:
    seen: dict[object, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values))


def _language(lang: str | None) -> str:
    return macrolanguage(base_code(lang)) or "?"


class PairScorer:
    """Exact same-story log-odds over in-memory arrays aligned by row: lead and headline vectors, MinHash
    signatures, content hashes, TF-IDF rows (all terms, and rare terms only), token counts, languages,
    publication times and the numbers each text writes (:func:`~..lexical.number_codes`; none when not given).
    ``languages``: the languages the embedding model reads (None: all); a pair with an article in another
    language is scored on lexical evidence only (:class:`StoryModel`)."""

    def __init__(self, lead: np.ndarray | IndexedVectors, title: np.ndarray | IndexedVectors, sigs: np.ndarray,
                 content_hashes: Sequence[str] | np.ndarray, tfidf, rare, n_tokens: np.ndarray | Sequence[int],
                 langs: Sequence[str | None], thresholds: Thresholds,
                 model: StoryModel, published: np.ndarray | None = None,
                 numbers: Sequence[np.ndarray] | PackedNumbers | None = None,
                 languages: frozenset[str] | None = None) -> None:
        self.lead, self.title, self.sigs, self.tfidf, self.rare = lead, title, sigs, tfidf, rare
        empty = np.zeros(0, dtype=np.uint64)
        self.years, self.others = number_matrices([empty] * len(lead) if numbers is None else numbers)
        self.n_years, self.n_others = np.diff(self.years.indptr), np.diff(self.others.indptr)
        # content hashes, or codes of them (equal codes: equal hashes) as a store's read gives them
        if isinstance(content_hashes, np.ndarray) and content_hashes.dtype.kind == "i":
            self.codes = content_hashes.astype(np.int64, copy=False)
        else:
            self.codes = _codes(list(content_hashes))
        self.n_tokens = np.asarray(n_tokens, dtype=np.int64)
        # language codes, -1 where unknown: the language, not the tag (en-us and en, arz and ar are one language
        # for a pair: its regime is not the across-languages one)
        language = {lang: _language(lang) for lang in set(langs)}
        self.langs = np.where([not lang for lang in langs], -1, _codes([language[lang] for lang in langs]))
        self.unread = np.zeros(len(self.langs), dtype=bool)
        if languages is not None:  # one check per distinct language (a million articles hold a few dozen)
            distinct = list(dict.fromkeys(langs))
            unread = {lang for lang in distinct if not reads(languages, lang)}
            if unread:
                self.unread = np.fromiter((lang in unread for lang in langs), dtype=bool, count=len(langs))
        self.thresholds, self.model = thresholds, model
        # publication timestamps (NaN when unknown): same_story needs them within the time window
        self.published = np.full(len(lead), np.nan) if published is None else np.asarray(published, dtype=np.float64)
        # TF-IDF rows mapped from files (a large store's regrouping, see grouping_scorer): read by row blocks,
        # the pages dropped after each (see _by_blocks)
        self.release: Callable[[], None] | None = None

    def _cross(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # an unknown language counts as the same: lexical evidence is then used if the texts are long enough
        la, lb = self.langs[a], self.langs[b]
        return (la != lb) & (la >= 0) & (lb >= 0)

    def _copied_rows(self, matrix, rows: np.ndarray, batch: int = 64):
        """``matrix[rows]`` as a matrix in memory, read from mapped rows a batch at a time (pages released after
        each): a large component's block would otherwise map every page near each of its rows at once."""
        from scipy.sparse import vstack

        parts = []
        for s in range(0, len(rows), batch):
            parts.append(matrix[rows[s:s + batch]])
            if self.release is not None:
                self.release()
        return vstack(parts, format="csr") if len(parts) != 1 else parts[0]

    def _term_blocks(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (len(a), len(b)) TF-IDF cosine matrices, all terms and rare ones."""
        if self.release is None or len(a) == 0 or len(b) == 0:
            return _block_dot(self.tfidf, a, b), _block_dot(self.rare, a, b)
        rows = np.concatenate([a, b])
        left, right = np.arange(len(a)), np.arange(len(a), len(rows))
        return (_block_dot(self._copied_rows(self.tfidf, rows), left, right),
                _block_dot(self._copied_rows(self.rare, rows), left, right))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)) log-odds matrix, computed block-wise (one sparse product per TF-IDF matrix)."""
        tfidf, rare = self._term_blocks(a, b)
        f = {"lead": self.lead[a] @ self.lead[b].T, "title": self.title[a] @ self.title[b].T,
             "tfidf": tfidf, "rare": rare,
             "min_tokens": np.minimum.outer(self.n_tokens[a], self.n_tokens[b]),
             "cross_lingual": self._cross(a[:, None], b[None, :]),
             "unreadable": self.unread[a][:, None] | self.unread[b][None, :],
             "jaccard": jaccard(self.sigs[a][:, None, :], self.sigs[b][None, :, :]),
             "same_content": np.equal.outer(self.codes[a], self.codes[b]),
             "date_gap": np.abs(np.subtract.outer(self.published[a], self.published[b])) / DAY,
             **self._numbers(_block_dot(self.years, a, b), _block_dot(self.others, a, b),
                             a[:, None], b[None, :])}
        return pair_logits(**f, t=self.thresholds, m=self.model)

    def _numbers(self, shared_years, shared_others, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        yj, yc = number_overlap(shared_years, self.n_years[a], self.n_years[b])
        nj, nc = number_overlap(shared_others, self.n_others[a], self.n_others[b])
        return {"years_jaccard": yj, "years_conflict": yc, "numbers_jaccard": nj, "numbers_conflict": nc}

    def subset(self, idx: np.ndarray) -> PairScorer:
        """The same scorer over some rows only (renumbered 0..len(idx)-1); term statistics unchanged."""
        sub = copy.copy(self)
        sub.__dict__.pop("_filled_rows", None)  # its own matrices: its own cache
        for name in ("lead", "title", "sigs", "tfidf", "rare", "codes", "n_tokens", "langs", "unread",
                     "published", "years", "others", "n_years", "n_others"):
            setattr(sub, name, getattr(self, name)[idx])
        sub.release = None  # its rows are copies in memory
        return sub

    def features(self, i: np.ndarray, j: np.ndarray, lead: np.ndarray | None = None,
                 title: np.ndarray | None = None, tfidf: np.ndarray | None = None,
                 rare: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The evidence of each pair (i[t], j[t]), as arrays; ``lead``/``title``/``tfidf``/``rare``: those
        cosines when already known."""
        return {"lead": row_dots(self.lead, i, j) if lead is None else lead,
                "title": row_dots(self.title, i, j) if title is None else title,
                "tfidf": self._sparse_pairs(self.tfidf, i, j) if tfidf is None else tfidf,
                "rare": self._sparse_pairs(self.rare, i, j) if rare is None else rare,
                "min_tokens": np.minimum(self.n_tokens[i], self.n_tokens[j]), "cross_lingual": self._cross(i, j),
                "unreadable": self.unread[i] | self.unread[j], "jaccard": _row_pairs(jaccard, self.sigs, i, j, np.float64),
                "same_content": self.codes[i] == self.codes[j],
                "date_gap": self.date_gap(i, j),
                **self._numbers(self._sparse_pairs(self.years, i, j), self._sparse_pairs(self.others, i, j), i, j)}

    def date_gap(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Days between the pairs' published dates (NaN where one is unknown)."""
        return np.abs(self.published[i] - self.published[j]) / DAY

    def slopes(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Each pair's slope of the reported probability (:meth:`StoryModel.slopes`), from its regime alone."""
        return self.model.slopes(np.minimum(self.n_tokens[i], self.n_tokens[j]), self._cross(i, j),
                                 self.unread[i] | self.unread[j])

    def _sparse_pairs(self, matrix, i: np.ndarray, j: np.ndarray, chunk: int = 20_000,
                      by_blocks: bool = True) -> np.ndarray:
        """Row-wise inner products of pairs of rows of a CSR matrix; pairs with an empty row are 0 without
        gathering them (most articles write no year, say). Mapped TF-IDF rows are read by row blocks
        (:meth:`_by_blocks`) unless ``by_blocks`` is False (the caller does that)."""
        out = np.zeros(len(i), dtype=np.float64)
        filled = self._filled(matrix)
        if not filled.any():
            return out
        both = np.flatnonzero(filled[i] & filled[j])
        if by_blocks and self.release is not None and (matrix is self.tfidf or matrix is self.rare):
            out[both] = self._cosines_by_blocks([matrix], i[both], j[both], threads=1)[0]
            return out
        for s in range(0, len(both), chunk):
            sel = both[s:s + chunk]
            a, b = matrix[i[sel]], matrix[j[sel]]
            out[sel] = np.asarray(a.multiply(b).sum(axis=1)).ravel()
        return out

    @staticmethod
    def _by_blocks(i: np.ndarray, j: np.ndarray, block: int = 16_384) -> list[np.ndarray]:
        """Positions of the pairs (i[t], j[t]) grouped by the row blocks (``block`` rows each) of their two rows:
        a group reads rows of two blocks only. Rows read at random from a mapped file each bring in their
        neighbourhood (the kernel maps whole folios of the page cache: up to megabytes a row)."""
        if len(i) == 0:
            return []
        nb = np.int64(int(max(i.max(), j.max())) // block + 1)
        key = (i // block).astype(np.int64) * nb + j // block
        order = np.argsort(key, kind="stable")
        return np.split(order, np.flatnonzero(np.diff(key[order])) + 1)

    def _cosines_by_blocks(self, matrices: list, i: np.ndarray, j: np.ndarray,
                           threads: int | None = None) -> list[np.ndarray]:
        """The cosines of the pairs (i[t], j[t]) in each of the mapped ``matrices``, the pairs taken by the row
        blocks of their two rows (:meth:`_by_blocks`): each step reads rows of two blocks only, whose pages are
        released after it, so the pages in memory stay a few blocks' worth whatever the order of the pairs."""
        out = [np.zeros(len(i)) for _ in matrices]

        def one(sel: np.ndarray) -> None:
            for res, matrix in zip(out, matrices, strict=True):
                res[sel] = self._sparse_pairs(matrix, i[sel], j[sel], by_blocks=False)
            if self.release is not None:
                self.release()

        thread_map(one, self._by_blocks(i, j), threads, one_blas_thread=True)
        return out

    def _filled(self, matrix) -> np.ndarray:
        """Which rows of one of the scorer's CSR matrices hold anything (kept per matrix: a million-row
        ``np.diff`` per chunk of pairs was a sixth of scoring them)."""
        cache = self.__dict__.setdefault("_filled_rows", {})
        kept = cache.get(id(matrix))
        if kept is None or kept[0] is not matrix:  # the matrix itself is kept: its id is never reused
            kept = cache[id(matrix)] = (matrix, np.diff(matrix.indptr) > 0)
        return kept[1]

    def _best_corners(self) -> list[tuple[float, float]]:
        """The (tfidf, rare) cosine values among {0, 1}² that can give a pair its highest log-odds: 1 for a
        cosine whose weight is positive in every regime (the shipped model: one corner), both when signs
        differ."""
        m = self.model
        weights = [m.regimes[name].coef for name in REGIMES]

        def values(feature: str) -> list[float]:
            signs = {float(np.sign(w[FEATURES.index(feature)])) for w in weights}
            return [1.0] if signs <= {0.0, 1.0} else [0.0] if signs <= {0.0, -1.0} else [0.0, 1.0]

        return [(x, y) for x in values("tfidf_cosine") for y in values("rare_terms_cosine")]

    def pairs(self, i: np.ndarray, j: np.ndarray, lead: np.ndarray | None = None, title: np.ndarray | None = None,
              chunk: int = 32_768, at_least: float | None = None, threads: int | None = None) -> np.ndarray:
        """Log-odds of each pair (i[t], j[t]), in chunks (the gathered vectors of millions of pairs would
        not fit) on ``threads`` threads (default: every core); ``lead``/``title``: the pairs' cosines when
        already known (from the neighbour graph).

        ``at_least``: only pairs that can reach it are scored exactly; the others get some value below it.
        A pair's TF-IDF cosines (the costly evidence: sparse rows gathered and multiplied) are computed only
        when the log-odds with their most favourable values (each cosine 0 or 1, whichever its weight
        favours: the log-odds are linear in them) reach ``at_least``; the linkage drops every edge below
        its threshold, so for most neighbour pairs of a large archive they are never needed."""
        if self.release is not None and at_least is not None:  # mapped rows: read block by block
            return self._pairs_blocked(i, j, lead, title, chunk, at_least, threads)
        if lead is None:  # each chunk gathers both rows' vectors
            chunk = min(chunk, 8192)
        out = np.empty(len(i), dtype=np.float64)

        def one(s: int) -> None:
            part = slice(s, s + chunk)
            a, b = i[part], j[part]
            known = {"lead": None if lead is None else lead[part], "title": None if title is None else title[part]}
            if at_least is None or (self.tfidf.nnz == 0 and self.rare.nnz == 0):  # nothing to skip
                out[part] = pair_logits(**self.features(a, b, **known), t=self.thresholds, m=self.model)
                return
            zero = np.zeros(len(a))
            f = self.features(a, b, **known, tfidf=zero, rare=zero)
            best = np.max([pair_logits(**{**f, "tfidf": zero + x, "rare": zero + y}, t=self.thresholds,
                                       m=self.model) for x, y in self._best_corners()], axis=0)
            need = np.flatnonzero(best >= at_least)
            f["tfidf"], f["rare"] = zero.copy(), zero.copy()
            f["tfidf"][need] = self._sparse_pairs(self.tfidf, a[need], b[need])
            f["rare"][need] = self._sparse_pairs(self.rare, a[need], b[need])
            out[part] = pair_logits(**f, t=self.thresholds, m=self.model)

        # chunks on every core: gathers, comparisons and sparse products release the GIL
        thread_map(one, range(0, len(i), chunk), threads, one_blas_thread=True)
        return out

    def _pairs_blocked(self, i: np.ndarray, j: np.ndarray, lead: np.ndarray | None, title: np.ndarray | None,
                       chunk: int, at_least: float, threads: int | None) -> np.ndarray:
        """:meth:`pairs` over mapped TF-IDF rows, the same values (every step is element-wise): each pair's
        log-odds without its cosines and whether they can matter (a pass over the other evidence), then those
        cosines by row blocks (:meth:`_cosines_by_blocks`) and the log-odds of the pairs that need them."""
        need = np.zeros(len(i), dtype=bool)
        out = np.empty(len(i), dtype=np.float64)

        def first(s: int) -> None:
            part = slice(s, s + chunk)
            zero = np.zeros(len(i[part]))
            f = self.features(i[part], j[part], lead=None if lead is None else lead[part],
                              title=None if title is None else title[part], tfidf=zero, rare=zero)
            need[part] = np.max([pair_logits(**{**f, "tfidf": zero + x, "rare": zero + y}, t=self.thresholds,
                                             m=self.model) for x, y in self._best_corners()], axis=0) >= at_least
            out[part] = pair_logits(**f, t=self.thresholds, m=self.model)

        thread_map(first, range(0, len(i), chunk), threads, one_blas_thread=True)
        which = np.flatnonzero(need)
        tfidf, rare = self._cosines_by_blocks([self.tfidf, self.rare], i[which], j[which], threads)

        def second(s: int) -> None:
            part = which[s:s + chunk]
            f = self.features(i[part], j[part], lead=None if lead is None else lead[part],
                              title=None if title is None else title[part], tfidf=tfidf[s:s + chunk],
                              rare=rare[s:s + chunk])
            out[part] = pair_logits(**f, t=self.thresholds, m=self.model)

        thread_map(second, range(0, len(which), chunk), threads, one_blas_thread=True)
        return out


def grouping_scorer(lead, title, sigs: np.ndarray, content_hashes, terms, langs, published,
                    thresholds: Thresholds, model: StoryModel, numbers, df: np.ndarray | None = None,
                    n_docs: int | None = None, consume_terms: bool = False,
                    languages: frozenset[str] | None = None, spill=None) -> tuple[PairScorer, np.ndarray]:
    """The PairScorer grouping uses over a whole archive (TF-IDF weights from the archive's own document
    frequencies), and those frequencies. The store and the distributed pipeline both build it here. ``df`` and
    ``n_docs``: the archive's frequencies when these are only some of its articles. ``consume_terms``: a
    :class:`PackedTerms` given is spent (its arrays become the TF-IDF matrix: see :func:`tfidf_matrices`);
    ``spill``: a :class:`~..store.spill.Spill` that holds the term lists given and the TF-IDF rows (a large
    store's regrouping)."""
    terms = PackedTerms.of(terms)
    if df is None:
        df, n_docs = document_frequencies(terms), len(terms)
    n = len(terms) if n_docs is None else n_docs
    n_tokens = terms.n_tokens()  # before the counts may be overwritten
    tfidf, rare = tfidf_matrices(terms, [idf_weights(df, n), idf_weights(df, n, model.rare_df)],
                                 consume=consume_terms, alloc=np.empty if spill is None else spill.empty)
    scorer = PairScorer(lead, title, sigs, content_hashes, tfidf, rare, n_tokens, langs, thresholds, model,
                        published, numbers, languages)
    if spill is not None:
        scorer.release = spill.release
    return scorer, df


def _csr_rows(m, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, values, row number) of some rows of a CSR matrix, straight from its arrays."""
    starts, lengths = m.indptr[rows], m.indptr[np.asarray(rows) + 1] - m.indptr[rows]
    which = np.repeat(np.arange(len(rows)), lengths)
    first = np.cumsum(lengths) - lengths
    idx = np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))
    return m.indices[idx], m.data[idx], which


def _block_dot(m, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense (len(a), len(b)) matrix of row inner products, over the columns of ``a``'s rows only: small
    blocks (most blocks of the linkage) with numpy alone, since creating scipy matrices costs far more than
    the product there; larger ones as sparse matrices over those columns (renumbered: a product over the
    whole vocabulary converts a vocabulary-long index array per call)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    if not hasattr(m, "indptr"):
        return (m[a] @ m[b].T).toarray()
    ci, cv, cr = _csr_rows(m, a)
    di, dv, dr = _csr_rows(m, b)
    cols = np.unique(ci)
    pos = np.minimum(np.searchsorted(cols, di), max(len(cols) - 1, 0))
    ok = cols[pos] == di if len(cols) else np.zeros(len(di), dtype=bool)
    if len(a) + len(b) <= 64:
        left = np.zeros((len(a), len(cols)))
        left[cr, np.searchsorted(cols, ci)] = cv
        right = np.zeros((len(b), len(cols)))
        right[dr[ok], pos[ok]] = dv[ok]
        return left @ right.T
    width = max(len(cols), 1)
    left = rows_csr(cv, np.searchsorted(cols, ci), cr, len(a), width)
    right = rows_csr(dv[ok], pos[ok], dr[ok], len(b), width)
    return (left @ right.T).toarray()


def neighbour_edges(scorer: PairScorer, k: int, index=None, rowids: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges (m, 2) of row positions i < j, lead cosines, headline cosines): each row's top-k neighbours by
    the index vector, above the related floor (:func:`storycluster.neighbors.knn.knn_graph`). ``index``: a
    store's index over exactly these rows under ``rowids`` (reused, not rebuilt); otherwise an exact index
    (small) or an IVF one is built from the scorer's vectors."""
    from ..neighbors.knn import EXACT_GRAPH, knn_graph
    from ..store.vector_index import VectorIndex

    t = scorer.thresholds
    n = len(scorer.lead)
    d = scorer.lead.shape[1]
    if index is None or rowids is None or len(index) != n or not np.array_equal(np.sort(index.ids()), np.sort(rowids)):
        every = np.arange(n)
        vectors = VectorLayout(t.title_weight).combine(np.asarray(scorer.lead[every]), np.asarray(scorer.title[every]))
        index = VectorIndex(vectors.shape[1], "flat" if n < EXACT_GRAPH else "ivf")
        index.add(np.arange(n, dtype=np.int64), vectors)
        rowids = np.arange(n, dtype=np.int64)
        del vectors
    return graph_edges(knn_graph(index, k, t.related, split=d), rowids, t.title_weight)


def graph_edges(g, rowids: np.ndarray, title_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges of row positions i < j, lead cosines, headline cosines) of a :class:`~..neighbors.knn.KnnGraph`
    whose ids are ``rowids`` (positions when ``rowids`` is 0..n-1). Consumes ``g``: its arrays are
    reused or freed (at a million articles the edges are hundreds of megabytes)."""
    a, b = g.a, g.b
    g.a = g.b = None
    if len(rowids) and rowids[-1] - rowids[0] == len(rowids) - 1 and (np.diff(rowids) == 1).all():
        if rowids[0]:  # consecutive ids (a store that never deleted): an offset
            a -= a.dtype.type(rowids[0])
            b -= b.dtype.type(rowids[0])
    elif len(rowids) and (np.diff(rowids) > 0).all():  # ascending ids (a store's rowid order)
        a, b = np.searchsorted(rowids, a), np.searchsorted(rowids, b)
    else:  # ids → row positions
        order = np.argsort(rowids)
        i = order[np.searchsorted(rowids, a, sorter=order)]
        j = order[np.searchsorted(rowids, b, sorter=order)]
        a, b = np.minimum(i, j), np.maximum(i, j)
    edges = np.stack([a, b], axis=1)  # int32 when the positions fit: half the memory at millions of edges
    del a, b
    w = np.float32(title_weight)
    # in place: score - head is the headline part, head the lead part, each scaled back to a cosine
    title, lead = g.score, g.head
    g.score = g.head = None
    title -= lead
    title /= w
    lead /= np.float32(1.0) - w
    return edges, lead, title


def _row_pairs(fn: Callable[[np.ndarray, np.ndarray], np.ndarray | float], x: np.ndarray | IndexedVectors,
               i: np.ndarray, j: np.ndarray, dtype, chunk: int = 4096) -> np.ndarray:
    """``fn(x[i], x[j])`` (row-wise), the rows gathered ``chunk`` pairs at a time: the same element-wise results
    as one gather of every pair, without gigabytes of gathered rows at once (nor first touching hundreds of
    megabytes of fresh pages, which made one gather of 130,000 pairs' vectors 7 times slower than chunks)."""
    out = np.empty(len(i), dtype=dtype)
    for s in range(0, len(i), chunk):
        out[s:s + chunk] = fn(x[i[s:s + chunk]], x[j[s:s + chunk]])
    return out


def row_dots(x: np.ndarray | IndexedVectors, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``x[i[t]] · x[j[t]]`` for each pair (see :func:`_row_pairs`)."""
    return _row_pairs(_dots, x, i, j, getattr(x, "dtype", np.float32))  # IndexedVectors: float32 rows


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _pairs_among(pairs: np.ndarray, others: np.ndarray, n: int, chunk: int = 1 << 20) -> np.ndarray:
    """Mask of the (i, j) ``pairs`` that also occur in ``others`` (both i < j, rows below ``n``): ``pairs``
    sorted once, ``others`` looked up in chunks (``np.isin`` sorts both sides: the whole graph's edges, for a few
    hundred band collisions)."""
    found = np.zeros(len(pairs), dtype=bool)
    if len(pairs) == 0 or len(others) == 0:
        return found
    width = np.int64(max(n, 1))
    key = pairs[:, 0].astype(np.int64) * width + pairs[:, 1]
    order = np.argsort(key, kind="stable")
    key = key[order]
    group = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1  # equal pairs share a group: all are marked
    seen = np.zeros(int(group[-1]) + 1, dtype=bool)
    for s in range(0, len(others), chunk):
        o = others[s:s + chunk]
        look = o[:, 0].astype(np.int64) * width + o[:, 1]
        pos = np.minimum(np.searchsorted(key, look), len(key) - 1)
        seen[group[pos[key[pos] == look]]] = True
    found[order] = seen[group]
    return found


def candidate_edges(scorer: PairScorer, k: int = 20, index=None, rowids: np.ndarray | None = None,
                    neighbours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    lexical: np.ndarray | None = None, at_least: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All candidate edges (vector neighbours and MinHash band collisions) with their log-odds;
    ``neighbours``: the result of :func:`neighbour_edges`, ``lexical``: of :func:`~..lexical.candidate_pairs`, when
    already computed (the distributed pipeline computes both in its own stages). ``at_least``: edges below
    it may carry any value below it instead of their exact log-odds (see :meth:`PairScorer.pairs`)."""
    # the band collisions first: their keys (a quarter of a gigabyte at a million) are gone before the graph
    lexical = candidate_pairs(scorer.sigs) if lexical is None else lexical
    near, lead, title = neighbour_edges(scorer, k, index, rowids) if neighbours is None else neighbours
    if len(lexical):  # band collisions that are not vector neighbours: their cosines are computed here
        extra = np.unique(lexical[~_pairs_among(lexical, near, len(scorer.lead))], axis=0)
        # row positions stay int32 where they fit (half the memory of a million articles' edges)
        wide = near.dtype if len(scorer.lead) <= np.iinfo(near.dtype).max else np.int64
        near = np.concatenate([near.astype(wide, copy=False), extra.astype(wide)])
        lead = np.concatenate([lead, row_dots(scorer.lead, extra[:, 0], extra[:, 1])])
        title = np.concatenate([title, row_dots(scorer.title, extra[:, 0], extra[:, 1])])
    if len(near) == 0:
        return near.reshape(0, 2), np.zeros(0)
    return near, scorer.pairs(near[:, 0], near[:, 1], lead=lead, title=title, at_least=at_least)
