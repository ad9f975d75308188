"""Scale: vectors already embedded → index build, neighbour graph (top-20 above the related floor, from the
index, in batches) and grouping (average link, semantic regime), at 10k / 100k / 1M articles; time and peak
RSS of each size in its own process; ANN recall of same-story neighbours against exact search on a sample;
`related`-style query latency (index search for one article) p50/p99.

Synthetic vectors keep the structure of real news: each synthetic story mixes the lead and headline
embeddings of three real ECB+ articles (Dirichlet weights) plus noise, so stories lie near the region real
embeddings occupy without being copies of them; 10% of the articles are planted near-copies (less noise) of
another one — the same-story neighbours whose recall is measured and which grouping should join.

Run: .venv/bin/python bench/scale.py --store ECB_STORE [--sizes 10000 100000 1000000]"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def real_vectors(store: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from storycluster import Archive

    with Archive(store, create=False) as a:
        data = a.db.all_for_grouping(a.config.model_id)
        ids = dict((r, i) for r, i, _, _ in a.db.facts())
    topics = np.array([int(ids[int(r)].split("_")[0]) for r in data.rowids])
    return data.lead, data.title, topics


def synthesize(lead: np.ndarray, title: np.ndarray, topics: np.ndarray, n: int, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lead, title, copy_of) with copy_of = -1 for an original story."""
    rng = np.random.default_rng(seed)
    n_orig = n - n // 10
    parents = rng.integers(0, len(lead), (n_orig, 3))
    w = rng.dirichlet(np.ones(3), n_orig).astype(np.float32)

    def mix(m: np.ndarray, noise: float, base: np.ndarray | None = None) -> np.ndarray:
        v = np.einsum("nk,nkd->nd", w, m[parents]) if base is None else base
        v = v + noise * rng.standard_normal(v.shape).astype(np.float32) / np.sqrt(v.shape[1])
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    lo, ti = mix(lead, 1.0), mix(title, 1.0)
    src = rng.integers(0, n_orig, n - n_orig)
    lo_c = mix(lead, 0.3, lo[src])
    ti_c = mix(title, 0.3, ti[src])
    copy_of = np.concatenate([np.full(n_orig, -1), src])
    return np.vstack([lo, lo_c]), np.vstack([ti, ti_c]), copy_of


def run_size(store: Path, n: int) -> dict:
    from storycluster.cluster import Thresholds
    from storycluster.cluster.graph import PairScorer, index_vectors, neighbour_edges
    from storycluster.cluster.linkage import SparseAverageLinkage
    from storycluster.cluster.model import StoryModel
    from storycluster.index.vectors import VectorIndex, choose_index

    lead, title, topics = real_vectors(store)
    lo, ti, copy_of = synthesize(lead, title, topics, n)
    t = Thresholds()
    m = StoryModel.shipped()
    out: dict = {"n": n}
    t0 = time.perf_counter()
    vectors = index_vectors(lo, ti, t.title_weight)
    kind = choose_index("auto", n)
    index = VectorIndex(vectors.shape[1], kind)
    index.add(np.arange(n, dtype=np.int64), vectors)
    out["index"] = kind
    out["index_s"] = time.perf_counter() - t0

    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=min(1000, n), replace=False)
    lat = []
    for q in sample[:300]:
        t1 = time.perf_counter()
        index.search(vectors[q:q + 1], 40)
        lat.append(time.perf_counter() - t1)
    out["query_ms_p50"], out["query_ms_p99"] = (float(np.percentile(lat, p) * 1000) for p in (50, 99))
    copies = np.flatnonzero(copy_of >= 0)
    probe = rng.choice(copies, size=min(500, len(copies)), replace=False)
    _, found = index.search(vectors[probe], 20)
    out["copy_recall_at_20"] = float(np.mean([copy_of[p] in set(f.tolist()) for p, f in zip(probe, found, strict=True)]))
    if kind != "flat":
        exact = VectorIndex(vectors.shape[1], "flat")
        exact.add(np.arange(n, dtype=np.int64), vectors)
        _, e = exact.search(vectors[sample[:300]], 20)
        _, a = index.search(vectors[sample[:300]], 20)
        out["recall_at_20_vs_exact"] = float(np.mean([len(set(x) & set(y)) / 20 for x, y in zip(e.tolist(), a.tolist(),
                                                                                                   strict=True)]))
        del exact
    del index

    t0 = time.perf_counter()
    edges = neighbour_edges(vectors, 20, t.related)
    out["graph_s"] = time.perf_counter() - t0
    out["edges"] = int(len(edges))
    from scipy.sparse import csr_matrix

    empty = csr_matrix((n, 1), dtype=np.float64)  # no lexical evidence: the semantic regime
    sigs = np.random.default_rng(2).integers(0, 2**32 - 2, (n, 8), dtype=np.uint32)  # distinct: no lexical copies
    scorer = PairScorer(lo, ti, sigs, [str(i) for i in range(n)], empty, empty,
                        np.zeros(n, dtype=np.int64), ["en"] * n, t, m)
    t0 = time.perf_counter()
    weights = scorer.pairs(edges[:, 0], edges[:, 1])
    labels = SparseAverageLinkage(threshold=m.group_threshold, floor=m.group_floor).fit(n, edges, weights, scorer).labels_
    out["group_s"] = time.perf_counter() - t0
    pairs_found = sum(labels[c] == labels[copy_of[c]] for c in copies)
    out["planted_copies_grouped"] = float(pairs_found / len(copies))
    out["total_s"] = out["index_s"] + out["graph_s"] + out["group_s"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_size(args.store, args.one)))
        return
    rows = []
    for n in args.sizes:
        p = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--one", str(n)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{n}: failed ({p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode})")
            continue
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| articles | index | build | graph | grouping | total | peak RSS | query p50 / p99 | recall@20 vs exact |"
          " copies found in top 20 | copies grouped |\n" + "| --- " * 11 + "|")
    for r in rows:
        print(f"| {r['n']:,} | {r['index']} | {r['index_s']:.1f} s | {r['graph_s']:.1f} s | {r['group_s']:.1f} s | "
              f"{r['total_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | {r['query_ms_p50']:.2f} / {r['query_ms_p99']:.2f} ms |"
              f" {r.get('recall_at_20_vs_exact', 1.0):.3f} | {r['copy_recall_at_20']:.3f} |"
              f" {r['planted_copies_grouped']:.3f} |")
    by = {r["n"]: r for r in rows}
    if 100_000 in by and 1_000_000 in by:
        print(f"\ntime(1M)/time(100k) = {by[1_000_000]['total_s'] / by[100_000]['total_s']:.1f}")


if __name__ == "__main__":
    main()
