"""Reading a store: its groups (``dedup``, pages of groups, one group, what changed), the related articles of a
stored article or of a text that is not stored, and the comparison of two stored articles with its evidence.
Nothing here writes; callers make the groups current first (:func:`storycluster.regroup.ensure_groups`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import numpy as np

from .article import Article
from .cluster import PairEvidence
from .cluster.graph import PairScorer
from .cluster.groups import group_record
from .cluster.scoring import pair_logits, semantic_similarity, similarity_from, tiers, topical
from .errors import NotFoundError
from .featurize import Prepared, lexical_features, prepare_article
from .language import reads
from .lexical import n_tokens, number_text, tfidf_cosines, tfidf_matrix
from .ranking import RelatedOptions, select
from .results import (
    AlsoIn,
    Alternate,
    Change,
    Comparison,
    Dedup,
    Group,
    GroupsPage,
    Related,
    RelatedEntry,
    ScoredPair,
    Tier,
)
from .store.database import StoredArticle
from .store.store import Store


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


# -- groups ---------------------------------------------------------------------------------------
def dedup(store: Store) -> Dedup:
    """Every article exactly once: in a group of 2+ (representative first) or as a singleton."""
    raw = store.db.groups()
    groups = [group_dict(store, *g) for g in raw]
    grouped = {r for _, _, members in raw for r, *_ in members}
    singletons = sorted(i for r, i, _, _ in store.db.facts() if r not in grouped)
    return Dedup(groups=groups, singletons=singletons)


def groups_page(store: Store, limit: int = 100, offset: int = 0) -> GroupsPage:
    """A page of groups (largest first, as ``dedup``), and how many there are."""
    everything = store.db.groups()
    page = [group_dict(store, *g) for g in everything[offset:offset + limit]]
    return GroupsPage(total=len(everything), offset=offset, groups=page)


def group(store: Store, group_id: str) -> Group:
    """One group by id."""
    found = store.db.group(group_id)
    if found is None:
        raise NotFoundError(f"no group with id '{group_id}' in {store.path}; list them with 'storycluster dedup'")
    return group_dict(store, group_id, *found)


def group_dict(store: Store, gid: str, rep: int, members: list[tuple[int, float, str, int | None]]) -> Group:
    """A group as ``dedup`` shows it (:func:`~storycluster.cluster.groups.group_record`)."""
    arts = store.db.articles_by_rowid([r for r, *_ in members] + [d for *_, d in members if d])
    return group_record(gid, rep, members, arts)


def changes(store: Store, since: str) -> list[Change]:
    """What regroupings changed since ``since`` (an ISO date or time, UTC), oldest first."""
    try:
        t = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--changes-since: {since!r} is not an ISO date or time (e.g. 2024-05-01T12:00:00Z)") from None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return store.db.changes_since(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def article(store: Store, article_id: str) -> dict:
    """A stored article's record, its text included."""
    a = store.db.article(article_id)
    if a is None:
        raise NotFoundError(f"no article with id '{article_id}' in {store.path}")
    return {**a.to_public(), "text": a.text}


# -- related ----------------------------------------------------------------------------------------
#: characters of a query text that are read (its lead is what the model embeds; its words beyond this add little
#: lexical evidence and would make a huge posted text cost seconds of normalizing and hashing)
QUERY_MAX_CHARS = 20_000


