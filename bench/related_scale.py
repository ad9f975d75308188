"""`related` latency in-process on a store of N synthetic articles (default 1,000,000): p50 / p99 of
`Archive.related(id, k=10)` over random stored articles, the whole call (IVF search, SQLite lookups of the
candidates, exact scoring, group collapsing), with the store's SQLite file out of the OS page cache (cold) and
read into it (warm), each in a fresh process.

The store is written directly (generating a million articles' text and embedding it would take hours here):
vectors come from bench/scale.py's synthesizer (real ECB+ embeddings mixed, 10% planted copies, which are
stored as two-member groups); each article carries the headline, body, hashed terms and numbers of a random real
ECB+ article (so rows are real-sized and the TF-IDF and number work per candidate is a real article's), a random
MinHash signature, one of 500 sources and a date within a year. The index is the store's `auto` kind for N (IVF
from 100,000), trained on a sample and fed in chunks as `add` would.

With ``--recommend N``, also ``storycluster recommend`` over the store's first N lists, with one process and
with the default (one per core; ``--workers`` names another): the time per list and what it puts on the whole
store, and the peak memory (of the process and its workers together).

With ``--lists``, also the store's related lists kept in it: built as a full regrouping builds them (after its
groups commit, one worker process per core; ``--workers`` names another count), the time and peak memory, then
``storycluster recommend`` writing every article's list from them (one worker process per core, or
``--workers``), the whole store timed, and its peak memory. The store's ``related_lists_max`` is raised to hold
them.

With ``--regroup``, also a full regrouping of that store (vectors from the IVF index; term lists, TF-IDF, band
collisions, linkage and groups written), its time and peak memory.

Run: .venv/bin/python bench/related_scale.py --store ECB_STORE [--n 1000000] [--out DIR] [--queries 500] [--regroup]
     [--recommend 32768] [--lists] [--workers W]"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dist import TreeMemory  # noqa: E402
from scale import CHUNK, synthesize  # noqa: E402


def build(ecb: Path, out: Path, n: int) -> None:
    from storycluster import Archive
    from storycluster.lexical import NUM_PERM
    from storycluster.store.database import Database
    from storycluster.store.folder import DATABASE, INDEX, StoreConfig
    from storycluster.store.vector_index import IVF_SAMPLE_PER_LIST, VectorIndex, choose_index, ivf_lists

    with Archive(ecb, create=False) as a:
        data = a.db.all_for_grouping(a.config.model_id)
        config = a.config
        donors = {r: (t, x) for r, t, x in a.db.conn.execute("SELECT rowid, title, text FROM articles")}
        w = a.thresholds.title_weight
    real = [donors[int(r)] for r in data.rowids]  # (headline, body) of each ECB+ article
    out.mkdir(parents=True)
    cfg = StoreConfig(model_id=config.model_id, dim=config.dim, index_dim=config.index_dim, thresholds=config.thresholds)
    cfg.write(out)
    db = Database(out / DATABASE)
    # a bulk load of a throw-away store: no journal, no fsync (a store written by `add` keeps both)
    db.conn.execute("PRAGMA journal_mode=OFF")
    db.conn.execute("PRAGMA synchronous=OFF")
    db.conn.execute("PRAGMA cache_size=-262144")
    rng = np.random.default_rng(7)
    kind = choose_index("auto", n)
    index = VectorIndex(config.index_dim, kind)
    starts = list(range(0, n, CHUNK))
    if kind == "ivf":
        need = -(-IVF_SAMPLE_PER_LIST * ivf_lists(n) // CHUNK)
        index.train(np.vstack([synthesize(data.lead, data.title, s, min(CHUNK, n - s))[0] for s in starts[:need]]), n)
    df_weight = np.zeros(len(data.terms), dtype=np.int64)
    d = config.dim
    for s in starts:
        x, copy_of = synthesize(data.lead, data.title, s, min(CHUNK, n - s))
        m = len(x)
        rowids = np.arange(s + 1, s + m + 1)
        donor = rng.integers(0, len(data.terms), m)
        np.add.at(df_weight, donor, 1)
        sigs = rng.integers(0, 2**32 - 2, (m, NUM_PERM), dtype=np.uint32)
        day = rng.integers(0, 365, m)
        lead = x[:, :d] / np.float32(np.sqrt(1 - w))
        title = x[:, d:] / np.float32(np.sqrt(w))
        db.begin()
        db.conn.executemany(
            "INSERT INTO articles (rowid, id, title, text, url, source, published, published_ts, lang, record_hash,"
            " content_hash, embed_hash, title_hash, signature, terms, numbers)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(int(r), f"a{r}", *real[int(dn)], f"https://example.org/{r}", f"outlet-{int(r) % 500}",
              None, 1.7e9 + 86400.0 * int(dy), "en", f"r{r}", f"c{r}", f"l{r:08d}", f"t{r:08d}", sg.tobytes(),
              data.terms[int(dn)].tobytes(), data.numbers[int(dn)].tobytes())
             for r, dn, sg, dy in zip(rowids.tolist(), donor, sigs, day, strict=True)])
        db.conn.executemany("INSERT INTO embeddings VALUES (?, ?, ?)",
                            [(f"l{r:08d}", config.model_id, v.tobytes()) for r, v in zip(rowids.tolist(), lead,
                                                                                          strict=True)]
                            + [(f"t{r:08d}", config.model_id, v.tobytes()) for r, v in zip(rowids.tolist(), title,
                                                                                          strict=True)])
        copies = np.flatnonzero(copy_of >= 0)  # planted copies: two-member groups (copy and original)
        db.conn.executemany("INSERT OR IGNORE INTO groups VALUES (?, ?, 2)",
                            [(f"g{copy_of[c] + 1}", int(copy_of[c] + 1)) for c in copies])
        db.conn.executemany("INSERT OR IGNORE INTO group_members VALUES (?, ?, ?, ?, NULL)",
                            [(int(copy_of[c] + 1), f"g{copy_of[c] + 1}", 1.0, "same_story") for c in copies]
                            + [(int(rowids[c]), f"g{copy_of[c] + 1}", 0.9, "same_story") for c in copies])
        db.commit()
        index.add(rowids, x)
        print(f"\r{s + m:,} / {n:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    from storycluster.lexical import N_FEATURES, unpack

    df = np.zeros(N_FEATURES, dtype=np.int64)
    for t, c in zip(data.terms, df_weight, strict=True):
        if c:
            df[unpack(t)[0]] += c
    nz = np.flatnonzero(df)
    db.begin()
    db.set_blob("term_df", np.concatenate([nz, df[nz]]).astype(np.uint32).tobytes())
    db.set_meta("term_df_docs", str(n))
    db.set_meta("generation", "1")
    db.set_meta("groups_generation", "1")
    db.commit()
    db.close()
    index.save(out / INDEX)
    cfg.index_generation = 1
    cfg.write(out)


def page_cache(path: Path, state: str) -> float:
    """Put the store's SQLite file into the OS page cache (``warm``: read it once, as a long-running server's
    cache would hold it) or out of it (``cold``: ``posix_fadvise(DONTNEED)``, as after a reboot); seconds taken.
    The FAISS index is read into memory when the store opens either way."""
    t0 = time.perf_counter()
    for f in [path / "store.sqlite", *path.glob("store.sqlite-*")]:
        fd = os.open(f, os.O_RDONLY)
        try:
            if state == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while os.read(fd, 1 << 24):
                    pass
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def measure(path: Path, queries: int, cache: str, seed: int) -> dict:
    """``queries`` calls for random stored ids after 20 warm-up calls (other ids), in a fresh process's view of
    the store: SQLite pages come from the OS page cache prepared by ``page_cache``."""
    from storycluster import Archive

    prep_s = page_cache(path, cache)
    with Archive(path, create=False) as a:
        n = a.db.count()
        t0 = time.perf_counter()
        index = a.index
        load_s = time.perf_counter() - t0
        ids = [f"a{r}" for r in np.random.default_rng(seed).integers(1, n + 1, queries + 20)]
        for q in ids[:20]:  # warm-up (B-tree interior pages, IDF cache)
            a.related(q, k=10)
        lat, sizes = [], []
        for q in ids[20:]:
            t1 = time.perf_counter()
            r = a.related(q, k=10)
            lat.append(time.perf_counter() - t1)
            sizes.append(len(r["related"]))
    return {"articles": n, "index": index.index_type, "page_cache": cache, "page_cache_s": prep_s,
            "index_load_s": load_s, "queries": queries,
            "related_ms_p50": float(np.percentile(lat, 50) * 1000), "related_ms_p90": float(np.percentile(lat, 90) * 1000),
            "related_ms_p99": float(np.percentile(lat, 99) * 1000), "mean_items": float(np.mean(sizes))}


def regroup(path: Path) -> dict:
    """A full regrouping of the store, as changing its thresholds or model runs it: seconds and peak RSS."""
    import resource

    from storycluster import Archive
    from storycluster.regroup import regroup
    from storycluster.store.folder import WriteLock

    with Archive(path, create=False) as a, WriteLock(a.path):
        t0 = time.perf_counter()
        report = regroup(a.store, full=True)
        seconds = time.perf_counter() - t0
    return {"regroup_s": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **asdict(report)}


def lists_build(path: Path, workers: int) -> dict:
    """The store's related lists, built as a full regrouping of a store over ``stored.INLINE_MAX`` articles builds
    them once its groups committed (marked pending, then :func:`storycluster.related.stored.build`): seconds,
    per list, the peak memory of this process and its workers (proportional set sizes, read every 0.5 s)."""
    from storycluster import Archive
    from storycluster.parallel import cores
    from storycluster.related import stored
    from storycluster.store.folder import StoreConfig, WriteLock

    config = StoreConfig.read(path)
    assert config is not None
    config.related_lists_max = max(config.related_lists_max, 2_000_000)
    config.write(path)
    workers = workers or cores()
    memory = TreeMemory(os.getpid(), every=0.5)
    with Archive(path, create=False) as a, WriteLock(a.path):
        with a.db.transaction():
            a.db.set_meta("related_lists", f"{stored.PENDING}:{a.db.get_meta('groups_generation')}")
        t0 = time.perf_counter()
        n = stored.build(a.store, workers=workers)
        seconds = time.perf_counter() - t0
        assert stored.fresh(a.store)
    return {"lists": n, "workers": workers, "build_s": seconds, "ms_per_list": seconds / max(n, 1) * 1000,
            "peak_memory_mb": memory.stop(), "store_gb": sum(f.stat().st_size for f in path.iterdir()) / 1e9}


def lists_export(path: Path, workers: int) -> dict:
    """``storycluster recommend`` over a store whose lists are current: every list, timed whole, and the peak
    memory of this process and its workers."""
    from storycluster import Archive
    from storycluster.parallel import cores
    from storycluster.recommend import recommend
    from storycluster.related.stored import fresh

    workers = workers or cores()
    memory = TreeMemory(os.getpid(), every=0.5)
    with Archive(path, create=False) as a, tempfile.TemporaryDirectory() as tmp:
        assert fresh(a.store)
        t0 = time.perf_counter()
        report = recommend(a, Path(tmp) / "related.jsonl", k=10, full=True, workers=workers)
        seconds = time.perf_counter() - t0
        size = (Path(tmp) / "related.jsonl").stat().st_size
    return {"lists": report.articles, "workers": workers, "export_s": seconds,
            "ms_per_list": seconds / max(report.articles, 1) * 1000, "output_mb": size / 1e6,
            "peak_memory_mb": memory.stop()}


class _Enough(Exception):
    pass


def recommend_sample(path: Path, n: int, workers: int) -> dict:
    """``storycluster recommend`` over the store with ``workers`` processes (0: one per core), stopped after
    about ``n`` lists (whole parts, in the order it writes them; at least two of its index searches,
    ``2 * SEARCH``, and two per worker): the start (store and index opened, articles put in neighbour order,
    workers started), the time per list after the first search's lists, what that puts on the whole store,
    the peak RSS of this process and the peak memory of it and its workers (proportional set sizes, read every
    0.2 s)."""
    import resource

    from storycluster import Archive
    from storycluster.parallel import cores
    from storycluster.recommend import SEARCH, recommend

    marks: list[tuple[float, int]] = []
    done = 0
    workers = workers or cores()
    n = max(n, 2 * SEARCH * workers)
    t0 = time.perf_counter()

    def progress(k: int) -> None:
        nonlocal done
        done += k
        marks.append((time.perf_counter() - t0, done))
        if done >= n:
            raise _Enough

    memory = TreeMemory(os.getpid(), every=0.2)
    with Archive(path, create=False) as a, tempfile.TemporaryDirectory() as tmp:
        total = a.db.count()
        with contextlib.suppress(_Enough):
            recommend(a, Path(tmp) / "related.jsonl", k=10, full=True, progress=progress, workers=workers)
    peak_mb = memory.stop()
    # from the end of the first index search's lists (see recommend.SEARCH) to the last whole search's end
    (t1, n1), (t2, n2) = next(m for m in marks if m[1] >= SEARCH), marks[-1]
    per = (t2 - t1) / max(n2 - n1, 1)
    start = t1 - per * n1
    return {"articles": total, "workers": workers, "lists": n2, "start_s": start, "ms_per_list": per * 1000,
            "whole_store_min": (start + per * total) / 60,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_memory_mb": peak_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True, help="an ECB+ store (real embeddings and terms)")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, help="where to write the synthetic store (default: a temporary folder)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--cache", choices=["cold", "warm", "both"], default="both",
                    help="the store's SQLite file out of the OS page cache, read into it first, or both in turn")
    ap.add_argument("--regroup", action="store_true",
                    help="also time a full regrouping of the store (and its peak memory), in a fresh process")
    ap.add_argument("--recommend", type=int, metavar="N", default=0,
                    help="also time `recommend` over the store for its first N lists (and its peak memory), in a "
                         "fresh process, and what that puts on the whole store")
    ap.add_argument("--lists", action="store_true",
                    help="also build the store's related lists (as a full regrouping does) and time `recommend` "
                         "writing them all, each in a fresh process")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes computing `recommend`'s or the build's lists (0: one per core, as the "
                         "command's default)")
    ap.add_argument("--measure", choices=["cold", "warm", "regroup", "recommend", "lists", "export"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:  # as the storycluster command runs
        from storycluster.memory import numpy_huge_pages

        numpy_huge_pages(False)
    if args.measure == "regroup":
        print(json.dumps(regroup(args.out)))
        return
    if args.measure == "recommend":
        print(json.dumps(recommend_sample(args.out, args.recommend, args.workers)))
        return
    if args.measure in ("lists", "export"):
        print(json.dumps((lists_build if args.measure == "lists" else lists_export)(args.out, args.workers)))
        return
    if args.measure:  # the child process of one measurement
        print(json.dumps(measure(args.out, args.queries, args.measure, 100 + args.seed)))
        return
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="sc-related-")
        out = Path(tmp) / "store"
    try:
        if not (out / "config.json").exists():
            t0 = time.perf_counter()
            partial = out.with_name(out.name + ".partial")  # renamed when whole: a stopped build is not reused
            shutil.rmtree(partial, ignore_errors=True)
            build(args.store, partial, args.n)
            os.replace(partial, out)
            print(f"built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        size = sum(f.stat().st_size for f in out.iterdir()) / 1e9
        results = []
        for seed, cache in enumerate(["cold", "warm"] if args.cache == "both" else [args.cache]):
            # each in a fresh process: nothing of the previous measurement stays in this one's memory
            child = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--out", str(out),
                                    "--measure", cache, "--seed", str(seed), "--queries", str(args.queries)],
                                   capture_output=True, text=True, check=True)
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]))
        print(f"\nstore {size:.1f} GB\n| articles | index | SQLite pages | related p50 | p90 | p99 |\n"
              "| --- | --- | --- | --- | --- | --- |")
        for r in results:
            print(f"| {r['articles']:,} | {r['index']} | {r['page_cache']} | {r['related_ms_p50']:.1f} ms |"
                  f" {r['related_ms_p90']:.1f} ms | {r['related_ms_p99']:.1f} ms |")
        if args.regroup:
            child = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--out", str(out),
                                    "--measure", "regroup"], capture_output=True, text=True, check=True)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(r))
            print(f"\nfull regrouping: {r['regroup_s']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB")
        from storycluster.parallel import cores

        # one process, then the command's default (one per core), unless --workers names one
        for workers in ([args.workers] if args.workers else sorted({1, cores()})) if args.recommend else []:
            child = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--out", str(out),
                                    "--measure", "recommend", "--recommend", str(args.recommend),
                                    "--workers", str(workers)], capture_output=True, text=True, check=True)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(r))
            print(f"\nrecommend, {workers} worker{'s' * (workers > 1)}: {r['lists']:,} lists after a start of "
                  f"{r['start_s']:.0f} s, {r['ms_per_list']:.2f} ms a list: about {r['whole_store_min']:.0f} min for "
                  f"the {r['articles']:,} articles; peak memory {r['peak_memory_mb']:,.0f} MB (this process's "
                  f"RSS {r['peak_rss_mb']:,.0f} MB)")
        for step in ("lists", "export") if args.lists else ():
            child = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--out", str(out),
                                    "--measure", step, "--workers", str(args.workers)],
                                   capture_output=True, text=True, check=True)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(r))
            if step == "lists":
                print(f"\nlists built ({r['workers']} workers): {r['lists']:,} in {r['build_s'] / 60:.1f} min, "
                      f"{r['ms_per_list']:.2f} ms a list; peak memory {r['peak_memory_mb']:,.0f} MB; store "
                      f"{r['store_gb']:.1f} GB")
            else:
                print(f"\nrecommend from the stored lists ({r['workers']} workers): {r['lists']:,} lists in "
                      f"{r['export_s'] / 60:.1f} min, {r['ms_per_list']:.2f} ms a list, {r['output_mb']:,.0f} MB; "
                      f"peak memory {r['peak_memory_mb']:,.0f} MB")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
