"""Fit the shipped same-story model on ECB+ and report how it does on topics it was not fitted on.

1. Ingest ECB+ into a temporary store (real model, real pipeline).
2. Held-out check: split the 43 topics in two halves at random (seeded); fit on one half, group the other,
   B-cubed F1; and the other way round.
3. Fit on all of ECB+ and write storycluster/cluster/story_model.json (with the data set and date).

Run: .venv/bin/python bench/calibrate.py [path/to/ecbplus/articles.jsonl] [--no-write]"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from storycluster import Archive
from storycluster.calibrate import fit_story_model, pair_features
from storycluster.cluster.graph import PairScorer
from storycluster.cluster.model import MODEL_FILE

ROOT = Path(__file__).resolve().parent.parent
args = [a for a in sys.argv[1:] if not a.startswith("--")]
ECB = Path(args[0] if args else ROOT.parent / "shared/data/ecbplus/articles.jsonl")
CITATION = ("ECB+ (Cybulska & Vossen, LREC 2014), 982 English articles, cluster_id labels; "
            "cltl/ECB-parser eba7c4d1")


def scorer_for(archive: Archive) -> tuple[PairScorer, list[str]]:
    data = archive.db.all_for_grouping(archive.config.model_id)
    ids = {r: i for r, i, _, _ in archive.db.facts()}
    return archive._grouping_scorer(data)[0], [ids[int(r)] for r in data.rowids]


def main() -> None:
    rows = [json.loads(line) for line in ECB.open(encoding="utf-8")]
    cluster = {r["id"]: r["cluster_id"] for r in rows}
    topic = {r["id"]: r["topic_id"] for r in rows}
    with tempfile.TemporaryDirectory() as tmp, Archive(Path(tmp) / "s") as archive:
        archive.add_paths([ECB], on_error="skip")
        scorer, ids = scorer_for(archive)
    topics = sorted(set(topic.values()))
    rng = np.random.default_rng(0)
    rng.shuffle(topics)
    half = set(topics[: len(topics) // 2])
    from storycluster.calibrate import cluster_dense
    from storycluster.cluster.scoring import pair_logits
    from storycluster.evaluate import bcubed

    held = []
    for fit_half in (True, False):
        train = [cluster[i] if (topic[i] in half) == fit_half else None for i in ids]
        model = fit_story_model(scorer, train, "held-out check")
        rows_test = np.array([k for k, i in enumerate(ids) if (topic[i] in half) != fit_half])
        a, b, _, f = pair_features(scorer, rows_test)
        n = len(rows_test)
        ii, jj = np.triu_indices(n, 1)
        logits = np.zeros((n, n))
        logits[ii, jj] = logits[jj, ii] = pair_logits(**f, t=scorer.thresholds, m=model)
        pred = cluster_dense(logits, model)
        held.append(bcubed(pred, {k: cluster[ids[r]] for k, r in enumerate(rows_test)}))
        print(f"fit on {'A' if fit_half else 'B'}, test on the other half: threshold {model.group_threshold}, "
              f"floor {model.group_floor}: B-cubed P {held[-1]['precision']:.3f} R {held[-1]['recall']:.3f} "
              f"F1 {held[-1]['f1']:.3f}")
    model = fit_story_model(scorer, [cluster[i] for i in ids], CITATION)
    model.metrics["bcubed_held_out_topic_halves"] = [round(h["f1"], 4) for h in held]
    print("full fit:", model.to_json())
    if "--no-write" not in sys.argv:
        out = ROOT / "storycluster" / "cluster" / MODEL_FILE
        out.write_text(model.to_json(), encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
