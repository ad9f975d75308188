"""Regrouping a store after a write: the pair scorer over its articles, which articles to cluster again, and the
groups and their changes written in one transaction.

Incremental unless asked for a full regrouping: only the articles touched since the last grouping
(``pending_regroup``), their candidate neighbours and every member of the groups those belong to are clustered
again; other groups stay as they are. Group ids carry over by largest overlap, and what changed is logged
(:func:`~storycluster.cluster.groups.group_changes`).

An incremental regrouping can differ from a full one of the same articles (an untouched article whose top-k now
holds a touched one is not clustered again), so the difference is bounded: once the articles touched since the
last full regrouping reach ``FULL_REGROUP_SHARE`` of the store, the regrouping is a full one (as it is when there
are no groups yet). A full regrouping on demand restores the exact groups (``dedup --full-regroup``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .cluster import ArticleFacts, build_groups, cluster_labels
from .cluster.graph import PairScorer, grouping_scorer
from .cluster.groups import group_changes
from .embed.layout import IndexedVectors
from .errors import StoreError
from .lexical import band_partners
from .memory import release_free_memory
from .related import stored as stored_lists
from .store.database import GroupingData
from .store.store import Store

#: a regrouping is a full one once the articles touched since the last full one reach this share of the store
FULL_REGROUP_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class RegroupReport:
    """What one regrouping did: the store's articles, how many were clustered again, how many changes it logged."""

    articles: int
    reclustered: int
    changes: int
    full: bool = False
    lists: int = 0  # related lists computed


def regroup(store: Store, full: bool = False) -> RegroupReport:
    """Recompute the store's groups (the caller holds the write lock).

    An incremental regrouping reads only the touched articles' rows (and every article's signature, to find
    them) once the store keeps its term document frequencies up to date on every write (from its first full
    regrouping on); a full one reads every article."""
    db = store.db
    # an IVF store groups with the index's 8-bit vectors: no float32 copy of every embedding in memory
    from_index = store.index.index_type == "ivf"
    previous = db.group_of()
    live = None if full or not previous else db.term_df()
    # an incremental regrouping weighs terms as the last full one did (as every answer does until the next)
    frozen = None if full or not previous else db.scoring_df()
    if live is not None:
        stored, sigs = db.signatures()
        pending, previous = _pending_in(store, stored, previous)
        if not _due_full(store, len(pending), len(stored)):
            rows = _touched_rows(store, stored, sigs, pending, previous)
            del sigs
            data = db.all_for_grouping(store.config.model_id, vectors=not from_index, rowids=rows.tolist())
            scorer, _ = store_scorer(store, data, *(frozen or live))
            return _write_groups(store, data.rowids, scorer, False, previous, len(stored), None, len(pending))
    with _spill(store) as spill:
        return _full_or_from_all(store, full, previous, from_index, spill)


def _full_or_from_all(store: Store, full: bool, previous: dict[int, str], from_index: bool, spill) -> RegroupReport:
    """A regrouping that reads every article: a full one, or an incremental one of a store that does not keep its
    term statistics yet (the scorer over every article, then the touched rows' part of it)."""
    db = store.db
    data = db.all_for_grouping(store.config.model_id, vectors=not from_index,
                               alloc=np.empty if spill is None else spill.empty)
    release_free_memory()  # the rows read in chunks: freed, but kept by the allocator
    scorer, df = store_scorer(store, data, spill=spill)
    stored = data.rowids
    del data  # the term lists: the scorer holds what it needs (a million articles' lists are gigabytes)
    release_free_memory()
    pending, previous = _pending_in(store, stored, previous)
    if full or not previous or _due_full(store, len(pending), len(stored)):
        return _write_groups(store, stored, scorer, True, previous, len(stored), df, len(pending))
    rows = _touched_rows(store, stored, scorer.sigs, pending, previous)
    sub = scorer.subset(np.searchsorted(stored, rows))
    return _write_groups(store, rows, sub, False, previous, len(stored), df, len(pending))


