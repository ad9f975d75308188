"""Fit the same-story model on labelled articles: logistic regressions over pair evidence (one for pairs of
full articles, one for short same-language pairs), then the grouping threshold and floor that maximise
B-cubed F1 on the same labels."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from .cluster.graph import PairScorer
from .cluster.linkage import SparseAverageLinkage
from .cluster.model import StoryModel
from .cluster.scoring import pair_logits, semantic_similarity
from .evaluate import bcubed

THRESHOLDS = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5)
FLOORS = (-6.0, -5.0, -4.5, -4.0, -3.5, -3.0, -2.0)
MIN_SHORT_PAIRS = 20  # same-story pairs among short texts needed to fit their own weights


def pair_features(scorer: PairScorer, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """All pairs among ``rows`` (indices into the scorer): (i, j, feature matrix, raw evidence)."""
    ii, jj = np.triu_indices(len(rows), 1)
    i, j = rows[ii], rows[jj]
    f = scorer.features(i, j)
    sem = semantic_similarity(f["lead"], f["title"], scorer.thresholds.title_weight)
    x = np.stack([f["lead"], f["title"], sem, f["tfidf"], f["rare"], f["years_jaccard"], f["years_conflict"],
                  f["numbers_jaccard"], f["numbers_conflict"]], axis=1)
    return i, j, x, f


def fit_story_model(scorer: PairScorer, labels: list[str | None], fitted_on: str,
                    base: StoryModel | None = None) -> StoryModel:
    """Fit on every labelled row of ``scorer`` (rows whose label is None are left out)."""
    from sklearn.linear_model import LogisticRegression

    base = base or scorer.model
    rows = np.array([k for k, lab in enumerate(labels) if lab is not None], dtype=np.int64)
    if len(rows) < 4:
        raise ValueError(f"calibration needs labels for at least 4 stored articles, found {len(rows)}")
    gold = np.array([labels[k] for k in rows], dtype=object)
    codes = {lab: n for n, lab in enumerate(dict.fromkeys(gold.tolist()))}
    y_all = np.array([codes[g] for g in gold])
    i, j, x, f = pair_features(scorer, rows)
    pos = {int(r): n for n, r in enumerate(rows)}
    y = (y_all[[pos[int(a)] for a in i]] == y_all[[pos[int(b)] for b in j]]).astype(int)
    lexical = ~f["cross_lingual"] & (f["min_tokens"] >= base.min_tokens)
    if not lexical.any() or y[lexical].min() == y[lexical].max():
        raise ValueError("the labels give no same-story pairs (or no different-story pairs) among articles of "
                         f"one language with {base.min_tokens}+ words; label more articles")
    lr = LogisticRegression(max_iter=5000).fit(x[lexical], y[lexical])
    short = ~f["cross_lingual"] & (f["min_tokens"] >= base.short_min_tokens) & ~lexical
    short_coef, short_intercept = [], 0.0
    if y[short].sum() >= MIN_SHORT_PAIRS and (y[short] == 0).sum() >= MIN_SHORT_PAIRS:
        short_lr = LogisticRegression(max_iter=5000).fit(x[short], y[short])
        short_coef, short_intercept = [float(c) for c in short_lr.coef_[0]], float(short_lr.intercept_[0])
    model = replace(base, coef=[float(c) for c in lr.coef_[0]], intercept=float(lr.intercept_[0]),
                    short_coef=short_coef, short_intercept=short_intercept,
                    fitted_on=fitted_on, fitted_at=datetime.now(UTC).strftime("%Y-%m-%d"))
    best = (-1.0, model)
    n = len(rows)
    ii, jj = np.triu_indices(n, 1)  # the same pair order as pair_features
    gold_map = dict(enumerate(gold.tolist()))
    for thr in THRESHOLDS:
        for floor in FLOORS:
            if floor >= thr:
                continue
            m = replace(model, group_threshold=thr, group_floor=floor)
            logits = np.full((n, n), 0.0)
            logits[ii, jj] = logits[jj, ii] = pair_logits(**f, t=scorer.thresholds, m=m)
            score = bcubed(cluster_dense(logits, m), gold_map)
            if score["f1"] > best[0]:
                best = (score["f1"], replace(m, metrics={"bcubed_in_sample": score, "pairs": int(len(y)),
                                                          "positive_pairs": int(y.sum()), "articles": n}))
    return best[1]


def cluster_dense(logits: np.ndarray, model: StoryModel) -> dict[int, int]:
    """Average-link clusters given a dense symmetric log-odds matrix (all pairs are candidates)."""
    n = len(logits)
    ii, jj = np.triu_indices(n, 1)
    w = logits[ii, jj]
    keep = w >= model.group_floor
    labels = SparseAverageLinkage(threshold=model.group_threshold, floor=model.group_floor).fit(
        n, np.stack([ii[keep], jj[keep]], axis=1), w[keep], lambda a, b: logits[np.ix_(a, b)]).labels_
    return dict(enumerate(labels.tolist()))
