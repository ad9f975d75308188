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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ..cluster.scoring import pair_logits, semantic_similarity, tiers, topical
from ..language import reads
from ..lexical import PackedNumbers, PackedTerms, tfidf_cosines, tfidf_matrix
from ..store.database import Card, StoredArticle
from ..store.store import Store

if TYPE_CHECKING:
    from ..cluster.graph import PairScorer

K = TypeVar("K")

#: decimals of the scores a list shows, and ranks on
ROUND = 4
#: stories a stored list keeps (see :mod:`.stored`): every plan's first search reaches this deep
STORED_DEPTH = 30
#: searches go this far below a list's last shown score: past half a rounding step (a candidate left unfound
#: then scores below every shown one even where its cosine from the index and from scoring differ in the last bits)
MARGIN = 6e-5
#: a search's candidates are those scoring at least its ``fetch``-th score less this (float noise), however many
#: are tied there (see :func:`_cuts`); each search asks for :data:`TIES` more results to hold them
CUT = 1e-5
TIES = 16


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
    scored members, best first (score, then id): the first ``found`` (None: all) the search found, then those
    a completed plan added (see :func:`_complete`)."""

    key: str
    rows: list[Row]
    found: int | None = None

    @property
    def found_rows(self) -> list[Row]:
        """The rows the search found: those a filtered answer may show (as one computed on demand would)."""
        return self.rows if self.found is None else self.rows[:self.found]

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


def first_search(store: Store, owners: Sequence[Owner], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The index search that :func:`plans` starts with, of many owners at once (a many-query IVF search costs
    less per query the more queries share its lists); rows ``2i`` and ``2i + 1`` are owner ``i``'s."""
    return _search(store, owners, _first_fetch(depth))


