"""A related list's plan: the stories that rank first for a query article, each with its scored members, before
list shaping (and, for a stored list, before any filter).

One query (``related`` on demand) and many at once (the stored lists, :mod:`.stored`) go through :func:`plans`.
Every pair is scored by the same element-wise arithmetic whichever batch it is in, and candidates are searched
until nothing further down can enter, so a plan does not depend on how deep it was asked or with which other
queries it was computed: a stored list equals the one computed on demand.

Ranking: the stories (a group, or a lone article) ordered by the rounded topical score of their best member, ties
by that member's id; a member joins its story's rows when its score reaches the related threshold (any member of
the query's own group does, as ``same_story``)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ..cluster.scoring import pair_logits, semantic_similarity, tiers, topical
from ..lexical import n_tokens, tfidf_cosines, tfidf_matrix
from ..store.database import StoredArticle
from ..store.store import Store

if TYPE_CHECKING:
    from ..cluster.graph import PairScorer

K = TypeVar("K")

#: decimals of the scores a list shows, and ranks on
ROUND = 4
#: searches go this far below a list's last shown score: past half a rounding step (a candidate left unfound
#: then scores below every shown one even where its cosine from the index and from scoring differ in the last bits)
MARGIN = 6e-5


@dataclass(slots=True)
class Query:
    """What scoring needs of an article that may not be stored."""

    vector: np.ndarray  # index vector (lead and headline halves)
    signature: np.ndarray
    terms: np.ndarray
    content_hash: str
    lang: str | None
    published: float | None = None
    numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


@dataclass(slots=True)
class Owner:
    """A query and where it stands in the store: its own row (never a candidate; -1 for a text), its group and
    that group's members."""

    query: Query
    exclude: int = -1
    group: str | None = None
    own: list[int] = field(default_factory=list)

    @classmethod
    def stored(cls, a: StoredArticle, vector: np.ndarray, group: str | None, own: list[int]) -> Owner:
        q = Query(vector, np.frombuffer(a.signature, np.uint32), np.frombuffer(a.terms, np.uint32), a.content_hash,
                  a.lang, a.published_ts, a.number_codes())
        return cls(q, a.rowid, group, own)


#: (row id, topical score, tier, same story only through the query's own group)
Row = tuple[int, float, str, bool]


@dataclass(slots=True)
class Entry:
    """One story of a plan: a group (``key`` its id) or a lone article (``key`` NUL + row id); ``rows`` its
    scored members, best first (score, then id)."""

    key: str
    rows: list[Row]

    @property
    def group(self) -> str | None:
        return None if self.key.startswith("\x00") else self.key

    @property
    def score(self) -> float:
        return self.rows[0][1]


@dataclass(slots=True)
class Plan:
    """The first ``depth`` stories. ``floor``: the rounded score of the last one when more stories may score at
    or below it (None: every story at or above the related threshold is here). ``filtered``: computed with the
    answer's filters (its rows are only those that pass)."""

    entries: list[Entry]
    floor: float | None
    filtered: bool = False


def missing(rows: Iterable[K], have: Mapping[K, object]) -> set[K]:
    """The rows not in ``have`` yet (``set - dict.keys()`` walks every key of the dict: a block's hundred
    thousand articles for each list's thirty rows)."""
    return {r for r in rows if r not in have}


def headline_query(vector: np.ndarray, title_weight: float) -> np.ndarray:
    """The index query that ranks by headline cosine alone (the headline half, unweighted)."""
    d = len(vector) // 2
    out = np.zeros_like(vector)
    out[d:] = vector[d:] / np.float32(title_weight)
    return out


def search_queries(owners: Sequence[Owner], title_weight: float) -> np.ndarray:
    """The two index queries of each owner, one after the other: its index vector and its headline alone."""
    return np.vstack([v for o in owners for v in (o.query.vector, headline_query(o.query.vector, title_weight))])


