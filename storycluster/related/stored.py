"""Related lists kept in the store: each article's plan (its first :data:`DEPTH` stories, unfiltered, with every
qualifying member of each), computed in batch and refreshed inside the same transaction as the regrouping that
follows each write, so readers see lists and groups of one state.

A store keeps lists while it holds at most ``related_lists_max`` articles (config.json, default 2,000,000): a
full regrouping recomputes every list, a cost a larger store would pay on every tenth of growth
(docs/performance.md). Above it, or in a store whose lists are not current, ``related`` computes each answer on
demand, the same answer.

A store of more than :data:`INLINE_MAX` articles recomputes every list after the full regrouping commits instead
of inside its transaction (:func:`build`, one process per core, still under the write lock): its lists are marked
pending meanwhile, so readers never see lists of other groups than theirs, and answer on demand until the last
list is written. A build that stops (Ctrl-C, a crash) leaves them pending; the next write builds them again.

A write refreshes the lists it can change: those of the articles it touched (added, updated, removed, or whose
group changed: a group's change touches every member), the lists that name a touched article, or any member of a
touched article's group, and the lists a new or changed article would now enter (it ranks at or above their last
story, or they hold every story above the related threshold and it reaches that). A full regrouping recomputes
every list, as does the first regrouping of a store whose lists are missing or older than its groups.

Pairs are scored with the term statistics of the last full regrouping (:meth:`Store.idf`), so a list that no
write touched still equals the one computed now.

Format: ``related_lists.plan`` is JSON ``[[story key, [[row id, score, tier, via group], ...], found?], ...]``
(``found``: how many of the rows the search found, when the plan's completion added more), ``floor``
the rounded score of the last story when more may follow it (NULL: the list holds every story);
``related_refs`` maps each row a list names to the lists naming it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, nullcontext

import numpy as np

from ..memory import release_free_memory
from ..parallel import quick_switches
from ..store.database import StoredArticle
from ..store.store import Store
from ..store.vector_index import pair_queries
from .plan import MARGIN, STORED_DEPTH, Entry, Owner, Plan, first_search, plans

#: stories kept per article: the default list's 10 three times over (list shaping chooses among 3k, and filters
#: can still fill k); deeper answers are computed on demand
DEPTH = STORED_DEPTH
#: owners computed together (one index search and one scoring call per round): a write's lists
BLOCK = 256
#: a full recomputation's blocks, of neighbouring articles (see :func:`locality`), and how many owners' first
#: index search runs as one (see plan.first_search)
FULL_BLOCK = 1024
SEARCH = 4 * FULL_BLOCK
FORMAT_VERSION = 2  # 2: an entry's rows found by the search, when a completed plan added more
#: over this many articles, a full recomputation of the lists runs after the regrouping commits (:func:`build`)
INLINE_MAX = 50_000
PENDING = "pending"


def encode(plan: Plan) -> str:
    return json.dumps([[e.key, [[r, s, t, int(v)] for r, s, t, v in e.rows], *([] if e.found is None else [e.found])]
                       for e in plan.entries], ensure_ascii=False, separators=(",", ":"))


def decode(floor: float | None, text: str) -> Plan:
    return Plan([Entry(key, [(r, s, t, bool(v)) for r, s, t, v in rows], *found)
                 for key, rows, *found in json.loads(text)], floor)


def fresh(store: Store) -> bool:
    """Whether the stored lists belong to the current groups."""
    db = store.db
    return db.get_meta("related_lists") == f"{FORMAT_VERSION}:{DEPTH}:{db.get_meta('groups_generation')}"


def answers_stored(store: Store, articles: int | None = None) -> bool:
    """Whether ``related`` answers come from stored lists now (else each is computed): the store keeps lists at
    its size (``articles``, when the caller has counted them) and they are current."""
    n = store.db.count() if articles is None else articles
    return n <= store.config.related_lists_max and fresh(store)


def due(store: Store) -> bool:
    """Whether the store's lists wait for :func:`build` (a full regrouping of a large store committed without
    them, or a build that stopped)."""
    return (store.db.get_meta("related_lists") or "").startswith(PENDING + ":")


def load_plan(store: Store, rowid: int) -> Plan | None:
    """An article's stored plan, when the store keeps current ones."""
    if not fresh(store):
        return None
    got = store.db.related_plan(rowid)
    return None if got is None else decode(*got)