def related(store: Store, article_id: str | None = None, *, text: str | None = None, title: str = "",
            lang: str | None = None, k: int = 10, options: RelatedOptions | None = None, alternates: bool = False,
            embed: Callable[[list[Prepared]], np.ndarray] | None = None) -> Related:
    """Top-k related articles for a stored article or for a text that is not stored (``embed`` gives its index
    vector).

    Never the article itself; articles of one group collapse into one entry (the best-scoring member that passes
    ``options``) whose ``also_in`` lists the group's other members that pass. ``alternates``: each entry also
    lists the group's other scored candidates (``{id, score, tier}``, best first), so that a filter applied
    later can fall back on them (the PostgreSQL export)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    db = store.db
    opts = options or RelatedOptions()
    earliest = opts.earliest()
    index = store.index
    query_ts = None
    if article_id is not None:
        q = db.article(article_id)
        if q is None:
            raise NotFoundError(f"no article with id '{article_id}' in {store.path}; "
                                "list ids with 'storycluster dedup --all'")
        qvec = store.vectors([q.rowid])[0]
        query = Query(qvec, np.frombuffer(q.signature, np.uint32), np.frombuffer(q.terms, np.uint32),
                      q.content_hash, q.lang, q.published_ts, q.number_codes())
        exclude, query_ts = q.rowid, q.published_ts
        qgroup = db.groups_of([q.rowid]).get(q.rowid)
    else:
        if not (text or "").strip():
            raise ValueError("give an article id or a non-empty text")
        if embed is None:
            raise ValueError("a text query needs an embedder")
        cut = (text or "")[:QUERY_MAX_CHARS]
        p = prepare_article(Article("<query>", title[:1000], cut, lang=lang), set(), store.config.embed_max_chars)
        qvec = embed([p])[0]
        (lex,) = lexical_features([p])
        query = Query(qvec, lex.signature, lex.terms, p.content_hash, p.lang, numbers=lex.numbers)
        exclude, qgroup = -1, None

    def allowed(a: StoredArticle) -> bool:
        return opts.allows(a.id, a.source, a.lang, a.published_ts, query_ts, earliest)

    t = store.thresholds
    own = [m for m, *_ in db.group_members(qgroup)] if qgroup else []
    wanted = 3 * k if opts.shapes_list else k
    fetch = 2 * k + 16
    via_group: set[int] = set()  # same_story only as a member of the query's group (probability under 0.5)
    # The ranking score is max(weighted cosine, headline cosine): the index ranks by the first, and the same index
    # searched with the query's headline half alone ranks by the second, so the two searches together find every
    # article that can enter the list (the answer does not depend on k or on how deep a caller asks).
    d = len(qvec) // 2
    headline_q = np.zeros_like(qvec)
    headline_q[d:] = qvec[d:] / np.float32(t.title_weight)
    queries = np.vstack([qvec, headline_q])
    # candidates seen in an earlier, shallower round keep their articles and scores (each is a pair's own)
    arts: dict[int, StoredArticle] = {}
    scored: dict[int, tuple[float, str, float]] = {}
    gof: dict[int, str] = {}
    while True:
        scores, rows = index.search(queries, fetch)
        found = [r for r in dict.fromkeys(int(r) for r in [*rows[0], *rows[1], *own]) if r >= 0 and r != exclude]
        new = [r for r in found if r not in arts]
        arts.update(db.articles_by_rowid(new))
        fresh = np.array([r for r in new if allowed(arts[r])], dtype=np.int64)
        gof.update(db.groups_of(fresh.tolist()))
        sims, tier_of, prob_of = score_many(store, query, fresh, arts)
        scored.update(zip(fresh.tolist(), zip(sims.tolist(), tier_of.tolist(), prob_of.tolist(), strict=True),
                          strict=True))
        entries: dict[str, tuple[float, str, int]] = {}
        others: dict[str, list[tuple[float, str, int]]] = {}
        for r in found:
            if r not in scored:
                continue  # filtered out
            sim, tier, prob = scored[r]
            gid = gof.get(r)
            in_own = qgroup is not None and gid == qgroup
            if sim < t.related and not in_own:
                continue
            tier = "same_story" if tier in ("duplicate", "same_story") or in_own else "related"
            if tier == "same_story" and prob < 0.5:
                via_group.add(r)
            key = gid or f"\x00{r}"
            others.setdefault(key, []).append((sim, tier, r))
            if key not in entries or sim > entries[key][0]:
                entries[key] = (sim, tier, r)
        # stop when what lies further down in both rankings scores below the list's last place (the related
        # threshold while the list is short), or the index is exhausted
        best_scores = sorted((round(s, 4) for s, _, _ in entries.values()), reverse=True)
        floor = best_scores[wanted - 1] if len(best_scores) >= wanted else t.related
        if fetch >= len(index) or max(float(scores[0, -1]), float(scores[1, -1])) < floor:
            break
        fetch *= 4
    # ranked as the answer shows the scores (rounded), so that every reader of a stored list agrees on ties
    ranked = sorted(entries.items(), key=lambda kv: (-round(kv[1][0], 4), arts[kv[1][2]].id))[:wanted]
    if opts.shapes_list:
        rows_ranked = np.array([r for _, (_, _, r) in ranked], dtype=np.int64)
        vecs = store.vectors(rows_ranked) if opts.diversity > 0 and len(rows_ranked) else None
        picks = select([round(s, 4) for _, (s, _, _) in ranked], [arts[r].source for _, (_, _, r) in ranked], vecs, k,
                       opts.per_source, opts.diversity)
        best = [ranked[p] for p in picks]
    else:
        best = ranked[:k]
    items: list[RelatedEntry] = []
    # the shown entries' groups, their members' articles read once for all of them
    group_rows = {key: db.group_members(key) for key, _ in best if not key.startswith("\x00")}
    arts.update(db.articles_by_rowid({m for ms in group_rows.values() for m, *_ in ms} - arts.keys()))
    for key, (sim, tier, r) in best:
        a = arts[r]
        also: list[AlsoIn] = []
        gid = None if key.startswith("\x00") else key
        members = group_rows.get(key, [])
        if gid is not None:
            also = [AlsoIn(id=o.id, source=o.source, url=o.url)
                    for m, *_ in members if m not in (r, exclude) and allowed(o := arts[m])]
        # a dict literal keeps the documented key order ("via" after "tier")
        item = cast(RelatedEntry, {"id": a.id, "score": round(sim, 4), "tier": tier,
                                   **({"via": "group"} if r in via_group else {}), "also_in": also,
                                   "title": a.title, "source": a.source, "url": a.url, "published": a.published,
                                   "lang": a.lang, "group": gid})
        items.append(item)
        if alternates:
            # the group's members in also_in order (shown one included), for a later filter's fallback
            item["members"] = [arts[m].id for m, *_ in members if m != exclude] if gid else []
            item["alternates"] = [_alternate(arts[o].id, s, ot, o in via_group)
                                       for s, ot, o in sorted(others[key], key=lambda x: (-x[0], arts[x[2]].id))
                                       if o != r]
    return Related(query=article_id, related=items)


def _alternate(article_id: str, score: float, tier: str, via_group: bool) -> Alternate:
    alt = Alternate(id=article_id, score=round(score, 4), tier=cast(Tier, tier))
    if via_group:
        alt["via"] = "group"
    return alt


def score_many(store: Store, query: Query, rows: np.ndarray,
               arts: dict[int, StoredArticle]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topical similarity (the ranking score), tier and same-story probability of a query against many stored
    articles at once."""
    if rows.size == 0:
        return np.zeros(0), np.zeros(0, dtype=str), np.zeros(0)
    scorer = local_scorer(store, rows.tolist(), arts, query, terms=False)
    terms = [np.frombuffer(arts[r].terms, np.uint32) for r in rows.tolist()]
    idf, rare_idf = store.idf()
    tfidf, rare = tfidf_cosines(query.terms, terms, idf, rare_idf)
    f = scorer.features(np.zeros(len(rows), dtype=np.int64), np.arange(1, len(rows) + 1), tfidf=tfidf, rare=rare)
    t, m = store.thresholds, store.model
    topic = topical(semantic_similarity(f["lead"], f["title"], t.title_weight), f["tfidf"], f["unreadable"])
    z = pair_logits(**f, t=t, m=m)
    return (topic, tiers(z, topic, f["jaccard"], f["same_content"], t, m),
            similarity_from(z, f["jaccard"], f["same_content"], t))


