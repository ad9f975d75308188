"""Fit the same-story model on labelled pairs: one logistic regression per regime (:mod:`.cluster.model`), then
the grouping threshold and floor that maximise B-cubed F1 on labelled groups.

Labels may be soft (a human rating turned into a share of "same story", e.g. 2 on SemEval's 1–4 scale is 2/3
same), and each pair carries a weight (so that one large data set does not drown a small one). Within a regime,
same-story and different-story pairs get equal total weight: a probability of 0.5 means the evidence favours
neither."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from .cluster.graph import PairScorer
from .cluster.linkage import SparseAverageLinkage
from .cluster.model import FEATURES, REGIMES, Regime, StoryModel
from .cluster.scoring import pair_logits, semantic_similarity
from .evaluate import bcubed

if TYPE_CHECKING:
    from pathlib import Path

    from .store.store import Store

THRESHOLDS = tuple(float(x) for x in np.arange(-3.0, 1.01, 0.25))  # average-link merge threshold (log-odds)
FLOOR_GAPS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # the complete-link floor this far below it
MIN_PAIRS = 20  # same-story and different-story pairs a regime needs to get its own weights


def feature_matrix(f: dict[str, np.ndarray], title_weight: float) -> np.ndarray:
    """The model's features (:data:`.cluster.model.FEATURES`) of pairs, from :meth:`PairScorer.features`."""
    sem = semantic_similarity(f["lead"], f["title"], title_weight)
    return np.stack([f["lead"], f["title"], sem, f["tfidf"], f["rare"], f["years_jaccard"], f["years_conflict"],
                     f["numbers_jaccard"], f["numbers_conflict"]], axis=1).astype(np.float64)