def compute(store: Store, rows: Iterable[int], block: int = BLOCK, search: int | None = None, depth: int = DEPTH,
            complete: bool = True) -> Iterator[tuple[int, Plan]]:
    """The plans of stored articles, ``block`` at a time; ``search``: how many owners' first index search runs
    as one (a multiple of ``block``; default ``block``), the C allocator's free pages handed back after each.
    ``depth``, ``complete``: as :func:`~.plan.plans` takes them (by default a stored list's plan; an answer
    that is not kept needs only its own depth, uncompleted).

    With several searches, the next one runs on a second thread while this one's plans are made: the search
    is FAISS and BLAS work outside the GIL, the plans mostly Python, so the two share the cores."""
    rows = [int(r) for r in rows]
    step = search or block
    parts = iter(range(0, len(rows), step))
    with ThreadPoolExecutor(1, thread_name_prefix="storycluster-search") as pool, \
            quick_switches() if len(rows) > step else nullcontext():
        ahead = _owners(store, rows, parts, step, pool, depth)
        while ahead is not None:
            part, arts, owners, searching = ahead
            ahead = _owners(store, rows, parts, step, pool, depth)  # the next search starts before these plans
            scores, found = searching.result()
            for b in range(0, len(part), block):
                some = part[b:b + block]
                yield from zip(some, plans(store, owners[b:b + block], depth, complete=complete,
                                           arts={r: arts[r] for r in some},
                                           first=(scores[2 * b:2 * (b + block)], found[2 * b:2 * (b + block)])),
                               strict=True)
            if search:  # a search's plans all taken: the pages their arrays freed back to the system
                release_free_memory()


def _owners(store: Store, rows: list[int], parts: Iterator[int], step: int, pool: ThreadPoolExecutor, depth: int
            ) -> tuple[list[int], dict[int, StoredArticle], list[Owner], Future] | None:
    """The next part of ``step`` rows that holds stored articles: the rows, articles, owners, and their first
    search started on ``pool``; None when every part is taken."""
    db = store.db
    for s in parts:
        arts = db.articles_by_rowid(rows[s:s + step])
        part = [r for r in rows[s:s + step] if r in arts]
        if not part:
            continue
        vectors = store.vectors(part)
        gof = db.groups_of(part)
        members = db.members_of(set(gof.values()))
        owners = [Owner.stored(arts[r], vectors[n], gof.get(r), members.get(gof.get(r) or "", []))
                  for n, r in enumerate(part)]
        return part, arts, owners, pool.submit(first_search, store, owners, depth)
    return None


def locality(store: Store, rows: Iterable[int]) -> list[int]:
    """``rows`` in an order that keeps neighbours together (an IVF index's lists, one after another; else
    ascending): the blocks of :func:`compute` then share most of their candidates."""
    wanted = {int(r) for r in rows}
    index = store.index
    if not index.nlist:
        return sorted(wanted)
    labels = index.slot_ids()
    out = [int(r) for lst in range(index.nlist) for r in labels[index.list_slots(lst)].tolist() if r in wanted]
    seen = set(out)
    return out + sorted(wanted - seen)


def _write(store: Store, computed: Iterable[tuple[int, Plan]]) -> int:
    n = 0
    batch: list[tuple[int, float | None, str, set[int]]] = []
    for r, p in computed:
        batch.append((r, p.floor, encode(p), {row for e in p.entries for row, *_ in e.rows}))
        n += 1
        if len(batch) >= 1024:
            store.db.put_related(batch)
            batch = []
    store.db.put_related(batch)
    return n