def _search(store: Store, owners: Sequence[Owner], fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """The owners' two index searches (:meth:`VectorIndex.search_pairs`: both over the lists either probes) for
    their first ``fetch`` results and the :data:`TIES` after them."""
    index = store.index
    return index.search_pairs(np.vstack([o.query.vector for o in owners]), min(fetch + TIES, max(len(index), 1)),
                              store.thresholds.title_weight)


def _first_fetch(depth: int) -> int:
    """How many results each of a plan's first two searches asks for: as many as a stored list's plan asks for,
    at any depth up to it, so that a plan meets the same candidates at any depth: the members of its stories
    that its search found (those a filtered answer may stand a story by, and the alternates the PostgreSQL
    export offers) are those of the stored list's plan."""
    return 2 * max(depth, STORED_DEPTH) + 16


def plans(store: Store, owners: Sequence[Owner], depth: int,
          allowed: Callable[[Card], bool] | None = None, complete: bool = False,
          arts: dict[int, StoredArticle] | None = None,
          first: tuple[np.ndarray, np.ndarray] | None = None,
          cards: dict[int, Card] | None = None) -> list[Plan]:
    """The plan of each owner: its first ``depth`` stories. ``allowed``: only candidates that pass (a filtered
    answer computed on demand). ``complete``: every member of a planned group is scored, not only those the
    search met (a stored plan, whose alternates stand in when a filter removes a story's best member).
    ``arts``, ``cards``: articles and their cards already read (filled with the ones read here). ``first``:
    these owners' rows of a :func:`first_search` made with more owners (a plan does not depend on which queries
    searched with it).

    The candidates of all owners are ranked as arrays (owner, row, score, tier), one round per search, on their
    topical scores from the index vectors alone; the rest of the evidence (the stored rows' signatures, terms and
    numbers) is read and scored only for the candidates that make a plan's stories (:func:`_evidence`). An owner
    whose search may have missed a story that would rank searches again, four times deeper."""
    index, t = store.index, store.thresholds
    arts = {} if arts is None else arts
    cards = {} if cards is None else cards
    gof: dict[int, str] = {}
    grouped: set[int] = set()  # rows whose group was read (into gof when they have one)
    n = len(owners)
    took = _Pairs()  # every pair ranked so far
    known: dict[tuple[int, int], str] = {}  # the tiers scored so far
    refused: set[tuple[int, int]] = set()
    ranked_of: list[list[Entry]] = [[] for _ in range(n)]
    unsettled: list[list[Entry]] = [[] for _ in range(n)]  # stories with a row whose tier is left open
    fetch = _first_fetch(depth)
    todo = list(range(n))
    while todo:
        if first is not None:
            (scores, rows), first = first, None
        else:
            scores, rows = _search(store, [owners[i] for i in todo], fetch)
        cuts, tied = _cuts(scores, rows, fetch, len(index))
        qi, rs = _candidates(owners, todo, rows, scores, cuts)
        if len(took):  # a deeper search: only the pairs not scored or refused yet
            done = {*zip(took.qi.tolist(), took.rows.tolist(), strict=True), *refused}
            new = np.fromiter(((q, r) not in done for q, r in zip(qi.tolist(), rs.tolist(), strict=True)),
                              dtype=bool, count=len(qi))
            qi, rs = qi[new], rs[new]
        _read_cards(store, set(rs.tolist()), cards, gof, grouped)
        if allowed is not None:
            passes = {r: allowed(cards[r]) for r in set(rs.tolist())}
            ok = np.fromiter((passes[r] for r in rs.tolist()), dtype=bool, count=len(rs))
            refused.update(zip(qi[~ok].tolist(), rs[~ok].tolist(), strict=True))
            qi, rs = qi[ok], rs[ok]
        sims, tiers = _topical(store, owners, qi, rs, cards, arts, gof, grouped)
        took.add(qi, rs, sims, tiers)
        ranked, opened = _rank(owners, took.of(todo, n), gof, cards, t.related, depth)
        _evidence(store, owners, ranked, arts, gof, grouped, known)
        still = []
        for p, i in enumerate(todo):
            ranked_of[i], unsettled[i] = ranked.get(i, []), opened.get(i, [])
            floor = round(ranked_of[i][depth - 1].score, ROUND) if len(ranked_of[i]) >= depth else t.related
            if fetch < len(index) and (max(cuts[2 * p], cuts[2 * p + 1]) >= floor - MARGIN or tied[p]):
                still.append(i)
        todo = still
        fetch *= 4
    if complete:
        _complete(store, owners, ranked_of, unsettled, arts, gof, grouped)
    _settle(store, owners, unsettled, arts)
    # fewer stories than asked: the search went below the related threshold, none is missing
    return [Plan(ranked, round(ranked[depth - 1].score, ROUND) if len(ranked) >= depth else None,
                 allowed is not None) for ranked in ranked_of]


#: the tier of a ranked pair whose evidence beyond the vectors is not scored yet (see :func:`_evidence`)
UNSCORED = "?"


def _topical(store: Store, owners: Sequence[Owner], qi: np.ndarray, rows: np.ndarray, cards: dict[int, Card],
             arts: dict[int, StoredArticle], gof: dict[int, str], grouped: set[int]
             ) -> tuple[np.ndarray, np.ndarray]:
    """The topical score of each pair (``owners[qi[t]]``, stored row ``rows[t]``) and its tier: from the index
    vectors alone, the tier :data:`UNSCORED`, where the model reads both languages; where it does not, the
    topical score is the TF-IDF cosine of the texts, and those pairs are scored in full (:func:`score_rows`).
    The same arithmetic as :func:`score_rows`, so a pair's score does not depend on which way it came."""
    from ..cluster.graph import row_dots

    sims, tiers = np.zeros(len(rows)), np.full(len(rows), UNSCORED, dtype="<U10")
    if rows.size == 0:
        return sims, tiers
    queries = [o.query for o in owners]
    langs = store.languages
    unread_q = np.fromiter((not reads(langs, q.lang) for q in queries), dtype=bool, count=len(queries))
    uniq, at = np.unique(rows, return_inverse=True)
    unread_r = np.fromiter((not reads(langs, cards[r].lang) for r in uniq.tolist()), dtype=bool, count=len(uniq))
    unread = unread_q[qi] | unread_r[at]
    lead, title = query_and_row_vectors(store, uniq.tolist(), queries)
    j = len(queries) + at
    sims[:] = semantic_similarity(row_dots(lead, qi, j), row_dots(title, qi, j), store.thresholds.title_weight)
    if unread.any():
        _read(store, set(rows[unread].tolist()), arts, gof, grouped)
        sims[unread], tiers[unread] = score_rows(store, queries, qi[unread], rows[unread], arts, exact=False)
    return sims, tiers


def _evidence(store: Store, owners: Sequence[Owner], ranked: dict[int, list[Entry]], arts: dict[int, StoredArticle],
              gof: dict[int, str], grouped: set[int], known: dict[tuple[int, int], str]) -> None:
    """The tiers of the rows of the ranked stories that only their vectors scored (:data:`UNSCORED`): their
    articles read and scored in full, the TF-IDF cosines included where a tier turns on them (as
    :func:`_settle` would score them: these rows are few); ``known`` keeps the tiers scored in earlier rounds."""
    pairs = list(dict.fromkeys((i, r) for i, entries in ranked.items() for e in entries
                               for r, _, shown, _ in e.rows if shown == UNSCORED and (i, r) not in known))
    if pairs:
        _read(store, {r for _, r in pairs}, arts, gof, grouped)
        known.update(zip(pairs, _score_pairs(store, owners, pairs, arts, exact=True)[1].tolist(), strict=True))
    for i, entries in ranked.items():
        for e in entries:
            if any(shown == UNSCORED for _, _, shown, _ in e.rows):
                e.rows = [_row(r, s, known[i, r], in_own) if shown == UNSCORED else (r, s, shown, in_own)
                          for r, s, shown, in_own in e.rows]


@dataclass(slots=True)
class _Pairs:
    """Ranked pairs as arrays: owner index, stored row, topical score, tier (empty: left open, see
    :func:`score_rows`; :data:`UNSCORED`: not scored beyond the vectors)."""

    qi: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sims: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tiers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U10"))

    def __len__(self) -> int:
        return len(self.qi)

    def add(self, qi: np.ndarray, rows: np.ndarray, sims: np.ndarray, tiers: np.ndarray) -> None:
        if not len(self):
            self.qi, self.rows, self.sims, self.tiers = qi, rows, sims, tiers
        elif len(qi):
            self.qi, self.rows = np.concatenate([self.qi, qi]), np.concatenate([self.rows, rows])
            self.sims, self.tiers = np.concatenate([self.sims, sims]), np.concatenate([self.tiers, tiers])

    def of(self, owners: list[int], n: int) -> _Pairs:
        """The pairs of these owners (of ``n``)."""
        if len(owners) == n:
            return self
        mask = np.zeros(n, dtype=bool)
        mask[owners] = True
        keep = mask[self.qi]
        return _Pairs(self.qi[keep], self.rows[keep], self.sims[keep], self.tiers[keep])


def _cuts(scores: np.ndarray, rows: np.ndarray, fetch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The score the candidates of each search row must reach, and for each owner (rows ``2p``, ``2p + 1``)
    whether a row's ties ran past its :data:`TIES` extra results (its search goes deeper then).

    A row's cut is its ``fetch``-th score less :data:`CUT` (-inf when it holds fewer: it returned every vector
    of the lists it probed; or when the search asked for all ``n`` vectors). Which of the candidates tied at a
    search's last score it returns, and that score's last bits, depend on the search's path (one query, or many
    as dense products). Cut at a score, with every candidate tied there, a plan's candidates do not depend on
    the path: a stored list equals the answer computed on demand."""
    if fetch >= n or rows.shape[1] < fetch:
        return np.full(len(rows), -np.inf), np.zeros(len(rows) // 2, dtype=bool)
    cut = np.where(rows[:, fetch - 1] >= 0, scores[:, fetch - 1].astype(np.float64) - CUT, -np.inf)
    tied = (rows[:, -1] >= 0) & (scores[:, -1] >= cut) & (rows.shape[1] < n)
    return cut, tied.reshape(-1, 2).any(axis=1)


def _candidates(owners: Sequence[Owner], todo: list[int], rows: np.ndarray, scores: np.ndarray,
                cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, row) of each candidate once: the rows of its two searches (``rows[2p]``, ``rows[2p + 1]``
    for ``todo[p]``) that reach their cuts (:func:`_cuts`) and its own group's members, never itself nor an empty
    slot."""
    found = rows.reshape(len(todo), -1)
    qi = np.repeat(np.asarray(todo, dtype=np.int64), found.shape[1])
    rs = np.where(scores >= cuts[:, None], rows, -1).reshape(len(todo), -1).ravel().astype(np.int64, copy=False)
    own = [(i, r) for i in todo for r in owners[i].own]
    if own:
        qi = np.concatenate([qi, np.fromiter((i for i, _ in own), dtype=np.int64, count=len(own))])
        rs = np.concatenate([rs, np.fromiter((r for _, r in own), dtype=np.int64, count=len(own))])
    exclude = np.fromiter((o.exclude for o in owners), dtype=np.int64, count=len(owners))
    keep = (rs >= 0) & (rs != exclude[qi])
    qi, rs = qi[keep], rs[keep]
    order = np.lexsort((rs, qi))
    qi, rs = qi[order], rs[order]
    first = np.r_[True, (qi[1:] != qi[:-1]) | (rs[1:] != rs[:-1])] if len(qi) else np.zeros(0, dtype=bool)
    return qi[first], rs[first]


