"""The same-story model: pair evidence → log-odds that two articles report the same story.

``sigmoid`` of the log-odds is the pair's ``similarity``: the probability that the two articles report the same
story, fitted with equal weight on same-story and different-story pairs (so 0.5 means the evidence favours
neither). A pair verdict says ``same_story`` from 0.5 up (:func:`.scoring.tiers`).

One logistic regression per regime, each over the same nine features (cosines, TF-IDF, numbers):

* ``full``: both articles in one language with at least ``min_tokens`` words each;
* ``short``: one language, the shorter text ``short_min_tokens`` to ``min_tokens`` words (a brief, a lead);
* ``cross``: two languages, both texts at least ``min_tokens`` words (translations and reports of one event in
  other languages: word overlap is names and numbers there);
* ``headline``: the shorter text under ``short_min_tokens`` words (a headline-only item), or under ``min_tokens``
  across two languages (a headline or a brief against a report in another language);
* ``lexical only``: either article is in a language the embedding model does not read (see
  :func:`storycluster.embed.model_languages`): no semantic verdict, the pair is a lexical duplicate or nothing.

Groups use average linkage over these log-odds (``group_threshold``) with a complete-link floor
(``group_floor``). The parameters live in a small JSON file with the data sets and date they came from
(``bench/calibrate.py`` fits the shipped one).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

MODEL_FILE = "story_model.json"
MODEL_VERSION = 3
FEATURES = ("lead_cosine", "title_cosine", "semantic", "tfidf_cosine", "rare_terms_cosine", "years_jaccard",
            "years_conflict", "numbers_jaccard", "numbers_conflict")
V1_FEATURES = FEATURES[:5]  # a version-1 model (no number evidence, no short regime) loads with zero weights
REGIMES = ("full", "short", "cross", "headline")
LEXICAL_ONLY = "lexical only"
REGIME_NAMES = {"full": "same language, full texts", "short": "same language, short text",
                "cross": "across languages", "headline": "headline-only item",
                LEXICAL_ONLY: "lexical only: a language the embedding model does not read"}
DUPLICATE_LOGIT = 12.0  # lexical duplicates: far above any threshold


@dataclass(slots=True)
class Regime:
    """One logistic regression over :data:`FEATURES`."""

    coef: list[float]
    intercept: float

    def logits(self, x: list[np.ndarray]) -> np.ndarray:
        return np.asarray(sum(c * v for c, v in zip(self.coef, x, strict=True)) + self.intercept)


@dataclass(slots=True)
class StoryModel:
    regimes: dict[str, Regime]
    group_threshold: float = -1.0
    group_floor: float = -4.0
    min_tokens: int = 40
    short_min_tokens: int = 10
    rare_df: float = 0.02
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    fitted_on: str = ""
    fitted_at: str = ""
    metrics: dict = field(default_factory=dict)
    version: int = MODEL_VERSION
    #: regime → slope of the reported probability, ``similarity = sigmoid(slope · log-odds)`` (1 where not
    #: named). The verdict (log-odds ≥ 0) and the grouping read the log-odds themselves; a slope only says how
    #: sure the regime is. The headline regime learnt its scale from translated headlines, far surer than two
    #: outlets' headlines of one story turn out to be (bench/calibrate.py fits its slope on real headlines).
    similarity_slopes: dict[str, float] = field(default_factory=dict)

    @property
    def lexical_only_logit(self) -> float:
        """What a pair the model cannot read gets when it is not a lexical duplicate: below the grouping floor."""
        return self.group_floor - 1.0

    def regime_masks(self, min_tokens, cross_lingual, unreadable=None) -> dict[str, np.ndarray]:
        """Which pairs each regime scores (boolean arrays of the broadcast shape; exactly one is true per pair)."""
        tokens = np.asarray(min_tokens)
        cross = np.asarray(cross_lingual, dtype=bool)
        shape = np.broadcast_shapes(tokens.shape, cross.shape, np.shape(unreadable) if unreadable is not None else ())
        unread = np.broadcast_to(np.zeros((), bool) if unreadable is None else np.asarray(unreadable, dtype=bool),
                                 shape)
        headline = ~unread & ((tokens < self.short_min_tokens) | (cross & (tokens < self.min_tokens)))
        rest = ~unread & ~headline
        out = {"full": rest & ~cross & (tokens >= self.min_tokens), "short": rest & ~cross & (tokens < self.min_tokens),
               "cross": rest & cross, "headline": headline, LEXICAL_ONLY: unread}
        return {k: np.broadcast_to(v, shape) for k, v in out.items()}

    def logits(self, lead, title, semantic, tfidf, rare, min_tokens, cross_lingual, years_jaccard=0.0,
               years_conflict=0.0, numbers_jaccard=0.0, numbers_conflict=0.0, unreadable=None) -> np.ndarray:
        """Vectorized log-odds of same story (arrays of equal shape, or scalars)."""
        x = [np.asarray(v, dtype=np.float64) for v in (lead, title, semantic, tfidf, rare, years_jaccard,
                                                        years_conflict, numbers_jaccard, numbers_conflict)]
        masks = self.regime_masks(min_tokens, cross_lingual, unreadable)
        shape = np.broadcast_shapes(*(v.shape for v in x), masks["full"].shape)
        out = np.full(shape, self.lexical_only_logit)
        for name in REGIMES:
            m = np.broadcast_to(masks[name], shape)
            if m.any():
                out = np.where(m, self.regimes[name].logits(x), out)
        return out

    def slopes(self, min_tokens, cross_lingual, unreadable=None) -> np.ndarray:
        """Each pair's :attr:`similarity_slopes` entry (its regime's; 1 where none), broadcast as the arguments."""
        masks = self.regime_masks(min_tokens, cross_lingual, unreadable)
        out = np.ones(masks["full"].shape)
        for name, slope in self.similarity_slopes.items():
            out = np.where(masks[name], slope, out)
        return out

    def regime(self, min_tokens: int, cross_lingual: bool, unreadable: bool = False) -> str:
        """Which regime scores a pair (``compare`` shows it)."""
        masks = self.regime_masks(min_tokens, cross_lingual, unreadable)
        return next(name for name, m in masks.items() if bool(m))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "story model") -> StoryModel:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not JSON ({e}); refit it with 'storycluster calibrate'") from None
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object; refit it with 'storycluster calibrate'")
        if data.get("version") in (1, 2):
            data = _from_v2(data, where)
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"{where}: model version {data.get('version')}, expected {MODEL_VERSION}; "
                             "refit it with 'storycluster calibrate'")
        regimes = data.get("regimes")
        if data.get("features") != list(FEATURES) or not isinstance(regimes, dict) or set(regimes) != set(REGIMES):
            raise ValueError(f"{where}: expected the regimes {list(REGIMES)} over the features {list(FEATURES)}")
        parsed = {}
        for name in REGIMES:
            r = regimes[name]
            if not isinstance(r, dict) or len(r.get("coef") or []) != len(FEATURES):
                raise ValueError(f"{where}: regime '{name}' needs {len(FEATURES)} coefficients and an intercept")
            parsed[name] = Regime([float(c) for c in r["coef"]], float(r.get("intercept", 0.0)))
        slopes = data.get("similarity_slopes") or {}
        if not isinstance(slopes, dict) or not all(
                k in REGIMES and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                for k, v in slopes.items()):
            raise ValueError(f"{where}: similarity_slopes must map regimes of {list(REGIMES)} to positive numbers, "
                             f"not {slopes!r}")
        fields = {k: v for k, v in data.items()
                  if k in cls.__dataclass_fields__ and k not in ("regimes", "similarity_slopes")}
        return cls(regimes=parsed, similarity_slopes={k: float(v) for k, v in slopes.items()}, **fields)

    @classmethod
    def shipped(cls) -> StoryModel:
        """The model that ships inside the package (its ``fitted_on`` names the data sets)."""
        text = resources.files("storycluster.cluster").joinpath(MODEL_FILE).read_text(encoding="utf-8")
        return cls.from_json(text, f"storycluster/cluster/{MODEL_FILE}")

    @classmethod
    def load(cls, path: Path) -> StoryModel:
        return cls.from_json(path.read_text(encoding="utf-8"), str(path))


def _from_v2(data: dict, where: str) -> dict:
    """A model written by an earlier version (a store calibrated then): the same log-odds in version 3's form.
    Its semantic line (through (center, threshold) and (floor, group floor)) becomes the cross-lingual and
    headline regimes, and the short regime where it had none; a version-1 model has zero weight on numbers."""
    coef = list(data.get("coef") or [])
    if data.get("version") == 1 and data.get("features") == list(V1_FEATURES):
        coef += [0.0] * (len(FEATURES) - len(V1_FEATURES))
    elif data.get("features") != list(FEATURES):
        raise ValueError(f"{where}: expected coefficients for {list(FEATURES)}")
    if len(coef) != len(FEATURES):
        raise ValueError(f"{where}: expected {len(FEATURES)} coefficients, found {len(coef)}")
    threshold, floor = float(data.get("group_threshold", -1.0)), float(data.get("group_floor", -4.0))
    center, low = float(data.get("semantic_center", 0.55)), float(data.get("semantic_floor", 0.42))
    slope = (threshold - floor) / (center - low)
    line = {"coef": [0.0, 0.0, slope, *[0.0] * (len(FEATURES) - 3)], "intercept": threshold - slope * center}
    short = ({"coef": data["short_coef"], "intercept": data.get("short_intercept", 0.0)}
             if data.get("short_coef") else line)
    keep = ("group_threshold", "group_floor", "min_tokens", "short_min_tokens", "rare_df", "fitted_on",
            "fitted_at", "metrics")
    return {**{k: data[k] for k in keep if k in data}, "version": MODEL_VERSION, "features": list(FEATURES),
            "regimes": {"full": {"coef": coef, "intercept": data.get("intercept", 0.0)}, "short": short,
                        "cross": line, "headline": line}}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
