"""Fit the shipped same-story model on the three dev sets and write storycluster/cluster/story_model.json.

1. Each dev set goes into its own store (real model, real pipeline; bench/devsets.py) and its labelled pairs are
   scored there: ECB+ (English, same event), SemEval-2022 Task 8 dev pairs (ar, tr, fr, human ratings), WMT
   multi-way translations (de, en, es, fr, and cs, hu which the model does not read), and the WMT and ECB+
   headlines alone.
2. Each regime is fitted on its sources (devsets.REGIME_SOURCES); the ECB+-fitted ones are rescaled on SemEval's
   ratings; the grouping threshold and floor maximise the mean B-cubed F1 over ECB+ and the two WMT test sets
   (the languages the model reads).
3. The model is written with the data sets, the date and its cross-validated figures (bench/quality.py prints
   them per language).

Run: .venv/bin/python bench/calibrate.py [--no-write]"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import devsets

from storycluster.calibrate import choose_grouping
from storycluster.cluster import Thresholds
from storycluster.cluster.model import MODEL_FILE

ROOT = Path(__file__).resolve().parent.parent
CITATION = ("ECB+ (Cybulska & Vossen, LREC 2014; cltl/ECB-parser eba7c4d1), 982 English articles, cluster_id; "
            "SemEval-2022 Task 8 dev half (ar 117, tr 202, fr 36 rated pairs; Chen et al. 2022); WMT newstest2011 "
            "and news-test2008 multi-way translations (200 stories in de, en, es, fr; cs, hu not read)")


def covered(name: str, article_id: str) -> bool:
    """Articles that take part in choosing the grouping threshold: all of ECB+, WMT in the model's languages."""
    return name == "ecb" or article_id.rsplit("-", 1)[1] not in ("cs", "hu")


def fit_shipped(sets: dict, drop=None, keep_article=covered):
    """The shipped model's recipe: regimes, rescaling, grouping threshold (less what ``drop`` marks)."""
    model = devsets.fit(sets, drop=drop)
    grouping = devsets.grouping_sets({"ecb": sets["ecb"], "wmt": sets["wmt"]}, keep_article)
    model, score = choose_grouping(model, grouping, Thresholds())
    return model, score


def main() -> None:
    sets = devsets.load_all()
    model, score = fit_shipped(sets)
    model = replace(model, fitted_on=CITATION, fitted_at=datetime.now(UTC).strftime("%Y-%m-%d"),
                    metrics={"bcubed_f1_mean_in_sample": round(score, 4),
                             "pairs": {name: int(len(ps.label)) for name, ps in sets.items()}})
    print(model.to_json())
    if "--no-write" not in sys.argv:
        out = ROOT / "storycluster" / "cluster" / MODEL_FILE
        out.write_text(model.to_json(), encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