def _read(store: Store, rows: set[int], arts: dict[int, StoredArticle], gof: dict[int, str],
          grouped: set[int]) -> None:
    """Read the articles and groups of ``rows`` not read yet."""
    if need := missing(rows, arts):
        arts.update(store.db.articles_by_rowid(sorted(need)))
    _read_groups(store, rows, gof, grouped)


def _read_cards(store: Store, rows: set[int], cards: dict[int, Card], gof: dict[int, str],
                grouped: set[int]) -> None:
    """Read the cards (id, language, what filters read) and groups of ``rows`` not read yet: what ranking needs."""
    if need := missing(rows, cards):
        cards.update(store.db.cards(need))
    _read_groups(store, rows, gof, grouped)


def _read_groups(store: Store, rows: set[int], gof: dict[int, str], grouped: set[int]) -> None:
    if need := rows - grouped:
        gof.update(store.db.groups_of(sorted(need)))
        grouped.update(need)


def rounded(x: np.ndarray) -> np.ndarray:
    """``round(v, ROUND)`` of each value, as Python rounds (the decimal nearest the exact binary value):
    numpy's ``round`` multiplies first, which can cross a half step within a rounding error of it."""
    scale = 10.0 ** ROUND
    out = np.round(x, ROUND)
    y = np.abs(x) * scale
    near = np.flatnonzero(np.abs(y - np.floor(y) - 0.5) < 1e-6)
    if near.size:
        out[near] = [round(v, ROUND) for v in x[near].tolist()]
    return out


