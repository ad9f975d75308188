"""Near-copies: word shingles of an article's matching text, MinHash signatures (rensa, a Rust MinHash about 40x
faster than datasketch here) and LSH banding, which gives the candidate pairs of the duplicate tier."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..normalize import WORD, fold_case, words
from ..parallel import thread_map

NUM_PERM = 128
SHINGLE = 3
SEED = 1729
BANDS = 32  # 32 bands x 4 rows: a pair with Jaccard 0.5 is a candidate with probability 0.87, 0.3 with 0.23
EMPTY = np.uint32(0xFFFFFFFF)


def shingles(text: str, size: int = SHINGLE, normalized: bool = False) -> list[str]:
    """Distinct word ``size``-grams of the matching text (the whole text when it is shorter), in no set order.
    ``normalized``: ``text`` is already :func:`normalize_text` output (skips normalizing it again)."""
    w = WORD.findall(fold_case(text)) if normalized else words(text)
    if len(w) <= size:
        return [" ".join(w)] if w else []
    if size == 3:
        return list({f"{a} {b} {c}" for a, b, c in zip(w, w[1:], w[2:], strict=False)})
    return list({" ".join(w[i:i + size]) for i in range(len(w) - size + 1)})


def signatures(texts: Sequence[str], num_perm: int = NUM_PERM, seed: int = SEED,
               normalized: bool = False) -> np.ndarray:
    """MinHash signatures, shape (n, num_perm) uint32; a text without words gets all-EMPTY. ``normalized``: the
    texts are already normalized (the pipeline's matching texts), so only case folding and word splitting remain."""
    import rensa

    sets = [shingles(t, normalized=normalized) for t in texts]
    if not sets:
        return np.zeros((0, num_perm), dtype=np.uint32)
    rows = rensa.RMinHash.digest_matrix_from_token_sets(sets, num_perm=num_perm, seed=seed).to_rows()
    return np.asarray(rows, dtype=np.uint32).reshape(len(sets), num_perm)


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray | float:
    """Estimated Jaccard similarity of shingle sets: the share of equal MinHash slots (0 for empty texts).

    Works on two signatures or row-wise on two (n, num_perm) arrays."""
    equal = (sig_a == sig_b) & (sig_a != EMPTY)
    return equal.mean(axis=-1)


def band_keys(sigs: np.ndarray, bands: int = BANDS, chunk: int = 65_536) -> np.ndarray:
    """(n, bands) uint64 bucket keys: each band's rows hashed together with the band number (a 64-bit
    mix; two different bands or contents share a key with probability about 2^-64). Rows of an empty
    signature get key 0, which :func:`candidate_pairs` and the distributed band stage skip. Rows in chunks
    on every core (the whole archive's signatures widened to uint64 at once would be a second copy of them)."""
    n, num_perm = sigs.shape
    rows = num_perm // bands
    out = np.empty((n, bands), dtype=np.uint64)

    def one(start: int) -> None:
        part = sigs[start:start + chunk]
        x = part[:, :bands * rows].astype(np.uint64).reshape(len(part), bands, rows)
        with np.errstate(over="ignore"):
            h = np.arange(1, bands + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            h = np.broadcast_to(h, (len(part), bands)).copy()
            for r in range(rows):  # splitmix64-style rounds over the band's values
                h ^= x[:, :, r] + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
                h ^= h >> np.uint64(30)
                h *= np.uint64(0xBF58476D1CE4E5B9)
                h ^= h >> np.uint64(27)
                h *= np.uint64(0x94D049BB133111EB)
                h ^= h >> np.uint64(31)
        h[h == 0] = 1
        h[part[:, 0] == EMPTY] = 0
        out[start:start + len(part)] = h

    thread_map(one, range(0, n, chunk))
    return out


def bucket_pairs(members: np.ndarray) -> np.ndarray:
    """(m, 2) pairs i < j among the sorted ids of one bucket."""
    members = np.sort(np.asarray(members, dtype=np.int64))
    ii, jj = np.triu_indices(len(members), k=1)
    return np.stack([members[ii], members[jj]], axis=1)


def shared_key_pairs(keys: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
    """Pairs of ``ids`` whose ``keys`` are equal (a group-by on the keys), one (m, 2) array per bucket of two
    or more (few: no Python loop over every bucket)."""
    order = np.argsort(keys, kind="stable")
    k, members = keys[order], ids[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], len(k)]
    shared = ends - starts > 1
    return [bucket_pairs(members[s:e]) for s, e in zip(starts[shared].tolist(), ends[shared].tolist(), strict=True)]


def candidate_pairs(sigs: np.ndarray, bands: int = BANDS) -> np.ndarray:
    """Pairs (i < j) that agree on all rows of at least one band: LSH banding as a group-by on the band
    keys (:func:`band_keys`; the distributed pipeline groups by the same keys).

    Returns an (m, 2) int64 array of row indices. Memory is O(n * bands)."""
    n = len(sigs)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    keys = band_keys(sigs, bands)
    idx = np.flatnonzero(keys[:, 0] != 0)
    if len(idx) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    # one band per task, on every core (the sorts release the GIL)
    per_band = thread_map(lambda b: shared_key_pairs(keys[idx, b], idx), range(keys.shape[1]))
    pairs = [p for band in per_band for p in band]
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs).astype(np.int64), axis=0)


def band_partners(sigs: np.ndarray, seeds: np.ndarray, bands: int = BANDS) -> np.ndarray:
    """Rows that agree with one of the ``seeds`` rows on all rows of at least one band (the seeds' partners
    in :func:`candidate_pairs`, without forming every pair of the archive), sorted. Each band's values are
    compared directly (a cheap mix to find candidates, then exact equality), not through :func:`band_keys`
    (its hash rounds over every signature would dominate an incremental regrouping)."""
    n = len(sigs)
    if n < 2 or len(seeds) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = sigs.shape[1] // bands
    seeds = np.asarray(seeds, dtype=np.int64)
    seeds = seeds[sigs[seeds, 0] != EMPTY]  # an empty signature has no band
    live = sigs[:, 0] != EMPTY
    hit = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore"):
        for b in range(bands):
            band = sigs[:, b * rows:(b + 1) * rows].astype(np.uint64)
            mix = band[:, 0].copy()
            for r in range(1, rows):
                mix *= np.uint64(0x9E3779B97F4A7C15)
                mix ^= band[:, r]
            cand = np.flatnonzero(np.isin(mix, mix[seeds]) & live)
            same = (band[cand][:, None, :] == band[seeds][None, :, :]).all(axis=2).any(axis=1)
            hit[cand[same]] = True
    return np.flatnonzero(hit)