def local_scorer(store: Store, rows: list[int], arts: dict[int, StoredArticle], query: Query | None = None,
                 exact: bool = False, terms: bool = True) -> PairScorer:
    """A PairScorer over some stored articles (after ``query``, when given), with the store's term statistics;
    vectors from the index (``exact``: from the stored float32 embeddings, see :meth:`Store.vectors`).
    ``terms=False``: no TF-IDF matrices (the caller gives those cosines to ``features``)."""
    v = store.vectors(rows, exact=exact)
    sigs = [np.frombuffer(arts[r].signature, np.uint32) for r in rows]
    term_rows = [np.frombuffer(arts[r].terms, np.uint32) for r in rows]
    hashes = [arts[r].content_hash for r in rows]
    langs = [arts[r].lang for r in rows]
    published = [arts[r].published_ts for r in rows]
    numbers = [arts[r].number_codes() for r in rows]
    if query is not None:
        v = np.vstack([query.vector[None, :], v])
        sigs, term_rows, numbers = [query.signature, *sigs], [query.terms, *term_rows], [query.numbers, *numbers]
        hashes, langs, published = [query.content_hash, *hashes], [query.lang, *langs], [query.published, *published]
    lead, title = store.layout.split(v)
    idf, rare_idf = store.idf()
    tfidf, rare = (tfidf_matrix(term_rows, idf), tfidf_matrix(term_rows, rare_idf)) if terms else (None, None)
    return PairScorer(lead, title, np.vstack(sigs), hashes, tfidf, rare,
                      [n_tokens(t) for t in term_rows], langs, store.thresholds, store.model,
                      np.array([np.nan if p is None else p for p in published], dtype=np.float64), numbers,
                      store.languages)