def _rank(owners: Sequence[Owner], got: _Pairs, gof: dict[int, str], cards: Mapping[int, Card],
          related: float, depth: int) -> tuple[dict[int, list[Entry]], dict[int, list[Entry]]]:
    """Each owner's first ``depth`` stories from its scored candidates, in list order, and those of its
    stories with a row left open: a row whose tier turns on the TF-IDF cosines is ``(row, score, "", member
    of the query's group)`` until :func:`_settle` gives its tier.

    A candidate joins its story (its group, else itself) at the related threshold, or as a member of the
    owner's own group; a story ranks by its best member (score, then article id), stories by that member's
    rounded score, then its id."""
    if not len(got):
        return {}, {}
    uniq, at = np.unique(got.rows, return_inverse=True)
    codes: dict[str, int] = {}
    gcode = np.fromiter((codes.setdefault(g, len(codes)) if (g := gof.get(r)) is not None else -1
                         for r in uniq.tolist()), dtype=np.int64, count=len(uniq))[at]
    mine = np.fromiter((codes.get(o.group, -2) if o.group is not None else -2 for o in owners), dtype=np.int64,
                       count=len(owners))  # -2: never a candidate's code
    own = gcode == mine[got.qi]
    keep = np.flatnonzero((got.sims >= related) | own)
    qi, at, sims, gcode, own = got.qi[keep], at[keep], got.sims[keep], gcode[keep], own[keep]
    # each row's place among the candidates' article ids (ties are broken by id)
    ids = [cards[r].id for r in uniq.tolist()]
    idrank = np.empty(len(uniq), dtype=np.int64)
    idrank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    idr = idrank[at]
    story = np.where(gcode >= 0, gcode, len(codes) + at)
    # pairs by owner, story, then best member first: each run is a story's members in list order
    order = np.lexsort((idr, -sims, story, qi))
    qo, so = qi[order], story[order]
    starts = np.flatnonzero(np.r_[True, (qo[1:] != qo[:-1]) | (so[1:] != so[:-1])]) if len(order) else \
        np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(order)]
    heads = order[starts]
    # stories by owner, then rounded score of the best member, then its id; the first depth of each owner
    by = np.lexsort((idr[heads], -rounded(sims[heads]), qi[heads]))
    hq = qi[heads][by]
    place = np.arange(len(by)) - np.searchsorted(hq, hq)  # a story's place in its owner's list
    chosen = by[place < depth]
    names = {c: g for g, c in codes.items()}
    # the chosen stories' members, as plan rows: a tier left open keeps its row open ("") for _settle
    lengths = ends[chosen] - starts[chosen]
    at_run = np.cumsum(np.r_[0, lengths])
    taken = order[np.repeat(starts[chosen] - at_run[:-1], lengths) + np.arange(int(at_run[-1]))]
    tier = got.tiers[keep][taken]
    evidence = (tier == "duplicate") | (tier == "same_story")
    shown = np.where((tier == "") | (tier == UNSCORED), tier, np.where(evidence | own[taken], "same_story", "related"))
    rows = list(zip(uniq[at[taken]].tolist(), sims[taken].tolist(), shown.tolist(),
                    (own[taken] & ~evidence).tolist(), strict=True))
    unsettled = np.add.reduceat(tier == "", at_run[:-1]) > 0 if len(taken) else np.zeros(0, dtype=bool)
    out: dict[int, list[Entry]] = {}
    opened: dict[int, list[Entry]] = {}
    for q, code, a, s, e, u in zip(qi[heads][chosen].tolist(), story[heads][chosen].tolist(),
                                   uniq[at[heads]][chosen].tolist(), at_run[:-1].tolist(), at_run[1:].tolist(),
                                   unsettled.tolist(), strict=True):
        entry = Entry(names[code] if code < len(codes) else f"\x00{a}", rows[s:e])
        out.setdefault(q, []).append(entry)
        if u:
            opened.setdefault(q, []).append(entry)
    return out, opened


