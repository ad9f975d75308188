"""Reading a store: its groups (``dedup``, pages of groups, one group, what changed), the related articles of a
stored article or of a text that is not stored, and the comparison of two stored articles with its evidence.
Nothing here writes; callers make the groups current first (:func:`storycluster.regroup.ensure_groups`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import cast

import numpy as np

from .article import Article
from .cluster import PairEvidence, StoryModel
from .cluster.groups import group_record
from .errors import NotFoundError
from .featurize import Prepared, lexical_features, prepare_article
from .language import lang_option, reads
from .lexical import number_text
from .normalize import lexical_terms
from .ranking import RelatedOptions
from .related.plan import pair_scorer
from .results import (
    Change,
    Comparison,
    Dedup,
    Group,
    GroupsPage,
    Related,
    ScoredPair,
    Tier,
)
from .store.database import Card, StoredArticle
from .store.store import Store


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
            embed: Callable[[list[Prepared]], np.ndarray] | None = None, stored: bool = True) -> Related:
    """Top-k related articles for a stored article or for a text that is not stored (``embed`` gives its index
    vector).

    Never the article itself; articles of one group collapse into one entry (the best-scoring member that passes
    ``options``) whose ``also_in`` lists the group's other members that pass. ``alternates``: each entry also
    lists the group's other scored candidates (``{id, score, tier}``, best first), so that a filter applied
    later can fall back on them (the PostgreSQL export). A stored article's answer comes from its stored list
    (:mod:`storycluster.related.stored`) when that holds it exactly; ``stored=False`` computes it anyway."""
    from .related import Owner, Query, answer, plans, wanted

    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    db = store.db
    opts = options or RelatedOptions()
    note = None
    if article_id is not None:
        q = db.article(article_id)
        if q is None:
            raise NotFoundError(f"no article with id '{article_id}' in {store.path}; "
                                "list ids with 'storycluster dedup --all'")
        if stored and (listed := _from_list(store, q, k, opts, alternates)) is not None:
            return listed
        qgroup = db.groups_of([q.rowid]).get(q.rowid)
        own = [m for m, *_ in db.group_members(qgroup)] if qgroup else []
        owner = Owner.stored(q, store.vectors([q.rowid])[0], qgroup, own)
    else:
        if not (text or "").strip():
            raise ValueError("give an article id or a non-empty text")
        if embed is None:
            raise ValueError("a text query needs an embedder")
        cut = (text or "")[:QUERY_MAX_CHARS]
        p = prepare_article(Article("<query>", title[:1000], cut, lang=lang_option(lang)), set(),
                            store.config.embed_max_chars)
        note = headline_query_note(p, store.model)
        qvec = embed([p])[0]
        (lex,) = lexical_features([p])
        owner = Owner(Query(qvec, lex.signature, lex.terms, p.content_hash, p.lang, numbers=lex.numbers))
    earliest = opts.earliest()
    query_ts = owner.query.published

    def allowed(a: Card) -> bool:
        return opts.allows(a.id, a.source, a.lang, a.published_ts, query_ts, earliest)

    cards: dict[int, Card] = {}  # read for the ranking, shown by the answer
    (plan,) = plans(store, [owner], wanted(k, opts), allowed if opts.filters else None, complete=alternates,
                    cards=cards)
    items = answer(store, plan, k, opts, owner.exclude, query_ts, alternates, cards=cards)
    assert items is not None  # a plan as deep as the answer, with its filters: exact
    return noted(Related(query=article_id, related=items), note)


def noted(related: Related, note: str | None) -> Related:
    """``related`` with its ``note``, when there is one."""
    if note:
        related["note"] = note
    return related


def headline_query_note(query: Prepared, model: StoryModel) -> str | None:
    """What to tell a user whose query text is short enough to be judged as a headline (under the model's
    ``short_min_tokens`` words): the tiers then rest on a headline's evidence, which does not tell two stories of
    one subject apart (docs/quality.md)."""
    words = len(lexical_terms(query.match_input))
    if words >= model.short_min_tokens:
        return None
    return (f"the query has {words} word{'s' if words != 1 else ''} and is judged as a headline: other stories of "
            "its subject can come back same_story; a longer text says more")


def list_version(store: Store, article_id: str) -> int | None:
    """The generation of a stored article's current related list (None: the store keeps no current list for
    it). The list's answers change only with it: a write recomputes every list whose answer it can change (the
    lists that name an article it touched, or a member of that article's group, and those it would enter)."""
    from .related.stored import fresh

    return store.db.related_generation(article_id) if fresh(store) else None


def related_listed(store: Store, article_id: str, k: int = 10, options: RelatedOptions | None = None
                   ) -> Related | None:
    """:func:`related`'s answer when it comes from the article's stored list alone; None when it does not (no
    current list, a ``k`` deeper than the list, filters that leave it short: :func:`related` computes those)."""
    q = store.db.article(article_id)
    if q is None:
        raise NotFoundError(f"no article with id '{article_id}' in {store.path}; "
                            "list ids with 'storycluster dedup --all'")
    return _from_list(store, q, k, options or RelatedOptions())


def _from_list(store: Store, q: StoredArticle, k: int, opts: RelatedOptions, alternates: bool = False
               ) -> Related | None:
    from .related import answer, load_plan

    plan = load_plan(store, q.rowid)
    items = None if plan is None else answer(store, plan, k, opts, q.rowid, q.published_ts, alternates)
    return None if items is None else Related(query=q.id, related=items)


# -- pairs ----------------------------------------------------------------------------------------
def compare(store: Store, id1: str, id2: str) -> Comparison:
    """Similarity, tier and the evidence behind them for two stored articles."""
    a, b = (store.db.article(i) for i in (id1, id2))
    if a is None or b is None:
        raise NotFoundError(f"no article with id '{id1 if a is None else id2}' in {store.path}")
    scorer = pair_scorer(store, [a.rowid, b.rowid], {a.rowid: a, b.rowid: b}, exact=True)
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
    elif out["evidence"]["regime"] == "headline" and out["tier"] != "duplicate":
        out["note"] = (f"judged as a headline (the shorter text has {ev.min_tokens} words): headlines of one "
                       "subject often score like one story; the texts say more")
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