def _spill(store: Store):
    """A :class:`~.store.spill.Spill` beside the store for a regrouping that reads every article of a large one, else
    a context of None."""
    from contextlib import nullcontext

    from .store.spill import Spill

    # from config.json's regroup_spill_from articles: the term lists and TF-IDF rows (1.9 GB at a million) in files
    if store.db.count() < store.config.regroup_spill_from:
        return nullcontext()
    try:
        return Spill(store.path)
    except OSError:  # no room or no write access beside the store: in memory, as for a smaller one
        return nullcontext()


def ensure_groups(store: Store) -> None:
    """Regroup when the groups are older than the articles (a write that stopped before grouping), and save the
    index when the saved one is missing or older than the database (a write stopped between its two commits):
    once, not a rebuild at every open. While another process is writing, readers use what it last committed
    instead of waiting; inside a read transaction nothing is written."""
    if store.db.in_transaction:
        return
    stale_groups = _stale_groups(store)
    if stale_groups or store.index_stale():
        try:
            with store.write_lock():
                if stale_groups:
                    regroup(store)
                store.save_index()
        except StoreError:
            return


def _stale_groups(store: Store) -> bool:
    return store.db.get_meta("groups_generation") != str(store.db.generation)


def needs_repair(store: Store) -> bool:
    """Whether :func:`ensure_groups` has work to do (a read, outside a transaction, would first repair)."""
    return _stale_groups(store) or store.index_stale(peek=True)


def store_scorer(store: Store, data: GroupingData, df: np.ndarray | None = None,
                 n_docs: int | None = None, spill=None) -> tuple[PairScorer, np.ndarray]:
    """A PairScorer over the articles of ``data``, and the term document frequencies it used (``df`` and
    ``n_docs``: the store's, when ``data`` holds only some of its articles). ``data.terms`` is spent (its arrays
    become the TF-IDF matrix); the callers use only the rest of ``data`` afterwards."""
    lead: np.ndarray | IndexedVectors = data.lead
    title: np.ndarray | IndexedVectors = data.title
    if len(data.rowids) and data.lead.size == 0:  # vectors left in the index (an IVF store)
        lead = store.layout.half(store.index, data.rowids, "lead")
        title = store.layout.half(store.index, data.rowids, "title")
    return grouping_scorer(lead, title, data.sigs, data.content_hashes, data.terms, data.langs,
                           data.published, store.thresholds, store.model, data.numbers, df, n_docs,
                           consume_terms=True, languages=store.languages, spill=spill)


def _due_full(store: Store, pending: int, stored: int) -> bool:
    """Whether the articles touched since the last full regrouping (these ``pending`` ones included) have reached
    :data:`FULL_REGROUP_SHARE` of the ``stored`` ones."""
    before = int(store.db.get_meta("touched_since_full", "0") or 0)
    return before + pending >= FULL_REGROUP_SHARE * stored


def _pending_in(store: Store, stored: np.ndarray, previous: dict[int, str]) -> tuple[np.ndarray, dict[int, str]]:
    """The rows marked for regrouping and the previous group of each row, among ``stored`` (ascending)."""
    pending = np.array(sorted(store.db.pending()), dtype=np.int64)
    grouped = np.fromiter(previous, dtype=np.int64, count=len(previous))
    alive = set(grouped[np.isin(grouped, stored)].tolist())
    return pending[np.isin(pending, stored)], {r: g for r, g in previous.items() if r in alive}


