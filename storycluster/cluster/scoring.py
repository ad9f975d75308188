"""Pair evidence → similarity in [0, 1] and a tier.

Tiers, strongest first:

* ``duplicate``: the same text reprinted or lightly edited — equal normalized content, or estimated
  shingle Jaccard at or above ``duplicate_jaccard`` (lexical evidence).
* ``same_story``: the same event or interview rewritten or translated — the same-story model's probability
  (the pair's ``similarity``, :mod:`storycluster.cluster.model`) at least 0.5.
* ``related``: same subject, different story — topical similarity at or above ``related``: the
  semantic similarity below, or the TF-IDF cosine for a language the embedding model does not read.
* ``unrelated``: below that.

Semantic similarity uses two embeddings per article, the lead (title and first ``embed_max_chars``
characters) and the headline: ``max((1 - w) * cos_lead + w * cos_title, cos_title)``. The headline view
lets a headline-only item meet the full article it announces; the max lets two equal headlines count
even when the bodies differ in length (bench/representation.py, bench/title_weight.py).

The similarity reported for a pair is the model's probability of same story (1 for equal content, at
least the Jaccard for a lexical duplicate). Grouping has its own rule (average linkage over the log-odds,
``StoryModel.group_threshold``), so a group member can sit under 0.5 against its representative: outputs
say so (``via: "group"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .model import DUPLICATE_LOGIT, StoryModel, sigmoid

TIERS = ("duplicate", "same_story", "related", "unrelated")
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds outside the same-story model; measured on ECB+ and the seed archive (bench/)."""

    duplicate_jaccard: float = 0.5
    related: float = 0.35
    #: Weight of the headline embedding in the semantic similarity.
    title_weight: float = 0.25
    #: Two dated articles more than this many days apart are not the same story (lexical duplicates
    #: excepted: a text reprinted months later is still a copy); ``related`` has no window.
    window_days: float = 7.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Thresholds:
        """From a store's config; keys this version does not know (an older store's) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def semantic_similarity(lead_cos, title_cos, title_weight: float):
    """Headline-aware semantic similarity (scalars or arrays)."""
    return np.maximum((1.0 - title_weight) * lead_cos + title_weight * title_cos, title_cos)


@dataclass(frozen=True, slots=True)
class PairEvidence:
    """What is known about a pair of articles."""

    lead_cosine: float
    title_cosine: float
    jaccard: float
    tfidf_cosine: float = 0.0
    rare_cosine: float = 0.0
    years_jaccard: float = 0.0
    years_conflict: bool = False
    numbers_jaccard: float = 0.0
    numbers_conflict: bool = False
    shared_numbers: tuple[str, ...] = ()
    min_tokens: int = 0
    cross_lingual: bool = False
    same_content: bool = False
    date_gap_days: float | None = None
    unreadable: bool = False  # either article is in a language the embedding model does not read

    def semantic(self, t: Thresholds) -> float:
        return float(semantic_similarity(self.lead_cosine, self.title_cosine, t.title_weight))

    def logit(self, t: Thresholds, m: StoryModel) -> float:
        gap = np.nan if self.date_gap_days is None else self.date_gap_days
        return float(pair_logits(self.lead_cosine, self.title_cosine, self.tfidf_cosine, self.rare_cosine,
                                 self.min_tokens, self.cross_lingual, self.jaccard, self.same_content, t, m, gap,
                                 years_jaccard=self.years_jaccard, years_conflict=self.years_conflict,
                                 numbers_jaccard=self.numbers_jaccard, numbers_conflict=self.numbers_conflict,
                                 unreadable=self.unreadable))

    def similarity(self, t: Thresholds, m: StoryModel) -> float:
        return float(similarity_from(self.logit(t, m), self.jaccard, self.same_content, t,
                                     m.slopes(self.min_tokens, self.cross_lingual, self.unreadable),
                                     np.nan if self.date_gap_days is None else self.date_gap_days))

    def tier(self, t: Thresholds, m: StoryModel) -> str:
        topic = topical(self.semantic(t), self.tfidf_cosine, self.unreadable)
        return str(tiers(self.logit(t, m), topic, self.jaccard, self.same_content, t, m))

    def to_dict(self, t: Thresholds, m: StoryModel) -> dict:
        return {"lead_cosine": round(self.lead_cosine, 4), "title_cosine": round(self.title_cosine, 4),
                "semantic": round(self.semantic(t), 4), "tfidf_cosine": round(self.tfidf_cosine, 4),
                "rare_terms_cosine": round(self.rare_cosine, 4),
                "years_jaccard": round(self.years_jaccard, 4), "years_conflict": self.years_conflict,
                "numbers_jaccard": round(self.numbers_jaccard, 4), "numbers_conflict": self.numbers_conflict,
                "shared_numbers": list(self.shared_numbers),
                "jaccard": round(self.jaccard, 4), "min_tokens": self.min_tokens,
                "cross_lingual": self.cross_lingual, "unreadable": self.unreadable,
                "same_content": self.same_content,
                "date_gap_days": None if self.date_gap_days is None else round(self.date_gap_days, 2),
                "log_odds": round(self.logit(t, m), 3),
                "regime": m.regime(self.min_tokens, self.cross_lingual, self.unreadable)}


def pair_logits(lead, title, tfidf, rare, min_tokens, cross_lingual, jaccard, same_content, t: Thresholds,
                m: StoryModel, date_gap=None, *, years_jaccard, years_conflict, numbers_jaccard, numbers_conflict,
                unreadable=None):
    """Vectorized same-story log-odds; lexical duplicates get a log-odds far above any threshold; ``unreadable``
    pairs (a language the embedding model does not read) get no other verdict (:class:`StoryModel`). Pairs
    dated more than ``t.window_days`` apart (``date_gap`` in days, NaN when a date is unknown) fall below
    the grouping floor, so they are never one story. The number evidence: see :func:`number_overlap`."""
    sem = semantic_similarity(np.asarray(lead), np.asarray(title), t.title_weight)
    z = m.logits(lead, title, sem, tfidf, rare, min_tokens, cross_lingual, years_jaccard, years_conflict,
                 numbers_jaccard, numbers_conflict, unreadable)
    if date_gap is not None:
        z = np.where(dated_apart(date_gap, t), np.minimum(z, m.group_floor - 1.0), z)
    dup = np.asarray(same_content, dtype=bool) | (np.asarray(jaccard) >= t.duplicate_jaccard)
    return np.where(dup, np.maximum(z, DUPLICATE_LOGIT), z)


def dated_apart(date_gap, t: Thresholds) -> np.ndarray:
    """Pairs dated more than ``t.window_days`` apart (``date_gap`` in days; NaN, a date unknown, is not)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(date_gap, dtype=np.float64) > t.window_days