def refresh(store: Store, was_fresh: bool, whole: bool, touched: set[int], changed: set[int]) -> int:
    """Bring the stored lists to the groups just written (inside the regrouping's transaction); returns how many
    lists were computed. ``was_fresh``: the lists matched the groups before; ``whole``: a full regrouping;
    ``touched``: rows added, updated, removed or regrouped; ``changed``: rows whose content may have changed."""
    db = store.db
    if db.count() > store.config.related_lists_max:
        if db.get_meta("related_lists") != "off":
            db.clear_related()
        db.set_meta("related_lists", "off")  # related computes every answer
        return 0
    stored = set(db.rowids().tolist())
    if whole or not was_fresh:
        db.clear_related()
        if len(stored) > INLINE_MAX:  # after the commit, by one process per core: pending until then
            db.set_meta("related_lists", f"{PENDING}:{db.get_meta('groups_generation')}")
            return 0
        n = _write(store, compute(store, locality(store, stored), block=FULL_BLOCK, search=SEARCH))
    else:
        live_changed = changed & stored
        dirty = (touched & stored) | db.related_owners(touched | _group_mates(store, live_changed)) | \
            _entering(store, live_changed)
        gone = {o for o in db.related_owners(touched) | touched if o not in stored}
        old = db.related_plans(dirty | gone)
        db.drop_related({o: {r for e in decode(*old[o]).entries for r, *_ in e.rows} for o in old})
        n = _write(store, compute(store, locality(store, dirty & stored), search=SEARCH))
    db.set_meta("related_lists", f"{FORMAT_VERSION}:{DEPTH}:{db.get_meta('groups_generation')}")
    return n


def _group_mates(store: Store, rows: set[int]) -> set[int]:
    gids = set(store.db.groups_of(rows).values())
    return {m for ms in store.db.members_of(gids).values() for m in ms}