def _write_groups(store: Store, rows: np.ndarray, scorer: PairScorer, whole: bool, previous: dict[int, str],
                  n_articles: int, df: np.ndarray | None, n_pending: int) -> RegroupReport:
    """Cluster ``rows`` (the scorer's rows; ``whole``: every article of the store), build their groups and write
    them with the changes; ``df``: document frequencies read from every article, to store; ``n_pending``: the
    articles touched since the last regrouping."""
    db = store.db
    # the store's index holds exactly the rows of a whole regrouping: its lists give the graph
    labels = (cluster_labels(scorer, index=store.index if whole else None, rowids=rows) if len(rows)
              else np.zeros(0, dtype=np.int64))
    before = {int(r): previous[int(r)] for r in rows if int(r) in previous}
    # ids and dates only of the rows that are or were in a group (a million articles' facts as objects were a
    # quarter of a gigabyte)
    in_multi = np.bincount(labels, minlength=len(rows))[labels] > 1 if len(rows) else np.zeros(0, dtype=bool)
    wanted = sorted(set(rows[in_multi].tolist()) | before.keys())
    facts = {r: ArticleFacts(i, ts, n) for r, i, ts, n in db.facts(wanted)} if wanted else {}
    old_ids = set(before.values())
    reserved = set(previous.values()) - old_ids
    groups = build_groups(rows, labels, scorer, facts, before, reserved)
    after = {r: g.group_id for g in groups for r, *_ in g.members}
    changes = group_changes(before, after, {r: f.id for r, f in facts.items()})
    with db.transaction():  # its own, or part of the write's (an add is visible whole, already grouped)
        lists_fresh = stored_lists.fresh(store)
        pending = db.pending()
        regrouped = set() if whole else _regrouped(db.members_of(old_ids), groups, pending)
        if whole:
            db.replace_groups((g.group_id, g.representative, g.members) for g in groups)
        else:
            db.replace_some_groups(old_ids, rows.tolist(), ((g.group_id, g.representative, g.members)
                                                            for g in groups))
        db.add_changes(now(), db.generation, changes)
        touched = 0 if whole else int(db.get_meta("touched_since_full", "0") or 0) + n_pending
        db.set_meta("touched_since_full", str(touched))
        db.clear_pending()
        if df is not None:
            db.set_term_df(df, n_articles)
            if whole:
                db.set_scoring_df(df, n_articles)
        db.set_meta("groups_generation", str(db.generation))
        # the related lists change with the groups, in the same transaction
        lists = stored_lists.refresh(store, lists_fresh, whole, regrouped | pending, pending)
    return RegroupReport(n_articles, int(len(rows)), len(changes), whole, lists)


def _regrouped(old: dict[str, list[int]], groups, pending: set[int]) -> set[int]:
    """Every member of a group that changed (members, their order or the representative), came or went, or
    holds a pending row: a list naming any of them may change."""
    new = {g.group_id: (g.representative, [m[0] for m in sorted(g.members, key=lambda m: (-m[1], m[0]))])
           for g in groups}
    out: set[int] = set()
    for gid in set(old) | set(new):
        before, after = old.get(gid), new.get(gid)
        members_before = before or []
        members_after = after[1] if after else []
        if before is None or after is None or members_before != members_after or \
                pending & (set(members_before) | set(members_after)):
            out.update(members_before, members_after)
    return out


def _touched_rows(store: Store, stored: np.ndarray, sigs: np.ndarray, pending: np.ndarray, previous: dict[int, str],
                  k: int = 20) -> np.ndarray:
    """Row ids to cluster again (sorted): the touched ones (``pending``), their candidate neighbours (top-k
    vectors above the related floor, MinHash band collisions) and all members of the groups any of those is
    in. ``stored``: every row id, ascending; ``sigs``: their signatures."""
    near = set(pending.tolist())
    if len(pending):  # the store's index already holds these vectors under their row ids
        index = store.index
        scores, found = index.search(index.vectors_of(pending), k + 1)
        hit = found[(scores >= store.thresholds.related) & (found >= 0)]
        near.update(hit[np.isin(hit, stored)].tolist())
        near.update(stored[band_partners(sigs, np.searchsorted(stored, pending))].tolist())
    touched_groups = {previous[r] for r in near if r in previous}
    near.update(r for r, g in previous.items() if g in touched_groups)
    return np.array(sorted(near), dtype=np.int64)


def now() -> str:
    """The time a change is logged under (UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