def _row(r: int, sim: float, tier: str, in_own: bool) -> Row:
    """A candidate as a plan row: same story by its own evidence (a copy, or a probability of at least 0.5), or
    only as a member of the query's own group (``via`` group), else related."""
    own_evidence = tier in ("duplicate", "same_story")
    return r, sim, "same_story" if own_evidence or in_own else "related", in_own and not own_evidence


def _settle(store: Store, owners: Sequence[Owner], unsettled: list[list[Entry]],
            arts: dict[int, StoredArticle]) -> None:
    """The tiers left open while ranking (they turn on the TF-IDF cosines, which ranking does not read), in the
    stories that hold such rows."""
    pairs = [(i, r) for i, entries in enumerate(unsettled) for e in entries for r, _, tier, _ in e.rows if not tier]
    exact = dict(zip(pairs, _score_pairs(store, owners, pairs, arts, exact=True)[1].tolist(), strict=True))
    for i, entries in enumerate(unsettled):
        for e in entries:
            e.rows = [row if row[2] else _row(row[0], row[1], exact[i, row[0]], row[3]) for row in e.rows]


def _complete(store: Store, owners: Sequence[Owner], ranked_of: list[list[Entry]], unsettled: list[list[Entry]],
              arts: dict[int, StoredArticle], gof: dict[int, str], grouped: set[int]) -> None:
    """Score the members of each planned group that its rows do not hold, and add those that qualify after the
    rows the search found (a member scored before and left out scores the same again, and stays out); a story
    given a row whose tier is left open joins ``unsettled``.

    After them, not among them: the found rows alone rank the story and give its shown member, as in a plan
    that is not completed. With an exact index a member the search did not find scores below every planned
    story anyway; with an IVF index it can score higher (its list was not probed), and sorted in it would
    change the story's member and place in a stored list only."""
    gids = {e.group for ranked in ranked_of for e in ranked if e.group is not None}
    members = store.db.members_of(gids)
    _read(store, {r for g in gids for r in members.get(g, [])}, arts, gof, grouped)
    pairs = []
    for i, ranked in enumerate(ranked_of):
        for e in ranked:
            if e.group is not None and len(group := members.get(e.group, [])) > len(e.rows):
                have = {r for r, *_ in e.rows}
                pairs += [(i, r) for r in group if r != owners[i].exclude and r not in have]
    if not pairs:
        return
    sims, tiers = _score_pairs(store, owners, pairs, arts)
    related = store.thresholds.related
    added: dict[tuple[int, str], list[tuple[int, float, str]]] = {}
    for (i, r), s, tr in zip(pairs, sims.tolist(), tiers.tolist(), strict=True):
        added.setdefault((i, gof[r]), []).append((r, s, tr))
    for i, ranked in enumerate(ranked_of):
        o = owners[i]
        for e in ranked:
            more = added.get((i, e.key)) if e.group is not None else None
            if more:
                in_own = e.group == o.group
                rows = [_row(r, s, tr, in_own) if tr else (r, s, tr, in_own) for r, s, tr in more
                        if s >= related or in_own]
                if rows:
                    if any(not tr for _, _, tr, _ in rows) and all(e is not u for u in unsettled[i]):
                        unsettled[i].append(e)
                    e.found = len(e.rows)
                    e.rows += sorted(rows, key=lambda x: (-x[1], arts[x[0]].id))