def _entering(store: Store, rows: set[int]) -> set[int]:
    """Stored articles whose list a changed article could now enter: it ranks at or above the list's last
    story, or at or above the related threshold when the list holds every story.

    The changed articles' searches go over every vector (:meth:`VectorIndex.search_all`): under an IVF index an
    article's own search probes the lists nearest it, while another article's list search probes those nearest
    that one, and can find it there (a store keeps lists up to ``related_lists_max`` articles: a few dense
    products per write)."""
    if not rows:
        return set()
    t, index = store.thresholds, store.index
    lowest = db_floor if (db_floor := store.db.min_related_floor()) is not None else t.related
    cutoff = min(lowest, t.related) - MARGIN
    ordered = sorted(rows)
    vecs = store.vectors(ordered)
    queries = pair_queries(vecs, t.title_weight)
    best: dict[int, float] = {}  # each article found at or above the cutoff: its best score from any query
    todo = np.arange(len(ordered))
    fetch = 64
    while len(todo):
        pairs = np.stack([2 * todo, 2 * todo + 1], axis=1).ravel()
        scores, found = index.search_all(queries[pairs], min(fetch, max(len(index), 1)))
        for p, (row_scores, row_found) in enumerate(zip(scores.tolist(), found.tolist(), strict=True)):
            r = ordered[todo[p // 2]]
            for sc, o in zip(row_scores, row_found, strict=True):
                if o >= 0 and o != r and sc >= cutoff:
                    best[o] = max(sc, best.get(o, -1.0))
        if fetch >= len(index):
            break
        last = np.maximum(scores[0::2, -1], scores[1::2, -1])
        todo = todo[last >= cutoff]  # more at or above the cutoff may follow
        fetch *= 4
    floors = store.db.related_floors(best)
    return {o for o, sc in best.items() if sc >= (t.related if (floor := floors.get(o)) is None else floor) - MARGIN}


def build(store: Store, workers: int = 1, part: int | None = None, progress: Callable[[int], None] | None = None
          ) -> int:
    """Compute every list of a store whose lists are pending (see :func:`due`), after the regrouping committed:
    the caller holds the write lock, outside a transaction, the index saved. With ``workers`` > 1 (and more than
    two parts of ``part`` articles), parts of neighbouring articles are planned by as many processes
    (:func:`~storycluster.parallel.process_map`; each maps the saved index from its file, so that one copy
    serves them all) and kept aside here as they come (:meth:`~.store.database.Database.stage_related`), then
    written into the store in key order in one last transaction, which makes them current. A worker process
    that stops (killed, out of memory) leaves its parts to this process. Returns how many lists were
    computed."""
    db = store.db
    part = part or SEARCH
    generation = db.get_meta("groups_generation")
    if db.get_meta("related_lists") != f"{PENDING}:{generation}":  # (the regrouping cleared the old lists)
        return 0
    db.stage_related()
    parallel = workers > 1 and db.count() > 2 * part and store.index_saved() and store.index.index_type == "ivf"
    n = 0
    with store.index_mapped() if parallel else nullcontext():
        order = locality(store, db.rowids().tolist())
        if parallel and store.index_rebuilt is None:
            from functools import partial

            from ..errors import StoryclusterError
            from ..parallel import process_map

            parts = [order[s:s + part] for s in range(0, len(order), part)]
            done: set[int] = set()
            try:
                with closing(process_map(partial(_part_plans, str(store.path), db.generation), parts,
                                         min(workers, len(parts)))) as planned:
                    for rows in planned:
                        n += _stage(store, rows, progress)
                        done.update(r for r, *_ in rows)
                        del rows
                        release_free_memory()
            except StoryclusterError:  # a worker process stopped (killed, out of memory): this one plans the rest
                order = [r for r in order if r not in done]
            else:
                order = []
        batch: list[tuple[int, float | None, str, bytes]] = []
        for r, p in compute(store, order, block=FULL_BLOCK, search=SEARCH):
            batch.append(_row(r, p))
            if len(batch) >= part:
                n += _stage(store, batch, progress)
                batch = []
        n += _stage(store, batch, progress)
    with db.transaction():
        db.commit_staged_related()
        db.set_meta("related_lists", f"{FORMAT_VERSION}:{DEPTH}:{generation}")
    return n


def _row(r: int, p: Plan) -> tuple[int, float | None, str, bytes]:
    """A computed list as it crosses a process boundary: owner, floor, plan JSON, the rows it names (int64)."""
    named = np.fromiter({row for e in p.entries for row, *_ in e.rows}, dtype=np.int64)
    return r, p.floor, encode(p), named.tobytes()


def _stage(store: Store, rows: list[tuple[int, float | None, str, bytes]], progress) -> int:
    if rows:
        with store.db.transaction():
            store.db.put_related(((r, f, p, np.frombuffer(named, dtype=np.int64).tolist()) for r, f, p, named in rows),
                                 staged=True)
        if progress is not None:
            progress(len(rows))
    return len(rows)


#: a worker process's store, opened by its first part (see :func:`part_store`)
_part: Store | None = None


def part_store(path: str, generation: int, what: str) -> Store:
    """A worker process's store (:func:`~storycluster.parallel.process_map`), opened on its first part: a read
    transaction at ``generation`` (a write committed since the work began is an error: its parts would mix two
    states), the index mapped from its file (the processes share its pages). ``what``: the command, to name in
    the error."""
    global _part
    from ..errors import StoreError

    store, _part = _part or Store(path), None
    store.map_index = True
    store.db.rollback()  # each part its own read: the write-ahead log can be checkpointed between them
    store.db.begin_read()
    problem = None
    if store.db.generation != generation or not store.index_saved():
        problem = (f"the store was written while {what} ran (generation {store.db.generation}, it began at "
                   f"{generation}); run {what} again")
    elif store.index is not None and store.index_rebuilt is not None:  # the saved file could not be read
        problem = f"{store.index_rebuilt}; run {what} again, or with --workers 1"
    if problem is not None:
        store.close()
        raise StoreError(f"{path}: {problem}")
    _part = store
    return store


def _part_plans(path: str, generation: int, part: list[int]) -> list[tuple[int, float | None, str, bytes]]:
    """A worker process's lists of ``part`` (rows in neighbour order): one index search for them all, then their
    plans."""
    store = part_store(path, generation, "the related lists' build")
    return [_row(r, p) for r, p in compute(store, part, block=FULL_BLOCK, search=len(part))]
