"""A plan becomes the answer a caller asked for: filters (a story stands by its best member that passes), the
first ``k`` stories (or list shaping among the first ``3k``), and each entry as the API shows it.

A stored plan is computed without filters; a filter that removes stories may leave fewer than asked above the
plan's floor, where stories the plan does not hold could rank. :func:`answer` then says it cannot answer exactly
(None), and the caller computes a filtered plan instead."""

from __future__ import annotations

from typing import cast

from ..ranking import RelatedOptions, select
from ..results import AlsoIn, Alternate, RelatedEntry, Tier
from ..store.database import Card
from ..store.store import Store
from .plan import ROUND, Entry, Plan, Row, missing


def wanted(k: int, options: RelatedOptions) -> int:
    """How many stories an answer chooses among: ``k``, or ``3k`` when the list is shaped."""
    return 3 * k if options.shapes_list else k


def answer(store: Store, plan: Plan, k: int, options: RelatedOptions, exclude: int = -1,
           query_ts: float | None = None, alternates: bool = False, cards: dict[int, Card] | None = None,
           members: dict[str, list[int]] | None = None) -> list[RelatedEntry] | None:
    """The entries of the answer, or None when this plan cannot give it exactly (see the module docstring).
    ``alternates``: each entry also lists the group's members and the other members the search found (those
    a filter may stand the story by), for a filter applied later (the PostgreSQL export). ``cards``,
    ``members``: articles and group members already read (many answers at once), read here when missing."""
    want = wanted(k, options)
    filtering = options.filters and not plan.filtered
    if plan.floor is not None and len(plan.entries) < want:
        return None
    db = store.db
    cards = {} if cards is None else cards
    # the rows a filter may choose among, or only the first ones shown
    looked = [r for e in plan.entries for r, *_ in e.rows] if filtering else [e.rows[0][0] for e in plan.entries[:want]]
    cards.update(db.cards(missing(looked, cards)))
    earliest = options.earliest()

    def ok(c: Card) -> bool:
        return options.allows(c.id, c.source, c.lang, c.published_ts, query_ts, earliest)

    any_filter = options.filters
    kept: list[tuple[Entry, Row]] = []
    for e in plan.entries:
        shown = next((row for row in e.found_rows if ok(cards[row[0]])), None) if filtering else e.rows[0]
        if shown is not None:
            kept.append((e, shown))
    if filtering:
        kept.sort(key=lambda er: (-round(er[1][1], ROUND), cards[er[1][0]].id))
        if plan.floor is not None and (len(kept) < want or round(kept[want - 1][1][1], ROUND) <= plan.floor):
            return None
    kept = kept[:want]
    if options.shapes_list:
        rows = [row[0] for _, row in kept]
        vecs = store.vectors(rows) if options.diversity > 0 and rows else None
        picks = select([round(row[1], ROUND) for _, row in kept], [cards[row[0]].source for _, row in kept], vecs, k,
                       options.per_source, options.diversity)
        best = [kept[p] for p in picks]
    else:
        best = kept[:k]
    members = {} if members is None else members
    members.update(db.members_with_cards(missing((e.group for e, _ in best if e.group is not None), members),
                                         cards))
    cards.update(db.cards(missing((m for e, _ in best if e.group is not None for m in members.get(e.group, [])),
                                  cards)))  # members given by the caller, without their cards
    items: list[RelatedEntry] = []
    for e, (r, sim, tier, via) in best:
        c = cards[r]
        group = members.get(e.group, []) if e.group is not None else []
        # literal dicts (an answer of large groups lists a hundred of them), the filters only where set
        others = (cards[m] for m in group if m != r and m != exclude)
        also: list[AlsoIn] = [{"id": o.id, "source": o.source, "url": o.url} for o in others
                              if not any_filter or ok(o)]
        # a dict literal keeps the documented key order ("via" after "tier")
        item = cast(RelatedEntry, {"id": c.id, "score": round(sim, ROUND), "tier": tier,
                                   **({"via": "group"} if via else {}), "also_in": also, "title": c.title,
                                   "source": c.source, "url": c.url, "published": c.published, "lang": c.lang,
                                   "group": e.group})
        if alternates:  # the members that may stand for the story under a filter: those the search found
            cards.update(db.cards(missing((o for o, *_ in e.found_rows), cards)))
            item["members"] = [cards[m].id for m in group if m != exclude]
            item["alternates"] = [_alternate(cards[o].id, s, ot, v) for o, s, ot, v in e.found_rows
                                  if o != r and (not filtering or ok(cards[o]))]
        items.append(item)
    return items


def _alternate(article_id: str, score: float, tier: str, via_group: bool) -> Alternate:
    alt = Alternate(id=article_id, score=round(score, ROUND), tier=cast(Tier, tier))
    if via_group:
        alt["via"] = "group"
    return alt
