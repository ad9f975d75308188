"""Bench helper: a PairScorer that groups on semantic similarity alone (no lexical regime), with given
cut-offs, for the measurements that chose the representation and the semantic thresholds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.sparse import csr_matrix

from storycluster.cluster import StoryModel, Thresholds
from storycluster.cluster.graph import PairScorer
from storycluster.cluster.model import FEATURES, REGIMES, Regime
from storycluster.lexical import N_FEATURES


def semantic_scorer(lead: np.ndarray, title: np.ndarray, sigs: np.ndarray, hashes: list[str], center: float,
                    floor: float, title_weight: float = 0.25) -> PairScorer:
    n = len(lead)
    base = StoryModel.shipped()
    # every regime the line through (center, grouping threshold) and (floor, grouping floor) in semantic similarity
    slope = (base.group_threshold - base.group_floor) / (center - floor)
    line = Regime([0.0, 0.0, slope, *[0.0] * (len(FEATURES) - 3)], base.group_threshold - slope * center)
    model = replace(base, regimes={name: line for name in REGIMES})
    return PairScorer(lead, title, sigs, hashes, csr_matrix((n, N_FEATURES)), csr_matrix((n, N_FEATURES)),
                      np.zeros(n, dtype=np.int64),
                      [None] * n, Thresholds(title_weight=title_weight), model)