def number_overlap(shared, count_a, count_b) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed Jaccard, conflict) of two number sets from their sizes and how many they share. The Jaccard
    is shared / (union + 1), so one shared number ("15" and nothing else) is weaker evidence than five of
    five (docs/quality.md); conflict: both write numbers of the kind and share none."""
    shared = np.asarray(shared, dtype=np.float64)
    union = np.asarray(count_a, dtype=np.float64) + np.asarray(count_b, dtype=np.float64) - shared
    jac = shared / (union + 1.0)
    conflict = (np.asarray(count_a) > 0) & (np.asarray(count_b) > 0) & (shared == 0)
    return jac, conflict.astype(np.float64)


def similarity_from(logit, jaccard, same_content, t: Thresholds, slope=1.0, date_gap=None):
    """Reported similarity: the same-story probability, ``sigmoid(slope · log-odds)`` (``slope``: the pair's
    regime's, :meth:`StoryModel.slopes`; it leaves the sign, so the verdict, as it is), at least the Jaccard of a
    duplicate, 1 for equal content. A lexical duplicate's log-odds come from the duplicate rule, and those of a
    pair dated apart (``date_gap`` as for :func:`pair_logits`) from the window rule, not from the regime's
    evidence, so no slope applies to them."""
    jaccard = np.asarray(jaccard)
    dup = jaccard >= t.duplicate_jaccard
    ruled = dup if date_gap is None else dup | dated_apart(date_gap, t)
    p = sigmoid(np.where(ruled, 1.0, np.asarray(slope)) * logit)
    p = np.where(dup, np.maximum(p, jaccard), p)
    return np.where(np.asarray(same_content, dtype=bool), 1.0, p)


def topical(semantic, tfidf, unreadable):
    """The similarity the ``related`` tier and ranking read: semantic, or the TF-IDF cosine of the texts where
    the embedding model does not read the language (its vectors say nothing there)."""
    if unreadable is None:
        return semantic
    return np.where(np.asarray(unreadable, dtype=bool), tfidf, semantic)


def tiers(logit, topic, jaccard, same_content, t: Thresholds, m: StoryModel | None = None):
    """Vectorized tier names: ``same_story`` where the same-story probability is at least 0.5 (log-odds ≥ 0);
    ``topic``: see :func:`topical`."""
    return np.select([np.asarray(same_content, dtype=bool) | (np.asarray(jaccard) >= t.duplicate_jaccard),
                      np.asarray(logit) >= 0.0, np.asarray(topic) >= t.related],
                     ["duplicate", "same_story", "related"], "unrelated")