# -- pairs ----------------------------------------------------------------------------------------
def compare(store: Store, id1: str, id2: str) -> Comparison:
    """Similarity, tier and the evidence behind them for two stored articles."""
    a, b = (store.db.article(i) for i in (id1, id2))
    if a is None or b is None:
        raise NotFoundError(f"no article with id '{id1 if a is None else id2}' in {store.path}")
    scorer = local_scorer(store, [a.rowid, b.rowid], {a.rowid: a, b.rowid: b}, exact=True)
    f = scorer.features(np.array([0]), np.array([1]))
    ev = PairEvidence(lead_cosine=float(f["lead"][0]), title_cosine=float(f["title"][0]),
                      jaccard=float(f["jaccard"][0]), tfidf_cosine=float(f["tfidf"][0]),
                      rare_cosine=float(f["rare"][0]),
                      years_jaccard=float(f["years_jaccard"][0]), years_conflict=bool(f["years_conflict"][0]),
                      numbers_jaccard=float(f["numbers_jaccard"][0]),
                      numbers_conflict=bool(f["numbers_conflict"][0]),
                      shared_numbers=tuple(number_text(int(c)) for c in np.intersect1d(
                          a.number_codes(), b.number_codes())),
                      min_tokens=int(f["min_tokens"][0]), cross_lingual=bool(f["cross_lingual"][0]),
                      unreadable=bool(f["unreadable"][0]),
                      same_content=bool(f["same_content"][0]),
                      date_gap_days=None if np.isnan(f["date_gap"][0]) else float(f["date_gap"][0]))
    t, m = store.thresholds, store.model
    out = Comparison(id1=id1, id2=id2, similarity=round(ev.similarity(t, m), 4), tier=cast(Tier, ev.tier(t, m)),
                     evidence=ev.to_dict(t, m))
    if ev.unreadable:
        langs = sorted({x.lang or "unknown" for x in (a, b) if not reads(store.languages, x.lang)})
        out["note"] = (f"the embedding model ({store.config.model_id}) does not read {', '.join(langs)}: "
                       "no semantic verdict, lexical evidence only")
    return out


def score_pairs(store: Store, pairs: Iterable[tuple[str, str, float | None]]) -> list[ScoredPair]:
    """Similarity and tier for each (id1, id2[, human score]); unknown ids give similarity None."""
    out: list[ScoredPair] = []
    for id1, id2, human in pairs:
        try:
            c = compare(store, id1, id2)
        except NotFoundError as e:
            out.append(ScoredPair(id1=id1, id2=id2, similarity=None, tier=None, human=human, error=str(e)))
            continue
        out.append(ScoredPair(**c, human=human))
    return out
