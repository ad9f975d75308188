"""Quality at default settings, one table: ECB+ same-story groups (B-cubed, pairwise, ARI), the related
tier's precision@5 against ECB+ topics, and the seed archive (Arabic, French, English) with its checks.

No label is read while grouping; labels are only used to score. Run: .venv/bin/python bench/quality.py"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from storycluster import Archive
from storycluster.cluster import StoryModel
from storycluster.evaluate import read_labels, read_pairs

ROOT = Path(__file__).resolve().parent.parent
ECB = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/data/ecbplus/articles.jsonl")
SEEDS, SEED_GOLD, SEED_PAIRS = (ROOT / "seeds/articles.jsonl", ROOT / "seeds/gold.jsonl",
                                ROOT / "seeds/pairs.jsonl")


def related_precision_at_5(archive: Archive, topic: dict[str, str]) -> tuple[float, float, int, float]:
    """Share of the top-5 related entries that share the query's topic: all entries, `related`-tier ones, and
    the five nearest articles before copies are collapsed (one ECB+ topic holds two stories, so after collapsing
    at most two entries of a list can share the query's topic)."""
    hits = n = hits_rel = n_rel = raw_hits = raw_n = 0
    ids = dict(archive.db.conn.execute("SELECT rowid, id FROM articles"))
    for rowid, q in sorted(ids.items()):
        _, near = archive.index.search(archive.index.vector(rowid)[None, :], 6)
        nearest = [ids[int(r)] for r in near[0] if int(r) != rowid][:5]
        raw_hits, raw_n = raw_hits + sum(topic[x] == topic[q] for x in nearest), raw_n + len(nearest)
        for item in archive.related(q, k=5)["related"]:
            same = topic.get(item["id"]) == topic[q]
            hits, n = hits + same, n + 1
            if item["tier"] == "related":
                hits_rel, n_rel = hits_rel + same, n_rel + 1
    return hits / max(n, 1), hits_rel / max(n_rel, 1), n_rel, raw_hits / max(raw_n, 1)


def main() -> None:
    rows = []
    model = StoryModel.shipped()
    with tempfile.TemporaryDirectory() as tmp:
        with Archive(Path(tmp) / "ecb") as archive:
            t0 = time.perf_counter()
            archive.add_paths([ECB], on_error="skip")
            ingest = time.perf_counter() - t0
            r = archive.evaluate(read_labels(ECB, "cluster_id"))
            p5_all, p5_rel, n_rel, p5_raw = related_precision_at_5(archive, read_labels(ECB, "topic_id"))
        b, pw = r["bcubed"], r["pairwise"]
        rows += [
            ("ECB+ cluster_id, B-cubed P / R / F1", f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}"),
            ("ECB+ cluster_id, pairwise P / R / F1", f"{pw['precision']:.3f} / {pw['recall']:.3f} / {pw['f1']:.3f}"),
            ("ECB+ adjusted Rand index", f"{r['adjusted_rand_index']:.3f}"),
            ("ECB+ groups (+ singletons) vs gold", f"{r['groups']} (+{r['singletons']}) vs {r['gold_groups']}"),
            ("ECB+ B-cubed F1, model fitted on the other topic half",
             " / ".join(f"{x:.3f}" for x in model.metrics.get("bcubed_held_out_topic_halves", []))),
            ("ECB+ precision@5 vs topic_id: 5 nearest articles, not collapsed", f"{p5_raw:.3f}"),
            ("ECB+ related precision@5 vs topic_id: all entries", f"{p5_all:.3f}"),
            ("ECB+ related precision@5 vs topic_id: `related` tier", f"{p5_rel:.3f} ({n_rel} entries)"),
            ("ECB+ ingest of 980 articles", f"{ingest:.1f} s"),
        ]
        with Archive(Path(tmp) / "seeds") as archive:
            archive.add_paths([SEEDS])
            r = archive.evaluate(read_labels(SEED_GOLD, "story"), read_pairs(SEED_PAIRS), split=3)
            dedup = archive.dedup()
        group = {m["id"]: g["group"] for g in dedup["groups"] for m in g["members"]}
        four = {group.get(i) for i in ("similar-03", "similar-04", "similar-05", "similar-07")}
        checks = {
            "four Sudani headlines in one group": len(four) == 1 and None not in four,
            "English and French reports join it": {group.get("en-sudani-bloomberg"),
                                                   group.get("fr-sudani-bloomberg")} == four,
            "Niger/Ukraine/CdI/elections outside it": all(group.get(i) not in four for i in
                                                          ("similar-06", "similar-08", "similar-09", "similar-10")),
            "same-outlet boilerplate does not group": all(i in dedup["singletons"] for i in
                                                          ("masalla-electricity", "masalla-budget", "masalla-heat")),
        }
        b = r["bcubed"]
        rows += [("seeds (ar/fr/en, 25) B-cubed P / R / F1",
                  f"{b['precision']:.3f} / {b['recall']:.3f} / {b['f1']:.3f}")]
        rows += [(f"seeds: {name}", "yes" if ok else "NO") for name, ok in checks.items()]
        p = r["pairs"]
        rows += [(f"seed pairs rated 0-3 by us ({p['scored']}): Spearman / same-story ROC AUC",
                  f"{p['spearman']:.3f} / {p['roc_auc']:.3f}")]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps({"model": model.fitted_on, "fitted_at": model.fitted_at}, ensure_ascii=False))


if __name__ == "__main__":
    main()
