"""The shapes of what the Python API returns and the CLI and server print as JSON, one type per result.

They are ``TypedDict``s: the values are the plain dicts the README documents (``archive.dedup()["groups"]``) and
that ``json.dumps`` writes as they are, while a type checker (``make typecheck``) holds every producer and reader
to these fields."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Tier = Literal["duplicate", "same_story", "related"]


class Member(TypedDict):
    """One article of a group, representative first. ``score``: its same-story probability against the
    representative (1.0 for the representative); ``via``: ``pair`` when that probability (or a lexical copy)
    says same story on its own, ``group`` when it joined through the group's average link."""

    id: str
    score: float
    tier: Tier
    via: Literal["pair", "group"]
    duplicate_of: str | None
    title: str
    url: str | None
    source: str | None
    published: str | None
    lang: str | None


class Group(TypedDict):
    group: str
    representative: str
    size: int
    members: list[Member]


class Dedup(TypedDict):
    """Every stored article exactly once: in a group of two or more, or as a singleton (ids, sorted)."""

    groups: list[Group]
    singletons: list[str]


class GroupsPage(TypedDict):
    total: int
    offset: int
    groups: list[Group]


class Change(TypedDict):
    """One logged change of the groups (:func:`~storycluster.cluster.groups.group_changes`)."""

    at: str
    generation: int
    change: str
    group: str
    other_groups: list[str]
    articles: list[str]


class AlsoIn(TypedDict):
    id: str
    source: str | None
    url: str | None


class Alternate(TypedDict):
    id: str
    score: float
    tier: Tier
    via: NotRequired[Literal["group"]]


class RelatedEntry(TypedDict):
    """One entry of a related list: a story, shown by its best-scoring member that passes the filters; ``score``
    is the topical similarity that ranks the list, ``tier`` follows the same-story probability (``via: group``:
    same story only as a member of the query's own group)."""

    id: str
    score: float
    tier: Literal["same_story", "related"]
    via: NotRequired[Literal["group"]]
    also_in: list[AlsoIn]
    title: str
    source: str | None
    url: str | None
    published: str | None
    lang: str | None
    group: str | None
    members: NotRequired[list[str]]  # with alternates (the PostgreSQL export)
    alternates: NotRequired[list[Alternate]]


class Related(TypedDict):
    """A related list: ``query`` the stored article's id (None for a text); ``note`` when the query text is judged
    as a headline (:func:`~storycluster.queries.headline_query_note`)."""

    query: str | None
    related: list[RelatedEntry]
    note: NotRequired[str]


class Comparison(TypedDict):
    """Two stored articles: the same-story probability, the tier and the evidence behind them."""

    id1: str
    id2: str
    similarity: float
    tier: Tier
    evidence: dict
    note: NotRequired[str]


class ScoredPair(TypedDict):
    """A pair of ``score-pairs``: a comparison, or ``similarity`` None and an ``error`` for an unknown id."""

    id1: str
    id2: str
    similarity: float | None
    tier: Tier | None
    human: float | None
    evidence: NotRequired[dict]
    note: NotRequired[str]
    error: NotRequired[str]


class IndexStats(TypedDict):
    setting: str
    type: str
    metric: str
    vectors: int
    tombstones: int
    rebuilt: str | None


class RelatedListsStats(TypedDict):
    stored: int
    current: bool
    pending: bool  # a full regrouping committed, its lists being built (or the build stopped: the next write)
    max_articles: int


class Stats(TypedDict):
    store: str
    format_version: int
    articles: int
    groups: int
    articles_in_groups: int
    singletons: int
    sources: int
    languages: dict[str, int]
    model: str
    dim: int
    model_languages: list[str] | None
    not_read: dict[str, int]
    index: IndexStats
    cached_embeddings: int
    #: stored related lists: how many, whether they belong to the current groups, the store's limit
    related_lists: RelatedListsStats
    thresholds: dict[str, float]
    bytes_on_disk: int
    files: dict[str, int]