def _score_pairs(store: Store, owners: Sequence[Owner], pairs: list[tuple[int, int]],
                 arts: dict[int, StoredArticle], exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    qi = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    rows = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
    return score_rows(store, [o.query for o in owners], qi, rows, arts, exact)


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


def query_and_row_vectors(store: Store, rows: list[int], queries: Sequence[Query] = (), exact: bool = False
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The lead and headline halves of ``queries``' vectors, then of the stored ``rows``' (from the index;
    ``exact``: from the stored float32 embeddings, see :meth:`Store.vectors`)."""
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
    return store.layout.split_in_place(v)


def pair_scorer(store: Store, rows: list[int], arts: dict[int, StoredArticle], queries: Sequence[Query] = (),
                exact: bool = False, terms: bool = True) -> PairScorer:
    """A PairScorer over ``queries`` then some stored articles, with the store's term statistics; vectors from
    the index (``exact``: from the stored float32 embeddings, see :meth:`Store.vectors`). ``terms=False``: no
    TF-IDF matrices (the caller gives those cosines to ``features``)."""
    from ..cluster.graph import PairScorer

    lead, title = query_and_row_vectors(store, rows, queries, exact)
    stored = [arts[r] for r in rows]
    sigs = np.frombuffer(b"".join([*(np.ascontiguousarray(q.signature, dtype=np.uint32).tobytes() for q in queries),
                                   *(a.signature for a in stored)]), dtype=np.uint32).reshape(len(lead), -1)
    # as packed arrays: one join of the stored blobs, not an array per article
    packed = PackedTerms.from_blobs([*(np.ascontiguousarray(q.terms, dtype=np.uint32).tobytes() for q in queries),
                                     *(a.terms for a in stored)])
    published = [*(q.published for q in queries), *(a.published_ts for a in stored)]
    idf, rare_idf = store.idf()
    tfidf, rare = (tfidf_matrix(packed, idf), tfidf_matrix(packed, rare_idf)) if terms else (None, None)
    numbers = PackedNumbers.from_blobs([*(np.ascontiguousarray(q.numbers, dtype=np.uint64).tobytes() for q in queries),
                                        *(a.numbers for a in stored)])
    return PairScorer(lead, title, sigs, [*(q.content_hash for q in queries), *(a.content_hash for a in stored)],
                      tfidf, rare, packed.n_tokens(),
                      [*(q.lang for q in queries), *(a.lang for a in stored)], store.thresholds, store.model,
                      np.array([np.nan if p is None else p for p in published], dtype=np.float64),
                      numbers, store.languages)
