"""Related lists for every article: ``storycluster recommend --out related.jsonl`` (static sites, CMS
imports).

The lists come from the ones the store keeps (:mod:`storycluster.related.stored`), read and shaped in blocks
(a large export's blocks by one worker process per core).
A store without current lists (one over ``related_lists_max`` articles, or written by an earlier version), or a
``k`` deeper than the stored lists, has them computed here in blocks of neighbouring articles, not kept, and
written in that order: each plan only as deep as its answer (``k`` stories, as ``related`` plans one), by one
worker process per core (the plans are Python that holds the GIL), each given parts of neighbours in turn and
mapping the saved index from its file, so that one copy of it serves them all. Every way gives ``related``'s
answer.

Incremental: the output file keeps a sidecar state (``<out>.state.json``: k, the store generation of the
export and the exported ids). A later run rewrites only the lists the store recomputed since (each stored
list carries the generation it was computed at) and those of new articles; the rest are copied from the
previous output, and removed articles are dropped. Written to a stream instead (standard output), every list
is written and no state is kept.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from . import queries
from .archive import Archive
from .memory import release_free_memory
from .parallel import cores, process_map
from .ranking import RelatedOptions
from .related import Plan, answer, wanted
from .related.stored import DEPTH, compute, decode, fresh, locality, part_store
from .store.database import Card
from .store.folder import atomic_write_text
from .store.store import Store

STATE_VERSION = 3  # 3: the export's generation; lists carry theirs in the store
BLOCK = 2048
#: a worker process's blocks (see ``--workers``): smaller, so that the candidates of a block in each of two or
#: more processes take about the memory of one process's block
PART_BLOCK = 1024
#: lists whose first index searches run as one when computed (see related.plan.first_search)
SEARCH = 4 * BLOCK


@dataclass(slots=True)
class RecommendReport:
    articles: int = 0
    recomputed: int = 0  # lists written from the store (or computed) in this run
    reused: int = 0  # lists copied from the previous output
    removed: int = 0
    seconds: float = 0.0


def recommend(archive: Archive, out: Path | TextIO, k: int = 10, full: bool = False,
              progress: Callable[[int], None] | None = None, workers: int | None = None) -> RecommendReport:
    """Write one JSON object per stored article to ``out`` (``{"id", "related": [...]}``), copying the previous
    run's lists that the store has not recomputed since (see the module docstring). ``out`` may be an open text
    stream (every list written, no state kept). ``workers``: processes that compute lists the store does not
    keep (default: one per core)."""
    start = time.perf_counter()
    archive.ensure_groups()
    report = RecommendReport()
    with archive.reading():
        db = archive.db
        stored = fresh(archive.store) and k <= DEPTH
        rowids = db.ids_to_rowids()
        if not isinstance(out, Path):
            _write_lists(archive, out, rowids, set(rowids.values()), {}, k, stored, report, progress, workers)
            out.flush()
            report.seconds = time.perf_counter() - start
            return report
        state_path = out.with_name(out.name + ".state.json")
        state = None if full or not stored else _read_state(state_path, out, k)
        redo: set[int] = set(rowids.values())
        previous = _previous_lines(out) if state is not None else {}
        if state is not None and previous:
            redo = db.related_since(int(state["generation"]))
            report.removed = len(set(state["ids"]) - rowids.keys())
        tmp = out.with_name(out.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                _write_lists(archive, fh, rowids, redo, previous, k, stored, report, progress, workers)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:  # an error, Ctrl-C: no partial file left beside the output
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, out)
        atomic_write_text(state_path, json.dumps({
            "version": STATE_VERSION, "k": k, "generation": db.generation if stored else -1, "ids": sorted(rowids),
            "output_bytes": out.stat().st_size}, ensure_ascii=False))
    report.seconds = time.perf_counter() - start
    return report


def _write_stored(archive: Archive, fh: TextIO, ids: list[str], rowids: dict[str, int], redo: set[int],
                  previous: dict[str, str], k: int, report: RecommendReport,
                  progress: Callable[[int], None] | None, workers: int) -> None:
    """Every article's answer from its stored list (those not in ``redo`` and in ``previous``: the previous
    output's line), in id order, a block at a time; with more than one worker and more than two parts of
    :data:`SEARCH` lists to write, the blocks' answers are made by as many processes (the plans' decoding, the
    cards' reads and the JSON hold the GIL)."""
    blocks = [ids[s:s + BLOCK] for s in range(0, len(ids), BLOCK)]
    todo = [[rowids[i] for i in block if rowids[i] in redo or i not in previous] for block in blocks]
    store = archive.store
    made: Iterator[list[str]]
    if workers > 1 and sum(map(len, todo)) > 2 * SEARCH and store.index_saved():
        made = process_map(partial(_part_stored, str(archive.path), archive.db.generation, k), todo, workers)
    else:
        made = (_stored_lines(store, rows, k) for rows in todo)
    with closing(made):  # the processes stopped on the way out, whatever stops the loop
        for block, rows, lines in zip(blocks, todo, made, strict=True):
            new = dict(zip(rows, lines, strict=True))
            for article_id in block:
                line = new.get(rowids[article_id])
                if line is None:
                    line = previous[article_id]
                    report.reused += 1
                else:
                    report.recomputed += 1
                fh.write(line)
                report.articles += 1
            if progress is not None:
                progress(len(block))


