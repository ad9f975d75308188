"""Scale: vectors already embedded → index build, neighbour graph and grouping at 10k / 100k / 1M articles,
each size in its own process (time and peak RSS); ANN recall against exact search; planted same-story copies
found by the index, by the graph and grouped; index search latency p50/p99.

The library's own code runs on each stage: `VectorIndex` (the store's `auto` kind: exact under 100,000
vectors, IVF over 8-bit codes from there; trained on a sample, then fed in chunks of 10,000 as a stream and
saved and reopened as a store does), `neighbour_edges` (top-20 above the related floor, from the index's
lists), `candidate_edges` and `SparseAverageLinkage` over a `PairScorer` that reads its vectors back from the
index (`IndexedVectors`: no float32 copy of the archive in memory). Grouping runs in the semantic regime
(vectors only, no lexical evidence: the lexical stage is bench/lexical.py).

Synthetic vectors keep the structure of real news: each synthetic story mixes the lead and headline
embeddings of three real ECB+ articles (Dirichlet weights) plus noise, so stories lie near the region real
embeddings occupy without being copies of them; 10% of the articles are planted near-copies (less noise)
of another one in the same chunk: the same-story neighbours whose recall is measured and which grouping
should join. Generation is not timed.

Run: .venv/bin/python bench/scale.py --store ECB_STORE [--sizes 10000 100000 1000000]"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 10_000
N_QUERIES = 300
#: the graph's recall is also reported for exact neighbours at or above this (the semantic regime's grouping
#: floor is 0.42: weaker neighbours never join a group there)
STRONG = 0.42


def real_vectors(store: Path) -> tuple[np.ndarray, np.ndarray]:
    from storycluster import Archive

    with Archive(store, create=False) as a:
        data = a.db.all_for_grouping(a.config.model_id)
    return data.lead, data.title


def synthesize(lead: np.ndarray, title: np.ndarray, start: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk of ``m`` articles from row ``start``: (index vectors, copy_of with -1 for an original)."""
    from storycluster.cluster import Thresholds
    from storycluster.embed.layout import VectorLayout

    rng = np.random.default_rng(start)
    n_orig = m - m // 10
    parents = rng.integers(0, len(lead), (n_orig, 3))
    w = rng.dirichlet(np.ones(3), n_orig).astype(np.float32)

    def mix(x: np.ndarray, noise: float, base: np.ndarray | None = None) -> np.ndarray:
        if base is None:  # term by term: a (n, 3, d) gather would dominate the bench's own memory
            v = w[:, :1] * x[parents[:, 0]]
            for k in (1, 2):
                v += w[:, k:k + 1] * x[parents[:, k]]
        else:
            v = base.copy()
        v += (noise / np.sqrt(v.shape[1])) * rng.standard_normal(v.shape, dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    lo, ti = mix(lead, 1.0), mix(title, 1.0)
    src = rng.integers(0, n_orig, m - n_orig)
    lo, ti = np.vstack([lo, mix(lead, 0.3, lo[src])]), np.vstack([ti, mix(title, 0.3, ti[src])])
    copy_of = np.concatenate([np.full(n_orig, -1), src + start])
    return VectorLayout(Thresholds().title_weight).combine(lo, ti), copy_of


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(store: Path, n: int) -> dict:
    from scipy.sparse import csr_matrix

    from storycluster.cluster import StoryModel, Thresholds
    from storycluster.cluster.graph import PairScorer, candidate_edges, neighbour_edges
    from storycluster.cluster.linkage import SparseAverageLinkage
    from storycluster.embed.layout import VectorLayout
    from storycluster.lexical import EMPTY
    from storycluster.store.vector_index import IVF_SAMPLE_PER_LIST, VectorIndex, choose_index, ivf_lists

    lead, title = real_vectors(store)
    t, m = Thresholds(), StoryModel.shipped()
    kind = choose_index("auto", n)
    out: dict = {"n": n, "index": kind, "rss_before_mb": rss_mb()}
    index = VectorIndex(2 * lead.shape[1], kind)
    build = 0.0
    starts = list(range(0, n, CHUNK))
    if kind == "ivf":  # train on the first chunks, as a bulk load would
        need = -(-IVF_SAMPLE_PER_LIST * ivf_lists(n) // CHUNK)
        sample = np.vstack([synthesize(lead, title, s, min(CHUNK, n - s))[0] for s in starts[:need]])
        t0 = time.perf_counter()
        index.train(sample, n)
        build += time.perf_counter() - t0
        out["nlist"] = index.nlist
        del sample
    copy_of = np.empty(n, dtype=np.int64)
    queries = exact_s = exact_i = None
    for s in starts:
        x, c = synthesize(lead, title, s, min(CHUNK, n - s))
        copy_of[s:s + len(x)] = c
        if queries is None:
            first = x
            query_rows = np.random.default_rng(1).choice(len(x), N_QUERIES, replace=False)
            queries = x[query_rows]
            exact_s, exact_i = np.full((N_QUERIES, 0), -np.inf, np.float32), np.zeros((N_QUERIES, 0), np.int64)
        sc = queries @ x.T  # exact top-20 of the query sample, over the stream
        both_s = np.hstack([exact_s, sc])
        both_i = np.hstack([exact_i, np.broadcast_to(np.arange(s, s + len(x)), sc.shape)])
        top = np.argsort(-both_s, axis=1)[:, :20]
        exact_s, exact_i = np.take_along_axis(both_s, top, 1), np.take_along_axis(both_i, top, 1)
        t0 = time.perf_counter()
        index.add(np.arange(s, s + len(x), dtype=np.int64), x)
        build += time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # a store saves its index and the grouping reopens it
        t0 = time.perf_counter()
        index.save(Path(tmp) / "index.faiss")
        del index
        index = VectorIndex.load(Path(tmp) / "index.faiss")
        build += time.perf_counter() - t0
    out["index_s"] = build
    out["rss_index_mb"] = rss_mb()

    index.search(queries[:1], 20)  # warm-up
    lat = []
    for q in queries:
        t1 = time.perf_counter()
        index.search(q[None, :], 20)
        lat.append(time.perf_counter() - t1)
    out["query_ms_p50"], out["query_ms_p99"] = (float(np.percentile(lat, p) * 1000) for p in (50, 99))
    _, approx = index.search(queries, 20)
    out["recall_at_20_vs_exact"] = float(np.mean([len(set(a) & set(e)) / 20 for a, e in
                                                  zip(approx.tolist(), exact_i.tolist(), strict=True)]))
    copies = np.flatnonzero(copy_of[:len(first)] >= 0)
    _, found = index.search(first[copies], 20)
    out["copies_in_top20"] = float(np.mean([copy_of[c] in set(f) for c, f in zip(copies, found.tolist(),
                                                                                 strict=True)]))
    del first

    ids = np.arange(n, dtype=np.int64)
    empty = csr_matrix((n, 1), dtype=np.float64)
    layout = VectorLayout(t.title_weight)
    scorer = PairScorer(layout.half(index, ids, "lead"),
                        layout.half(index, ids, "title"),
                        np.full((n, 1), EMPTY, dtype=np.uint32), np.arange(n).astype(str), empty, empty,
                        np.zeros(n, dtype=np.int64), ["en"] * n, t, m)
    t0 = time.perf_counter()
    near = neighbour_edges(scorer, 20, index, ids)
    out["graph_s"] = time.perf_counter() - t0
    out["rss_graph_mb"] = rss_mb()
    out["edges"] = int(len(near[0]))
    planted = np.flatnonzero(copy_of >= 0)
    lo, hi = np.minimum(planted, copy_of[planted]), np.maximum(planted, copy_of[planted])
    touches = np.zeros(n, dtype=bool)  # only edges at a planted pair's lower end: little memory at 1M
    touches[lo] = True
    e = near[0][touches[near[0][:, 0]]].astype(np.int64)
    out["copies_in_graph"] = float(np.isin(lo * n + hi, e[:, 0] * n + e[:, 1]).mean())
    del e, touches
    # the graph's recall of each sampled article's exact top 20 above the related floor
    edge = near[0][np.isin(near[0][:, 0], query_rows) | np.isin(near[0][:, 1], query_rows)].astype(np.int64)
    have = set(map(tuple, np.sort(edge, axis=1).tolist()))
    want = [((min(q, int(j)), max(q, int(j))), s_) for q, row_s, row_i in zip(query_rows.tolist(), exact_s, exact_i,
                                                                              strict=True)
            for s_, j in zip(row_s, row_i, strict=True) if s_ >= t.related and int(j) != q]
    out["graph_recall_at_20"] = float(np.mean([p in have for p, _ in want])) if want else 1.0
    strong = [p for p, s_ in want if s_ >= STRONG]  # neighbours that can be the same story (semantic regime)
    out["graph_recall_strong"] = float(np.mean([p in have for p in strong])) if strong else 1.0
    out["strong_pairs"] = len(strong)

    t0 = time.perf_counter()
    linkage = SparseAverageLinkage(threshold=m.group_threshold, floor=m.group_floor)
    edges, weights = candidate_edges(scorer, 20, neighbours=near, at_least=linkage.edge_threshold)
    del near
    linkage.fit(n, edges, weights, scorer)
    out["group_s"] = time.perf_counter() - t0
    out["linkage_edges"] = int((weights >= m.group_threshold).sum())
    labels = linkage.labels_
    out["copies_grouped"] = float(np.mean(labels[planted] == labels[copy_of[planted]]))
    out["groups"] = int(len(np.unique(labels)) - (np.bincount(labels) == 1).sum())
    out["total_s"] = out["index_s"] + out["graph_s"] + out["group_s"]
    out["peak_rss_mb"] = rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per size (each in a fresh process, the sizes in turn); the table shows the run with"
                         " the median total")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_size(args.store, args.one)))
        return
    # rounds of every size in turn (10k, 100k, 1M, 10k, ...): a drift in the machine's speed (a shared
    # host's varies by 10% over minutes) then touches every size alike, and the ratio compares like with like
    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    failed: set[int] = set()
    for _ in range(args.repeat):
        for n in args.sizes:
            if n in failed:
                continue
            p = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--one", str(n)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{n}: failed ({p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode})")
                failed.add(n)
                continue
            runs[n].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[n][-1]), flush=True)
    rows = []
    for n in args.sizes:
        if n not in failed:
            done = sorted(runs[n], key=lambda r: r["total_s"])
            rows.append({**done[len(done) // 2], "totals": [round(r["total_s"], 1) for r in runs[n]]})
    print("\n| articles | index | build | graph | grouping | total | peak RSS | search p50 / p99 | recall@20 vs exact:"
          " search / graph | copies in top 20 / in graph / grouped |\n" + "| --- " * 10 + "|")
    for r in rows:
        print(f"| {r['n']:,} | {r['index']} | {r['index_s']:.1f} s | {r['graph_s']:.1f} s | {r['group_s']:.1f} s | "
              f"{r['total_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | {r['query_ms_p50']:.2f} / {r['query_ms_p99']:.2f} ms |"
              f" {r['recall_at_20_vs_exact']:.3f} / {r['graph_recall_at_20']:.3f} ({r['graph_recall_strong']:.3f}"
              f" above {STRONG}) | {r['copies_in_top20']:.3f} /"
              f" {r['copies_in_graph']:.4f} /"
              f" {r['copies_grouped']:.4f} |")
    by = {r["n"]: r for r in rows}
    if args.repeat > 1:
        print("\n" + "\n".join(f"{r['n']:,}: totals {', '.join(f'{t} s' for t in r['totals'])}" for r in rows))
    if 100_000 in by and 1_000_000 in by:
        print(f"\ntime(1M)/time(100k) = {by[1_000_000]['total_s'] / by[100_000]['total_s']:.1f}"
              + (f" (medians of {args.repeat} runs)" if args.repeat > 1 else ""))
        if args.repeat > 1:  # each round's own ratio: its two sizes ran minutes apart
            print("per round: " + ", ".join(f"{big['total_s'] / small['total_s']:.1f}" for small, big in
                                            zip(runs[100_000], runs[1_000_000], strict=False)))


if __name__ == "__main__":
    main()
