"""The same-story model: pair evidence → log-odds that two articles report the same story.

Two regimes:

* **lexical + semantic** when both articles are in the same language and both have at least
  ``min_tokens`` words: a logistic regression over lead cosine, headline cosine, the headline-aware
  semantic similarity, the TF-IDF cosine of the normalized texts, and the TF-IDF cosine over rare terms
  only (those in at most ``rare_df`` of the archive's texts: names, places, numbers; on ECB+ this
  feature alone took held-out B-cubed F1 from 0.885 to 0.913). Fitted on labelled pairs (ECB+ for the
  shipped model, see ``bench/calibrate.py``).
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
MODEL_VERSION = 1
FEATURES = ("lead_cosine", "title_cosine", "semantic", "tfidf_cosine", "rare_terms_cosine")
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
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    fitted_on: str = ""
    fitted_at: str = ""
    metrics: dict = field(default_factory=dict)
    version: int = MODEL_VERSION

    def logits(self, lead, title, semantic, tfidf, rare, min_tokens, cross_lingual) -> np.ndarray:
        """Vectorized log-odds of same story (arrays of equal shape)."""
        x = [np.asarray(v, dtype=np.float64) for v in (lead, title, semantic, tfidf, rare)]
        semantic = x[2]
        lexical = (~np.asarray(cross_lingual, dtype=bool)) & (np.asarray(min_tokens) >= self.min_tokens)
        fitted = sum(c * v for c, v in zip(self.coef, x, strict=True)) + self.intercept
        anchored = self.semantic_slope * (semantic - self.semantic_center) + self.group_threshold
        return np.where(lexical, fitted, anchored)

    @property
    def semantic_slope(self) -> float:
        return (self.group_threshold - self.group_floor) / (self.semantic_center - self.semantic_floor)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "story model") -> StoryModel:
        data = json.loads(text)
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"{where}: model version {data.get('version')}, expected {MODEL_VERSION}; "
                             "refit it with 'storycluster calibrate'")
        if data.get("features") != list(FEATURES) or len(data.get("coef", [])) != len(FEATURES):
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