def _stored_lines(store: Store, rows: list[int], k: int) -> list[str]:
    """The output lines of ``rows`` from their stored plans (a stored list that cannot give an answer: as
    related computes it)."""
    plans = [(r, decode(*got)) for r, got in store.db.related_plans(rows).items()]
    return _line_list(store, rows, plans, k)


def _part_stored(path: str, generation: int, k: int, rows: list[int]) -> list[str]:
    """A worker process's lines of ``rows`` from their stored lists, at the export's generation."""
    return _stored_lines(part_store(path, generation, "recommend"), rows, k)


def _answers(store: Store, rows: list[int], plans: list[tuple[int, Plan]], k: int,
             cards: dict[int, Card] | None = None) -> dict[int, list]:
    """The default answer of each (row, plan), the articles and groups they show read once for all (their cards
    into ``cards`` when given); the rows without one (``answer`` gives None: a plan shallower than k) are left
    out."""
    db = store.db
    shown = [e for _, p in plans for e in p.entries[:k]]
    members = db.members_of({e.group for e in shown if e.group is not None})
    cards = {} if cards is None else cards
    cards.update(db.cards({*rows, *(e.rows[0][0] for e in shown), *(m for ms in members.values() for m in ms)}))
    out: dict[int, list] = {}
    for r, plan in plans:
        items = answer(store, plan, k, RelatedOptions(), r, cards[r].published_ts, cards=cards, members=members)
        if items is not None:
            out[r] = items
    return out


def _write_computed(archive: Archive, fh: TextIO, rowids: dict[str, int], k: int, report: RecommendReport,
                    progress: Callable[[int], None] | None, workers: int) -> None:
    """Every article's default answer from plans computed now (not kept), in blocks of neighbours; with more
    than one worker, parts of :data:`SEARCH` neighbours are computed by as many processes."""
    store = archive.store
    # the workers map the saved index: this process reads it the same way, and they share one copy of it
    parallel = workers > 1 and len(rowids) > 2 * SEARCH and store.index_saved()
    with store.index_mapped() if parallel else nullcontext():
        order = locality(store, rowids.values())
        if parallel and store.index_rebuilt is None:  # the saved file was read, not rebuilt from the database
            parts = [order[s:s + SEARCH] for s in range(0, len(order), SEARCH)]
            fh.flush()
            # closed on the way out, whatever stops the loop (Ctrl-C, an error): the processes are stopped then
            with closing(process_map(partial(_part_lines, str(archive.path), archive.db.generation, k), parts,
                                     min(workers, len(parts)))) as lines:
                for part, data in zip(parts, lines, strict=True):
                    fh.buffer.write(data)  # UTF-8 already
                    del data
                    release_free_memory()  # a part's lines, received on the pool's thread: back to the system
                    _counted(report, progress, len(part))
            return
        for n, text in _computed_lines(store, order, k, SEARCH):
            fh.write(text)
            _counted(report, progress, n)


