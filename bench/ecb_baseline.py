"""Baseline on ECB+ at default settings: ingest the 982 articles with `Archive.add_paths` (real model,
FAISS, SQLite), time it, then score the `dedup` groups against `cluster_id` (B-cubed and pairwise).

Run: .venv/bin/python bench/ecb_baseline.py [path/to/ecbplus/articles.jsonl]"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from storycluster import Archive
from storycluster.evaluate import bcubed, pairwise

ROOT = Path(__file__).resolve().parent.parent
ECB = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/data/ecbplus/articles.jsonl")


def main() -> None:
    gold = {(r := json.loads(line))["id"]: r["cluster_id"] for line in ECB.open(encoding="utf-8")}
    with tempfile.TemporaryDirectory() as tmp, Archive(Path(tmp) / "store") as archive:
        t0 = time.perf_counter()
        report = archive.add_paths([ECB], on_error="skip")  # 2 ECB+ docs have an empty text
        ingest = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = archive.dedup()
        dedup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for article_id in list(gold)[:100]:
            archive.related(article_id, k=10)
        related_ms = (time.perf_counter() - t0) * 10
    predicted = {m["id"]: g["group"] for g in result["groups"] for m in g["members"]}
    predicted.update({s: f"single:{s}" for s in result["singletons"]})
    b, p = bcubed(predicted, gold), pairwise(predicted, gold)
    rows = [
        ("articles", f"{report.added} stored, {len(report.problems)} skipped: " + "; ".join(map(str, report.problems))),
        ("ingest (embed + index + group)", f"{ingest:.1f} s ({report.added / ingest:.1f} articles/s)"),
        ("dedup (read groups)", f"{dedup_s:.2f} s"),
        ("related, mean of 100", f"{related_ms:.1f} ms"),
        ("groups / gold clusters", f"{len(result['groups'])} (+{len(result['singletons'])} singletons) / "
                                   f"{len(set(gold.values()))}"),
        ("B-cubed P / R / F1", f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}"),
        ("pairwise P / R / F1", f"{p['precision']:.3f} / {p['recall']:.3f} / {p['f1']:.3f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"ECB+ baseline at default settings ({ECB.name})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
