"""Incremental grouping on ECB+: ingest in 10 shuffled batches, grouping after each, against one add of the
same articles. Prints B-cubed F1 of both (and the difference, target ≤ 0.01), how many articles each
regrouping clustered again, and the id check: every group id that existed after batch k and still has a
member that was in it keeps that id or is logged as merged.

Run: .venv/bin/python bench/incremental.py [path/to/ecbplus/articles.jsonl] [--batches 10]"""

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
    args = ap.parse_args()
    gold = {r["id"]: r["cluster_id"] for r in map(json.loads, Path(args.data).read_text(encoding="utf-8").splitlines())}
    records = [r for r in read_path(args.data) if hasattr(r, "id")]
    random.Random(0).shuffle(records)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with Archive(Path(tmp) / "one") as a:
            a.add(records)
            one = bcubed(labels(a), {i: gold[i] for i in labels(a)})
        t_one = time.perf_counter() - t0
        size = -(-len(records) // args.batches)
        violations, rows = 0, []
        with Archive(Path(tmp) / "inc") as a:
            prev: dict[str, set[str]] = {}
            for k in range(args.batches):
                t1 = time.perf_counter()
                a.add(records[k * size:(k + 1) * size])
                took = time.perf_counter() - t1
                now = groups(a)
                grouped = {m for ms in now.values() for m in ms}
                merged = {c["group"] for c in a.changes("2000-01-01") if c["change"] == "merged"}
                for gid, members in prev.items():
                    if members & grouped and gid not in now and gid not in merged:
                        violations += 1
                prev = now
                rows.append((k + 1, a.db.count(), a.last_regroup.reclustered, a.last_regroup.changes, took))
            inc = bcubed(labels(a), {i: gold[i] for i in labels(a)})
    print("| batch | stored | clustered again | changes logged | add + group (s) |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} |")
    print(f"\none add: B-cubed P {one['precision']:.3f} R {one['recall']:.3f} F1 {one['f1']:.3f} ({t_one:.1f} s)")
    print(f"{args.batches} batches: B-cubed P {inc['precision']:.3f} R {inc['recall']:.3f} F1 {inc['f1']:.3f}")
    print(f"F1 difference {inc['f1'] - one['f1']:+.4f} (target within 0.01); ids lost without a merge record: {violations}")


if __name__ == "__main__":
    main()