def _computed_lines(store: Store, order: list[int], k: int, search: int, block: int = BLOCK
                    ) -> Iterator[tuple[int, str]]:
    """The output lines of the rows of ``order`` from plans computed now, ``block`` rows at a time (how many,
    and their lines), their first index searches ``search`` owners at a time."""
    rest = iter(order)
    part: list[int] = []
    got: list[tuple[int, Plan]] = []
    for r, plan in compute(store, order, block=block, search=search, depth=wanted(k, RelatedOptions()),
                           complete=False):
        for q in rest:  # in order; a row compute did not plan is answered as related answers it
            part.append(q)
            if q == r:
                break
        got.append((r, plan))
        if len(part) >= block:
            yield len(part), _lines(store, part, got, k)
            part, got = [], []
    part.extend(rest)
    if part:
        yield len(part), _lines(store, part, got, k)


def _counted(report: RecommendReport, progress: Callable[[int], None] | None, n: int) -> None:
    report.recomputed += n
    report.articles += n
    if progress is not None:
        progress(n)


def _lines(store: Store, part: list[int], got: list[tuple[int, Plan]], k: int) -> str:
    """The output lines of ``part`` (rows in order) from their plans."""
    return "".join(_line_list(store, part, got, k))


def _line_list(store: Store, part: list[int], got: list[tuple[int, Plan]], k: int) -> list[str]:
    cards: dict[int, Card] = {}
    lists = _answers(store, part, got, k, cards)
    return [json.dumps({"id": cards[r].id, "related": lists[r] if r in lists else
                        queries.related(store, cards[r].id, k=k)["related"]}, ensure_ascii=False) + "\n"
            for r in part]


def _part_lines(path: str, generation: int, k: int, part: list[int]) -> bytes:
    """A worker process's output lines (UTF-8) for ``part``, rows in neighbour order: one index search for them
    all, then their plans and answers, at the export's generation (see :func:`~.related.stored.part_store`)."""
    store = part_store(path, generation, "recommend")
    return "".join(text for _, text in _computed_lines(store, part, k, len(part), PART_BLOCK)).encode()


def _write_lists(archive: Archive, fh: TextIO, rowids: dict[str, int], redo: set[int], previous: dict[str, str],
                 k: int, stored: bool, report: RecommendReport, progress, workers: int | None) -> None:
    if stored:
        _write_stored(archive, fh, sorted(rowids), rowids, redo, previous, k, report, progress, workers or cores())
    else:  # computed in blocks of neighbours, written in that order
        _write_computed(archive, fh, rowids, k, report, progress, workers or cores())


def _previous_lines(out: Path) -> dict[str, str]:
    """The previous output's lines by article id; empty when it cannot be read back (edited by hand, damaged):
    then every list is written anew."""
    previous: dict[str, str] = {}
    try:
        with out.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                previous[row["id"]] = line
    except (OSError, ValueError, KeyError, TypeError):  # JSON and UTF-8 errors are ValueErrors
        return {}
    return previous


def _read_state(path: Path, out: Path, k: int) -> dict | None:
    """The previous run's state when it matches the output file and ``k``; else None (full run)."""
    if not path.exists() or not out.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("generation"), int) or \
            not isinstance(state.get("ids"), list):  # not a state this version wrote (edited, damaged)
        return None
    if (state.get("version") != STATE_VERSION or state.get("k") != k or state["generation"] < 0
            or state.get("output_bytes") != out.stat().st_size):
        return None
    return state
