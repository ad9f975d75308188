"""The same-story model: pair evidence → log-odds that two articles report the same story.

Three regimes:

* **lexical + semantic** when both articles are in the same language and both have at least
  ``min_tokens`` words: a logistic regression over lead cosine, headline cosine, the headline-aware
  semantic similarity, the TF-IDF cosine of the normalized texts, the TF-IDF cosine over rare terms
  only (those in at most ``rare_df`` of the archive's texts: names, places, numbers; on ECB+ this
  feature alone took held-out B-cubed F1 from 0.885 to 0.913), and the numbers both texts write
  (overlap shared / (union + 1) of their year sets and of their other numbers, and whether both write
  some but share none: another event of the same kind has other ages, tolls, amounts and dates; with the
  short regime below, held-out B-cubed F1 0.891 → 0.930 over 20 topic halves).
  Fitted on labelled pairs (ECB+ for the shipped model, see ``bench/calibrate.py``).
* **short lexical + semantic** for same-language pairs where the shorter text has ``short_min_tokens``
  to ``min_tokens`` words (a wire brief, a lead paragraph): the same features with their own fitted
  weights (``short_coef``; overlap counts for less in a few sentences). Without them, the semantic line.
* **semantic only** across languages (lexical overlap means little there) and for headline-length
  items (too few words for overlap to say anything): the line through (``semantic_center``,
  ``group_threshold``) and (``semantic_floor``, ``group_floor``). Average linkage over these log-odds is
  then average linkage over semantic similarity with exactly those two cut-offs, which were measured on
  ECB+ and the seed page (bench/title_weight.py).

Groups use average linkage over these log-odds (``group_threshold``) with a complete-link floor
(``group_floor``). The parameters live in a small JSON file with the data set and date they came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

MODEL_FILE = "story_model.json"
MODEL_VERSION = 2
FEATURES = ("lead_cosine", "title_cosine", "semantic", "tfidf_cosine", "rare_terms_cosine", "years_jaccard",
            "years_conflict", "numbers_jaccard", "numbers_conflict")
V1_FEATURES = FEATURES[:5]  # a version-1 model (no number evidence, no short regime) loads with zero weights
DUPLICATE_LOGIT = 12.0  # lexical duplicates: far above any threshold


@dataclass(slots=True)
class StoryModel:
    coef: list[float]
    intercept: float
    group_threshold: float = -1.0
    group_floor: float = -4.0
    min_tokens: int = 40
    rare_df: float = 0.02
    semantic_center: float = 0.55
    semantic_floor: float = 0.42
    short_coef: list[float] = field(default_factory=list)  # empty: short pairs use the semantic line
    short_intercept: float = 0.0
    short_min_tokens: int = 10
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    fitted_on: str = ""
    fitted_at: str = ""
    metrics: dict = field(default_factory=dict)
    version: int = MODEL_VERSION

    def logits(self, lead, title, semantic, tfidf, rare, min_tokens, cross_lingual, years_jaccard=0.0,
               years_conflict=0.0, numbers_jaccard=0.0, numbers_conflict=0.0) -> np.ndarray:
        """Vectorized log-odds of same story (arrays of equal shape, or scalars)."""
        x = [np.asarray(v, dtype=np.float64) for v in (lead, title, semantic, tfidf, rare, years_jaccard,
                                                        years_conflict, numbers_jaccard, numbers_conflict)]
        semantic = x[2]
        same_lang = ~np.asarray(cross_lingual, dtype=bool)
        tokens = np.asarray(min_tokens)
        lexical = same_lang & (tokens >= self.min_tokens)
        fitted = sum(c * v for c, v in zip(self.coef, x, strict=True)) + self.intercept
        anchored = self.semantic_slope * (semantic - self.semantic_center) + self.group_threshold
        if not self.short_coef:
            return np.where(lexical, fitted, anchored)
        short = same_lang & (tokens >= self.short_min_tokens) & ~lexical
        short_fitted = sum(c * v for c, v in zip(self.short_coef, x, strict=True)) + self.short_intercept
        return np.where(lexical, fitted, np.where(short, short_fitted, anchored))

    def regime(self, min_tokens: int, cross_lingual: bool) -> str:
        """Which of the three regimes scores a pair (shown by ``compare``)."""
        if cross_lingual or min_tokens < (self.short_min_tokens if self.short_coef else self.min_tokens):
            return "semantic only"
        return "lexical + semantic" if min_tokens >= self.min_tokens else "short lexical + semantic"

    @property
    def semantic_slope(self) -> float:
        return (self.group_threshold - self.group_floor) / (self.semantic_center - self.semantic_floor)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "story model") -> StoryModel:
        data = json.loads(text)
        if data.get("version") == 1 and data.get("features") == list(V1_FEATURES):
            # fitted before number evidence: the same model, with zero weight on the new features
            data = {**data, "version": MODEL_VERSION, "features": list(FEATURES),
                    "coef": [*data.get("coef", []), *[0.0] * (len(FEATURES) - len(V1_FEATURES))]}
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"{where}: model version {data.get('version')}, expected {MODEL_VERSION}; "
                             "refit it with 'storycluster calibrate'")
        if data.get("features") != list(FEATURES) or len(data.get("coef", [])) != len(FEATURES) or (
                data.get("short_coef") and len(data["short_coef"]) != len(FEATURES)):
            raise ValueError(f"{where}: expected coefficients for {list(FEATURES)}")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def shipped(cls) -> StoryModel:
        """The model fitted on ECB+ that ships inside the package."""
        text = resources.files("storycluster.cluster").joinpath(MODEL_FILE).read_text(encoding="utf-8")
        return cls.from_json(text, f"storycluster/cluster/{MODEL_FILE}")

    @classmethod
    def load(cls, path: Path) -> StoryModel:
        return cls.from_json(path.read_text(encoding="utf-8"), str(path))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