def pair_features(scorer: PairScorer, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """All pairs among ``rows`` (indices into the scorer): (i, j, feature matrix, raw evidence)."""
    ii, jj = np.triu_indices(len(rows), 1)
    i, j = rows[ii], rows[jj]
    f = scorer.features(i, j)
    return i, j, feature_matrix(f, scorer.thresholds.title_weight), f


def fit_regimes(f: dict[str, np.ndarray], y: np.ndarray, weight: np.ndarray, model: StoryModel, title_weight: float,
                duplicate_jaccard: float, C: float = 1.0, min_pairs: int = MIN_PAIRS,
                balance: bool = True, without: dict[str, tuple[str, ...]] | None = None) -> dict[str, Regime]:
    """A logistic regression per regime that has at least ``min_pairs`` same-story and different-story pairs
    (counted with labels ≥ 0.5 and < 0.5); the regimes without enough are left out of the result. ``y``: labels
    in [0, 1] (soft labels allowed); ``weight``: each pair's weight; ``balance``: same-story and different-story
    pairs weigh the same in total (else as labelled); ``without``: features a regime gets no weight on (by
    regime name, feature names as in :data:`.cluster.model.FEATURES`). Lexical duplicates are left out (their
    log-odds are fixed) and so are pairs the model does not read."""
    from sklearn.linear_model import LogisticRegression

    x = feature_matrix(f, title_weight)
    y = np.asarray(y, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    dup = np.asarray(f["same_content"], dtype=bool) | (np.asarray(f["jaccard"]) >= duplicate_jaccard)
    masks = model.regime_masks(f["min_tokens"], f["cross_lingual"], f.get("unreadable"))
    out = {}
    for name in REGIMES:
        k = masks[name] & ~dup & (weight > 0) & ~np.isnan(y)
        if (y[k] >= 0.5).sum() < min_pairs or (y[k] < 0.5).sum() < min_pairs:
            continue
        xk, yk, wk = x[k].copy(), y[k], weight[k]
        for feature in (without or {}).get(name, ()):
            xk[:, FEATURES.index(feature)] = 0.0  # a constant zero column keeps a zero weight
        pos, neg = (wk * yk).sum(), (wk * (1 - yk)).sum()
        # each pair twice (as same story with weight w*y, as different with w*(1-y)); both classes weigh the same,
        # and the weights add up to the number of pairs (so that C means what it means unweighted)
        if balance:
            w_pos, w_neg = wk * yk * (0.5 / pos), wk * (1 - yk) * (0.5 / neg)
        else:  # the labels' own prior (the probabilities then need recalibrate to mean anything)
            w_pos, w_neg = wk * yk / (pos + neg), wk * (1 - yk) / (pos + neg)
        xx = np.vstack([xk, xk])
        yy = np.concatenate([np.ones(len(xk)), np.zeros(len(xk))])
        ww = np.concatenate([w_pos, w_neg]) * len(xk)
        keep = ww > 0
        lr = LogisticRegression(max_iter=5000, C=C).fit(xx[keep], yy[keep], sample_weight=ww[keep])
        out[name] = Regime([float(c) for c in lr.coef_[0]], float(lr.intercept_[0]))
    return out


def recalibrate(model: StoryModel, regime: str, f: dict[str, np.ndarray], y: np.ndarray, weight: np.ndarray,
                thresholds) -> tuple[float, float]:
    """(a, b) such that a·z + b, z the regime's log-odds, fits other labelled pairs (Platt scaling; soft labels
    allowed; same-story and different-story pairs weigh the same in total): applied with :func:`rescaled`, the
    ranking, and so the groups at a matching grouping threshold, stay as they were, and the probabilities take
    the new labels' scale."""
    lr = _scale_fit(model, regime, f, y, weight, thresholds, intercept=True)
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def fit_slope(model: StoryModel, regime: str, f: dict[str, np.ndarray], y: np.ndarray, weight: np.ndarray,
              thresholds) -> float:
    """The slope ``a`` such that ``sigmoid(a·z)``, z the regime's log-odds, fits labelled pairs (soft labels
    allowed; same-story and different-story pairs weigh the same in total), with no intercept: the verdict
    (z ≥ 0) stays, only how sure the reported probability is changes (:attr:`StoryModel.similarity_slopes`)."""
    return float(_scale_fit(model, regime, f, y, weight, thresholds, intercept=False).coef_[0][0])


def _scale_fit(model: StoryModel, regime: str, f: dict[str, np.ndarray], y: np.ndarray, weight: np.ndarray,
               thresholds, intercept: bool):
    """A logistic regression of the labels on the regime's log-odds (lexical duplicates left out), each pair once
    as same story with weight y and once as different with 1 − y, each class weighing the same in total."""
    from sklearn.linear_model import LogisticRegression

    dup = np.asarray(f["same_content"], dtype=bool) | (np.asarray(f["jaccard"]) >= thresholds.duplicate_jaccard)
    k = ~dup & ~np.isnan(y) & (weight > 0)
    z = model.regimes[regime].logits(list(feature_matrix(f, thresholds.title_weight)[k].T))
    yk, wk = y[k], weight[k]
    w_pos, w_neg = wk * yk / (wk * yk).sum(), wk * (1 - yk) / (wk * (1 - yk)).sum()
    zz = np.concatenate([z, z])[:, None]
    yy = np.concatenate([np.ones(len(z)), np.zeros(len(z))])
    ww = np.concatenate([w_pos, w_neg]) * len(z) / 2
    keep = ww > 0
    return LogisticRegression(C=100.0, fit_intercept=intercept).fit(zz[keep], yy[keep], sample_weight=ww[keep])


def rescaled(regime: Regime, a: float, b: float) -> Regime:
    """The regime whose log-odds are a·z + b."""
    return Regime([a * c for c in regime.coef], a * regime.intercept + b)


def choose_grouping(model: StoryModel, sets: list[tuple[dict[str, np.ndarray], dict[int, str]]],
                    thresholds) -> tuple[StoryModel, float]:
    """The grouping threshold and floor with the best mean B-cubed F1 over ``sets``: each the evidence of every
    pair among n articles (in :func:`numpy.triu_indices` order) and their gold labels by position. A grid
    (:data:`THRESHOLDS` × :data:`FLOOR_GAPS`), then a finer one around its best."""
    mats = [(dense_logits(f, len(gold), model, thresholds), gold) for f, gold in sets]
    seen: dict[tuple[float, float], float] = {}

    def score(thr: float, gap: float) -> float:
        key = (round(thr, 4), round(gap, 4))
        if key not in seen:
            m = replace(model, group_threshold=key[0], group_floor=round(key[0] - key[1], 4))
            seen[key] = float(np.mean([bcubed(cluster_dense(lg, m), gold)["f1"] for lg, gold in mats]))
        return seen[key]

    best = max(((thr, gap) for thr in THRESHOLDS for gap in FLOOR_GAPS), key=lambda tg: score(*tg))
    fine = [(best[0] + d, g) for d in np.arange(-0.2, 0.21, 0.05)
            for g in np.unique(np.clip(best[1] + np.arange(-0.2, 0.21, 0.1), 0.05, None))]
    best = max([best, *fine], key=lambda tg: (score(*tg), -abs(tg[0] - best[0])))
    thr, gap = round(best[0], 4), round(best[1], 4)
    return replace(model, group_threshold=thr, group_floor=round(thr - gap, 4)), score(*best)


def fit_story_model(scorer: PairScorer, labels: list[str | None], fitted_on: str,
                    base: StoryModel | None = None) -> StoryModel:
    """Refit on every labelled row of ``scorer`` (rows whose label is None are left out): the regimes the labels
    give enough pairs for get new weights, the others keep ``base``'s; then the grouping threshold and floor."""
    base = base or scorer.model
    rows = np.array([k for k, lab in enumerate(labels) if lab is not None], dtype=np.int64)
    if len(rows) < 4:
        raise ValueError(f"calibration needs labels for at least 4 stored articles, found {len(rows)}")
    gold = np.array([labels[k] for k in rows], dtype=object)
    codes = {lab: n for n, lab in enumerate(dict.fromkeys(gold.tolist()))}
    y_all = np.array([codes[g] for g in gold])
    i, j, _, f = pair_features(scorer, rows)
    pos = {int(r): n for n, r in enumerate(rows)}
    y = (y_all[[pos[int(a)] for a in i]] == y_all[[pos[int(b)] for b in j]]).astype(float)
    t = scorer.thresholds
    fitted = fit_regimes(f, y, np.ones(len(y)), base, t.title_weight, t.duplicate_jaccard)
    if not fitted:
        raise ValueError(f"the labels give fewer than {MIN_PAIRS} same-story or different-story pairs in every "
                         "regime (pairs of articles of one language, of two languages, of headlines); label more "
                         "articles")
    # a regime refitted on these labels reports its own probability: the slope fitted for the old weights goes
    model = replace(base, regimes={**base.regimes, **fitted}, fitted_on=fitted_on,
                    fitted_at=datetime.now(UTC).strftime("%Y-%m-%d"),
                    similarity_slopes={k: v for k, v in base.similarity_slopes.items() if k not in fitted})
    model, _ = choose_grouping(model, [(f, dict(enumerate(gold.tolist())))], t)
    score = bcubed(cluster_dense(dense_logits(f, len(rows), model, t), model), dict(enumerate(gold.tolist())))
    return replace(model, metrics={"bcubed_in_sample": score, "pairs": int(len(y)), "positive_pairs": int(y.sum()),
                                   "articles": len(rows), "regimes_fitted": sorted(fitted)})


def dense_logits(f: dict[str, np.ndarray], n: int, model: StoryModel, thresholds) -> np.ndarray:
    """The symmetric log-odds matrix of n articles from the evidence of all their pairs (triu_indices order)."""
    ii, jj = np.triu_indices(n, 1)
    logits = np.zeros((n, n))
    logits[ii, jj] = logits[jj, ii] = pair_logits(**f, t=thresholds, m=model)
    return logits


def cluster_dense(logits: np.ndarray, model: StoryModel) -> dict[int, int]:
    """Average-link clusters given a dense symmetric log-odds matrix (all pairs are candidates)."""
    n = len(logits)
    ii, jj = np.triu_indices(n, 1)
    w = logits[ii, jj]
    keep = w >= model.group_floor
    labels = SparseAverageLinkage(threshold=model.group_threshold, floor=model.group_floor).fit(
        n, np.stack([ii[keep], jj[keep]], axis=1), w[keep], lambda a, b: logits[np.ix_(a, b)]).labels_
    return dict(enumerate(labels.tolist()))


def calibrate_store(store: Store, gold: dict[str, str], fitted_on: str = "") -> tuple[StoryModel, int]:
    """Fit the same-story model on a store's labelled articles (``gold``: id → label; the caller holds the write
    lock, saves the model and regroups). Returns the model and how many stored articles were labelled."""
    from .regroup import store_scorer

    data = store.db.all_for_grouping(store.config.model_id)
    ids = {r: i for r, i, _, _ in store.db.facts()}
    labels = [gold.get(ids[int(r)]) for r in data.rowids]
    scorer, _ = store_scorer(store, data)
    return fit_story_model(scorer, labels, fitted_on or "user labels"), sum(x is not None for x in labels)


def calibration_report(model: StoryModel, labelled: int, path: Path) -> dict:
    """What ``calibrate`` prints: where the model was saved, how many articles were labelled, the grouping
    threshold and floor, and each regime's weights."""
    return {"model": str(path), "labelled": labelled,
            "group_threshold": model.group_threshold, "group_floor": model.group_floor,
            "regimes_fitted": model.metrics.get("regimes_fitted", []),
            "regimes": {name: {"coef": dict(zip(model.features, r.coef, strict=True)), "intercept": r.intercept}
                        for name, r in model.regimes.items()},
            "in_sample": model.metrics.get("bcubed_in_sample")}
