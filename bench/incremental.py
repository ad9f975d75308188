"""Incremental grouping on ECB+: ingest in 10 shuffled batches, grouping after each, against one add of the
same articles. Prints B-cubed F1 of both (and the difference, target ≤ 0.01), how many articles each
regrouping clustered again, and the id check: every group id that existed after batch k and still has a
member that was in it keeps that id or is logged as merged. Then the same store regrouped in full: how far the
incremental groups were from it (B-cubed F1 of one partition against the other), with the bound that turns a
regrouping into a full one (regroup.FULL_REGROUP_SHARE) and, with --no-bound, without it.

Run: .venv/bin/python bench/incremental.py [path/to/ecbplus/articles.jsonl] [--batches 10]
     [--first 500 --batch-size 40] (the first articles in one add, then batches of that size) [--no-bound]"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from storycluster import Archive
from storycluster.evaluate import bcubed
from storycluster.ingest import read_path

ROOT = Path(__file__).resolve().parent.parent


def groups(a: Archive) -> dict[str, set[str]]:
    return {g["group"]: {m["id"] for m in g["members"]} for g in a.dedup()["groups"]}


def labels(a: Archive) -> dict[str, str]:
    d = a.dedup()
    out = {m["id"]: g["group"] for g in d["groups"] for m in g["members"]}
    out.update({s: f"single:{s}" for s in d["singletons"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/ecbplus/articles.jsonl"))
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--no-bound", action="store_true")
    args = ap.parse_args()
    if args.no_bound:
        import storycluster.regroup

        storycluster.regroup.FULL_REGROUP_SHARE = float("inf")
    gold = {r["id"]: r["cluster_id"] for r in map(json.loads, Path(args.data).read_text(encoding="utf-8").splitlines())}
    records = [r for r in read_path(args.data) if hasattr(r, "id")]
    random.Random(0).shuffle(records)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with Archive(Path(tmp) / "one") as a:
            a.add(records)
            one = bcubed(labels(a), {i: gold[i] for i in labels(a)})
        t_one = time.perf_counter() - t0
        if args.batch_size:
            starts = [0, *range(args.first or args.batch_size, len(records), args.batch_size)]
        else:
            size = -(-len(records) // args.batches)
            starts = list(range(0, len(records), size))
        bounds = list(zip(starts, [*starts[1:], len(records)], strict=True))
        violations, rows = 0, []
        with Archive(Path(tmp) / "inc") as a:
            prev: dict[str, set[str]] = {}
            for k, (lo, hi) in enumerate(bounds):
                t1 = time.perf_counter()
                a.add(records[lo:hi])
                took = time.perf_counter() - t1
                now = groups(a)
                grouped = {m for ms in now.values() for m in ms}
                merged = {c["group"] for c in a.changes("2000-01-01") if c["change"] == "merged"}
                for gid, members in prev.items():
                    if members & grouped and gid not in now and gid not in merged:
                        violations += 1
                prev = now
                assert a.last_regroup is not None
                rows.append((k + 1, a.db.count(), a.last_regroup.reclustered, a.last_regroup.changes, took,
                             "full" if a.last_regroup.full else "incremental"))
            inc_labels = labels(a)
            inc = bcubed(inc_labels, {i: gold[i] for i in inc_labels})
            a.regroup(full=True)
            full_labels = labels(a)
            drift = bcubed(inc_labels, full_labels)
    print("| batch | stored | regrouping | clustered again | changes logged | add + group (s) |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[5]} | {r[2]} | {r[3]} | {r[4]:.1f} |")
    print(f"\none add: B-cubed P {one['precision']:.3f} R {one['recall']:.3f} F1 {one['f1']:.3f} ({t_one:.1f} s)")
    print(f"{len(bounds)} batches: B-cubed P {inc['precision']:.3f} R {inc['recall']:.3f} F1 {inc['f1']:.3f}")
    print(f"F1 difference {inc['f1'] - one['f1']:+.4f} (target within 0.01); ids lost without a merge record: {violations}")
    same = {frozenset(i for i in inc_labels if inc_labels[i] == g) for g in set(inc_labels.values())} == \
        {frozenset(i for i in full_labels if full_labels[i] == g) for g in set(full_labels.values())}
    print(f"incremental groups against a full regrouping of the same store ({'no bound' if args.no_bound else 'bound'}"
          f"): B-cubed F1 {drift['f1']:.3f}{', identical' if same else ''}")


if __name__ == "__main__":
    main()