def first_search(store: Store, owners: Sequence[Owner], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The index search that :func:`plans` starts with, of many owners at once (a many-query IVF search costs
    less per query the more queries share its lists); rows ``2i`` and ``2i + 1`` are owner ``i``'s."""
    index = store.index
    return index.search(search_queries(owners, store.thresholds.title_weight),
                        min(_first_fetch(depth), max(len(index), 1)))


def _first_fetch(depth: int) -> int:
    return 2 * depth + 16


def plans(store: Store, owners: Sequence[Owner], depth: int,
          allowed: Callable[[StoredArticle], bool] | None = None, complete: bool = False,
          arts: dict[int, StoredArticle] | None = None,
          first: tuple[np.ndarray, np.ndarray] | None = None) -> list[Plan]:
    """The plan of each owner: its first ``depth`` stories. ``allowed``: only candidates that pass (a filtered
    answer computed on demand). ``complete``: every member of a planned group is scored, not only those the
    search met (a stored plan, whose alternates stand in when a filter removes a story's best member).
    ``arts``: articles already read (filled with the ones read here). ``first``: these owners' rows of a
    :func:`first_search` made with more owners (a plan does not depend on which queries searched with it)."""
    index, t = store.index, store.thresholds
    arts = {} if arts is None else arts
    gof: dict[int, str] = {}
    grouped: set[int] = set()  # rows whose group was read (into gof when they have one)
    n = len(owners)
    found: list[dict[int, None]] = [{} for _ in range(n)]
    scored: list[dict[int, tuple[float, str]]] = [{} for _ in range(n)]
    refused: list[set[int]] = [set() for _ in range(n)]
    ranked_of: list[list[Entry]] = [[] for _ in range(n)]
    fetch = _first_fetch(depth)
    todo = list(range(n))
    while todo:
        if first is not None:
            (scores, rows), first = first, None
        else:
            scores, rows = index.search(search_queries([owners[i] for i in todo], t.title_weight),
                                        min(fetch, max(len(index), 1)))
        for p, i in enumerate(todo):
            f, o = found[i], owners[i]
            for r in (*rows[2 * p].tolist(), *rows[2 * p + 1].tolist(), *o.own):
                if r >= 0 and r != o.exclude:
                    f[r] = None
        _read(store, {r for i in todo for r in found[i]}, arts, gof, grouped)
        pairs: list[tuple[int, int]] = []
        for i in todo:
            for r in found[i]:
                if r in scored[i] or r in refused[i]:
                    continue
                if allowed is not None and not allowed(arts[r]):
                    refused[i].add(r)
                else:
                    pairs.append((i, r))
        _score_into(store, owners, pairs, arts, scored)
        still = []
        for p, i in enumerate(todo):
            ranked = _rank(owners[i], found[i], scored[i], gof, arts, t.related, depth)
            floor = round(ranked[depth - 1].score, ROUND) if len(ranked) >= depth else t.related
            last = max(float(scores[2 * p, -1]), float(scores[2 * p + 1, -1]))
            if fetch >= len(index) or last < floor - MARGIN:
                ranked_of[i] = ranked
            else:
                still.append(i)
        todo = still
        fetch *= 4
    if complete:
        _complete(store, owners, ranked_of, depth, scored, arts, gof, grouped)
    _settle(store, owners, [r[:depth] for r in ranked_of], scored, arts)
    # fewer stories than asked: the search went below the related threshold, none is missing
    return [Plan(ranked[:depth], round(ranked[depth - 1].score, ROUND) if len(ranked) >= depth else None,
                 allowed is not None) for ranked in ranked_of]


def _read(store: Store, rows: set[int], arts: dict[int, StoredArticle], gof: dict[int, str],
          grouped: set[int]) -> None:
    """Read the articles and groups of ``rows`` not read yet."""
    if need := missing(rows, arts):
        arts.update(store.db.articles_by_rowid(sorted(need)))
    if need := rows - grouped:
        gof.update(store.db.groups_of(sorted(need)))
        grouped.update(need)


def _rank(owner: Owner, found: dict[int, None], scored: dict[int, tuple[float, str]], gof: dict[int, str],
          arts: dict[int, StoredArticle], related: float, depth: int) -> list[Entry]:
    """The owner's first ``depth`` stories from its scored candidates, in list order (only those stories'
    members are sorted, and their ids read: a block ranks a hundred thousand candidates). Their rows are
    ``(row, score, tier, member of the query's group)`` until :func:`_settle` makes them plan rows."""
    mine = owner.group
    stories: dict[str, list[tuple[int, float, str, bool]]] = {}
    for r in found:
        got = scored.get(r)
        if got is None:
            continue
        gid = gof.get(r)
        own = mine is not None and gid == mine
        if got[0] >= related or own:  # a member of a story: at the related threshold, or of the query's group
            stories.setdefault(gid or f"\x00{r}", []).append((r, got[0], got[1], own))

    def order(x: tuple[int, float, str, bool]) -> tuple[float, str]:
        return -x[1], arts[x[0]].id

    heads = []  # (minus the best member's rounded score, that member, story)
    for key, members in stories.items():
        if len(members) == 1:
            best = members[0]
        else:
            top = max(m[1] for m in members)
            best = min((m for m in members if m[1] == top), key=order)
        heads.append((-round(best[1], ROUND), best[0], key))
    if len(heads) > depth:  # the stories that can be among the first depth: at or above the depth-th score
        cut = heapq.nsmallest(depth, (h[0] for h in heads))[-1]
        heads = [h for h in heads if h[0] <= cut]
    heads.sort(key=lambda h: (h[0], arts[h[1]].id))
    entries = []
    for *_, key in heads[:depth]:
        members = stories[key]
        if len(members) > 1:
            members.sort(key=order)
        entries.append(Entry(key, members))
    return entries


def _member(r: int, got: tuple[float, str], in_own: bool, related: float) -> Row | None:
    """A scored candidate as a row of its story, when it qualifies: at the related threshold, or a member of the
    query's own group."""
    sim, tier = got
    return _row(r, sim, tier, in_own) if sim >= related or in_own else None


def _row(r: int, sim: float, tier: str, in_own: bool) -> Row:
    """A candidate as a plan row: same story by its own evidence (a copy, or a probability of at least 0.5), or
    only as a member of the query's own group (``via`` group), else related."""
    own_evidence = tier in ("duplicate", "same_story")
    return r, sim, "same_story" if own_evidence or in_own else "related", in_own and not own_evidence


def _settle(store: Store, owners: Sequence[Owner], planned: list[list[Entry]],
            scored: list[dict[int, tuple[float, str]]], arts: dict[int, StoredArticle]) -> None:
    """Exact tiers for the planned rows whose tier turns on their TF-IDF cosines (left open while ranking,
    which does not read them)."""
    pairs = [(i, r) for i, entries in enumerate(planned) for e in entries for r, *_ in e.rows if not scored[i][r][1]]
    _score_into(store, owners, pairs, arts, scored, exact=True)
    for i, entries in enumerate(planned):
        o = owners[i]
        for e in entries:
            e.rows = [_row(r, sim, scored[i][r][1], o.group is not None and e.key == o.group) for r, sim, *_ in e.rows]


def _complete(store: Store, owners: Sequence[Owner], ranked_of: list[list[Entry]], depth: int,
              scored: list[dict[int, tuple[float, str]]], arts: dict[int, StoredArticle],
              gof: dict[int, str], grouped: set[int]) -> None:
    """Score the members of each planned group that the search did not meet, and add those that qualify."""
    gids = {e.group for ranked in ranked_of for e in ranked[:depth] if e.group is not None}
    members = store.db.members_of(gids)
    _read(store, {r for g in gids for r in members.get(g, [])}, arts, gof, grouped)
    pairs = [(i, r) for i, ranked in enumerate(ranked_of) for e in ranked[:depth] if e.group is not None
             for r in members.get(e.group, []) if r != owners[i].exclude and r not in scored[i]]
    if not pairs:
        return
    _score_into(store, owners, pairs, arts, scored)
    t = store.thresholds
    for i, ranked in enumerate(ranked_of):
        o = owners[i]
        for e in ranked[:depth]:
            if e.group is None:
                continue
            have = {r for r, *_ in e.rows}
            for r in members.get(e.group, []):
                if r != o.exclude and r not in have and (row := _member(r, scored[i][r], e.group == o.group,
                                                                        t.related)) is not None:
                    e.rows.append(row)
            e.rows.sort(key=lambda x: (-x[1], arts[x[0]].id))


def _score_into(store: Store, owners: Sequence[Owner], pairs: list[tuple[int, int]],
                arts: dict[int, StoredArticle], scored: list[dict[int, tuple[float, str]]], exact: bool = False) -> None:
    if not pairs:
        return
    qi = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    rows = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
    sims, tier_of = score_rows(store, [o.query for o in owners], qi, rows, arts, exact)
    for (i, r), s, tr in zip(pairs, sims.tolist(), tier_of.tolist(), strict=True):
        scored[i][r] = (s, tr)


def score_rows(store: Store, queries: Sequence[Query], qi: np.ndarray, rows: np.ndarray,
               arts: dict[int, StoredArticle], exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Topical similarity (the ranking score) and tier of each pair (``queries[qi[t]]``, stored row ``rows[t]``);
    element-wise, so a pair scores the same in any batch.

    The TF-IDF cosines (the costly evidence: every term of both texts) are computed only where they can change
    the answer: where the tier turns on them (the log-odds, linear in each cosine, fall on both sides of 0 as the
    cosines range over [0, 1]) or where they are the topical score (a language the model does not read).
    ``exact=False``: the tier of a pair that turns on them is left empty (ranking does not read tiers)."""
    if rows.size == 0:
        return np.zeros(0), np.zeros(0, dtype=str)
    uniq, at = np.unique(rows, return_inverse=True)
    scorer = pair_scorer(store, uniq.tolist(), arts, queries, terms=False)
    qs = list(queries)
    t, m = store.thresholds, store.model
    zero = np.zeros(len(rows))
    f = scorer.features(qi, len(qs) + at, tfidf=zero, rare=zero)
    corners = [pair_logits(**{**f, "tfidf": zero + x, "rare": zero + y}, t=t, m=m) for x in (0.0, 1.0)
               for y in (0.0, 1.0)]
    low, high = np.min(corners, axis=0), np.max(corners, axis=0)
    open_ = (low < 0) & (high >= 0)
    need = np.flatnonzero(f["unreadable"] | open_ if exact else f["unreadable"])
    f["tfidf"], f["rare"] = zero.copy(), zero.copy()
    if need.size:
        idf, rare_idf = store.idf()
        some, where = np.unique(rows[need], return_inverse=True)
        terms = [*(q.terms for q in qs), *(np.frombuffer(arts[r].terms, np.uint32) for r in some.tolist())]
        f["tfidf"][need], f["rare"][need] = tfidf_cosines(terms, qi[need], len(qs) + where, idf, rare_idf)
    topic = topical(semantic_similarity(f["lead"], f["title"], t.title_weight), f["tfidf"], f["unreadable"])
    # where the cosines were left at 0 the log-odds keep their sign: the tier is exact
    tier = tiers(pair_logits(**f, t=t, m=m), topic, f["jaccard"], f["same_content"], t, m)
    if not exact:
        dup = f["same_content"] | (f["jaccard"] >= t.duplicate_jaccard)
        tier = np.where(open_ & ~f["unreadable"] & ~dup, "", tier)
    return topic, tier


def pair_scorer(store: Store, rows: list[int], arts: dict[int, StoredArticle], queries: Sequence[Query] = (),
                exact: bool = False, terms: bool = True) -> PairScorer:
    """A PairScorer over ``queries`` then some stored articles, with the store's term statistics; vectors from
    the index (``exact``: from the stored float32 embeddings, see :meth:`Store.vectors`). ``terms=False``: no
    TF-IDF matrices (the caller gives those cosines to ``features``)."""
    from ..cluster.graph import PairScorer

    nq = len(queries)
    exact_rows = store.vectors(rows, exact=True) if exact else None  # from SQLite: the index is not opened
    dim = store.index.dim if exact_rows is None else exact_rows.shape[1]
    v = np.empty((nq + len(rows), dim), dtype=np.float32)  # queries, then the rows
    for p, q in enumerate(queries):
        v[p] = q.vector
    if exact_rows is None:
        store.vectors(rows, out=v[nq:])
    else:
        v[nq:] = exact_rows
    lead, title = store.layout.split_in_place(v)
    stored = [arts[r] for r in rows]
    sigs = np.frombuffer(b"".join([*(np.ascontiguousarray(q.signature, dtype=np.uint32).tobytes() for q in queries),
                                   *(a.signature for a in stored)]), dtype=np.uint32).reshape(len(v), -1)
    term_rows = [*(q.terms for q in queries), *(np.frombuffer(a.terms, np.uint32) for a in stored)]
    published = [*(q.published for q in queries), *(a.published_ts for a in stored)]
    idf, rare_idf = store.idf()
    tfidf, rare = (tfidf_matrix(term_rows, idf), tfidf_matrix(term_rows, rare_idf)) if terms else (None, None)
    return PairScorer(lead, title, sigs, [*(q.content_hash for q in queries), *(a.content_hash for a in stored)],
                      tfidf, rare, [n_tokens(x) for x in term_rows],
                      [*(q.lang for q in queries), *(a.lang for a in stored)], store.thresholds, store.model,
                      np.array([np.nan if p is None else p for p in published], dtype=np.float64),
                      [*(q.numbers for q in queries), *(a.number_codes() for a in stored)], store.languages)
