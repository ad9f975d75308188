"""What a website operator asks of a related list beyond relevance: date windows, past-only, exclusion
lists, a language, at most N items per source, and diversity (maximal marginal relevance).

The filters apply to every candidate before copies collapse, so when a group's best member is filtered
out another member of the group can stand for it, and ``also_in`` lists only members that pass too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .language import FILTER_HINT, base_code, in_language, lang_option

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RelatedOptions:
    """Filters and list shaping for :meth:`storycluster.Archive.related`.

    since: only articles published at or after this time (an ISO date, or a datetime).
    max_age_days: only articles published within this many days before ``now``.
    past_only: never recommend an article published after the query article (when its date is known).
    lang: only articles in this language (a language code, e.g. ``ar`` or ``ara``; ``en`` also takes ``en-us``).
    exclude_ids, exclude_sources: never show these articles / these outlets.
    per_source: at most this many entries from one source.
    diversity: 0 ranks by relevance alone; up to 1 trades relevance for entries unlike those above them
        (maximal marginal relevance over the articles' embeddings).
    now: the reference time of ``max_age_days`` (default: the current time).

    With a date filter set, an article without a known date is left out: it cannot be shown to be fresh.
    """

    since: datetime | str | None = None
    max_age_days: float | None = None
    past_only: bool = False
    lang: str | None = None
    exclude_ids: frozenset[str] = field(default_factory=frozenset)
    exclude_sources: frozenset[str] = field(default_factory=frozenset)
    per_source: int | None = None
    diversity: float = 0.0
    now: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None and self.max_age_days < 0:
            raise ValueError(f"max_age_days must be 0 or more, not {self.max_age_days}")
        if self.per_source is not None and self.per_source < 1:
            raise ValueError(f"per_source must be at least 1, not {self.per_source}")
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"diversity must lie in [0, 1], not {self.diversity}")
        if self.lang is not None:
            object.__setattr__(self, "lang", base_code(lang_option(self.lang, FILTER_HINT)))
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        object.__setattr__(self, "exclude_sources", frozenset(self.exclude_sources))

    @property
    def shapes_list(self) -> bool:
        """Whether the list needs more candidates than k to choose from."""
        return self.per_source is not None or self.diversity > 0

    @property
    def filters(self) -> bool:
        """Whether some candidates may be left out (any filter set)."""
        return bool(self.since is not None or self.max_age_days is not None or self.past_only or self.lang is not None
                    or self.exclude_ids or self.exclude_sources)

    def earliest(self) -> float | None:
        """The earliest publication timestamp allowed by ``since`` and ``max_age_days``."""
        bounds = []
        if self.since is not None:
            since = self.since if isinstance(self.since, datetime) else _parse_time(self.since)
            bounds.append(_timestamp(since))
        if self.max_age_days is not None:
            now = self.now or datetime.now(UTC)
            bounds.append(_timestamp(now) - self.max_age_days * DAY)
        return max(bounds) if bounds else None

    def allows(self, article_id: str, source: str | None, lang: str | None, published_ts: float | None,
               query_ts: float | None, earliest: float | None) -> bool:
        """Whether one candidate passes the filters (``earliest`` from :meth:`earliest`, computed once)."""
        if article_id in self.exclude_ids or (source is not None and source in self.exclude_sources):
            return False
        if self.lang is not None and not in_language(lang, self.lang):
            return False
        if earliest is not None and (published_ts is None or published_ts < earliest):
            return False
        return not (self.past_only and query_ts is not None and (published_ts is None or published_ts > query_ts))


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since: {text!r} is not an ISO date or time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)") from None


def _timestamp(t: datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def select(scores: Sequence[float], sources: Sequence[str | None], vectors: np.ndarray | None, k: int,
           per_source: int | None = None, diversity: float = 0.0) -> list[int]:
    """Positions of the entries to show, in order: greedy maximal marginal relevance
    ``(1 - diversity) * score - diversity * max similarity to an entry already chosen``, skipping entries
    whose source already has ``per_source`` entries. ``vectors`` (unit rows) are needed when diversity > 0."""
    n = len(scores)
    relevance = np.asarray(scores, dtype=np.float64)
    sims = vectors @ vectors.T if diversity > 0 and vectors is not None and n else None
    redundancy = np.zeros(n)
    used: dict[str | None, int] = {}
    chosen: list[int] = []
    open_ = list(range(n))
    while open_ and len(chosen) < k:
        gain = (1.0 - diversity) * relevance[open_] - diversity * redundancy[open_]
        order = np.argsort(-gain, kind="stable")
        pick = None
        for o in order:
            cand = open_[int(o)]
            src = sources[cand]
            if per_source is not None and src is not None and used.get(src, 0) >= per_source:
                continue
            pick = cand
            break
        if pick is None:
            break
        chosen.append(pick)
        used[sources[pick]] = used.get(sources[pick], 0) + 1
        open_.remove(pick)
        if sims is not None:
            redundancy = np.maximum(redundancy, sims[pick])
    return chosen


def parse_list(values: Iterable[str] | str | None) -> frozenset[str]:
    """``a,b`` or ``["a", "b"]`` or repeated query parameters → a set of non-empty names."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [values]
    return frozenset(v.strip() for value in values for v in value.split(",") if v.strip())
