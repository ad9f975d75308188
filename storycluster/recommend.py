"""Related lists for every article: ``storycluster recommend --out related.jsonl`` (static sites, CMS
imports).

Incremental: the output file keeps a sidecar state (``<out>.state.json``: store generation, k, each article's
record hash and its group's fingerprint: the group id and its members in order). A later run recomputes only the
lists that may have changed since: of articles added, updated, removed or whose group changed, of the stored
articles whose list named one of those, and of those that a new or changed article would now enter (it scores
at least as high as the last entry of their list, or their list is short: found by a search that goes on until
the scores fall below every list's last entry). Everything else is copied from the previous output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import Archive
from .cluster.scoring import semantic_similarity
from .store.folder import atomic_write_text

STATE_VERSION = 2  # 2: groups hold fingerprints, not ids


@dataclass(slots=True)
class RecommendReport:
    articles: int = 0
    recomputed: int = 0
    reused: int = 0
    removed: int = 0
    seconds: float = 0.0


def _record_hashes(archive: Archive) -> dict[str, str]:
    return archive.db.ids_to_record_hashes()


def recommend(archive: Archive, out: Path, k: int = 10, full: bool = False,
              progress: Callable[[int], None] | None = None) -> RecommendReport:
    """Write one JSON object per stored article to ``out`` (``{"id", "related": [...]}``), reusing the
    previous run's lists where the neighbourhood did not change (see the module docstring)."""
    import faiss

    # thousands of two-vector searches: FAISS's OpenMP team costs more than it saves on each (most on a busy
    # machine), so they run on this thread alone
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _recommend(archive, out, k, full, progress)
    finally:
        faiss.omp_set_num_threads(threads)


def _recommend(archive: Archive, out: Path, k: int, full: bool,
               progress: Callable[[int], None] | None) -> RecommendReport:
    import time

    start = time.perf_counter()
    state_path = out.with_name(out.name + ".state.json")
    state = None if full else _read_state(state_path, out, k)
    archive.ensure_groups()
    report = RecommendReport()
    with archive.reading():
        hashes = _record_hashes(archive)
        groups = _group_fingerprints(archive)
        previous: dict[str, dict] = {}
        if state is not None:
            with out.open(encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    previous[row["id"]] = row
        dirty = set(hashes) if state is None else _dirty(archive, state, hashes, groups, previous, k)
        report.removed = 0 if state is None else len(set(state["records"]) - set(hashes))
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for article_id in sorted(hashes):
                if article_id in dirty or article_id not in previous:
                    row = {"id": article_id, **{"related": archive.related(article_id, k=k)["related"]}}
                    report.recomputed += 1
                else:
                    row = previous[article_id]
                    report.reused += 1
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                report.articles += 1
                if progress is not None:
                    progress(1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        atomic_write_text(state_path, json.dumps({
            "version": STATE_VERSION, "k": k, "generation": archive.db.generation, "records": hashes,
            "groups": groups, "output_bytes": out.stat().st_size}, ensure_ascii=False))
    report.seconds = time.perf_counter() - start
    return report


def _group_fingerprints(archive: Archive) -> dict[str, str]:
    """Each grouped article's group id and a digest of the group's members in their order (``also_in`` lists
    them so): a list naming a member changes when either does."""
    import hashlib

    ids = {r: i for i, r in archive.db.ids_to_rowids().items()}
    out: dict[str, str] = {}
    for gid, rep, members in archive.db.groups():
        digest = hashlib.blake2b(repr((rep, [m[0] for m in members])).encode(), digest_size=8).hexdigest()
        for m in members:
            out[ids[m[0]]] = f"{gid}:{digest}"
    return out


def _read_state(path: Path, out: Path, k: int) -> dict | None:
    """The previous run's state when it matches the output file and ``k``; else None (full run)."""
    if not path.exists() or not out.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if state.get("version") != STATE_VERSION or state.get("k") != k or state.get("output_bytes") != out.stat().st_size:
        return None
    return state


def _dirty(archive: Archive, state: dict, hashes: dict[str, str], groups: dict[str, str],
           previous: dict[str, dict], k: int) -> set[str]:
    """Articles whose related list may differ from the previous run's."""
    old = state["records"]
    changed = {i for i, h in hashes.items() if old.get(i) != h}
    removed = set(old) - set(hashes)
    old_groups = state.get("groups", {})
    regrouped = {i for i in set(groups) | set(old_groups) if groups.get(i) != old_groups.get(i)}
    touched = changed | removed | regrouped
    dirty = changed | regrouped  # an article's own group gives its list same-story entries
    # lists that name a touched article (as an entry or in also_in) change with it
    for article_id, row in previous.items():
        named = {x for e in row["related"] for x in (e["id"], *(o["id"] for o in e["also_in"]))}
        if named & touched:
            dirty.add(article_id)
    # lists that a changed article would now enter: it scores at least their last entry (or they are short)
    if changed:
        index = archive.index
        rows = archive.db.ids_to_rowids()
        by_rowid = {r: i for i, r in rows.items()}
        floor = {i: (row["related"][-1]["score"] if len(row["related"]) >= k else -1.0) for i, row in previous.items()}
        # below this no list can take a new entry: the lowest last entry, or the related threshold for short lists
        # (an entry under it is one of the query's own group, and those lists are dirty through ``regrouped``)
        cutoff = min([archive.thresholds.related, *(f for f in floor.values() if f >= 0)])
        d, w = archive.config.dim, archive.thresholds.title_weight
        for article_id in changed:
            q = archive.store.vectors([rows[article_id]])[0]
            fetch = max(4 * k + 16, 64)
            while True:
                scores, found = index.search(q[None, :], fetch)
                if fetch >= len(index) or scores[0, -1] < cutoff - 1e-6:
                    break
                fetch *= 4
            found = np.array([r for r in found[0].tolist() if r >= 0 and by_rowid.get(r, article_id) != article_id])
            if found.size == 0:
                continue
            v = archive.store.vectors(found)
            lead = (v[:, :d] @ q[:d]) / (1.0 - w)
            title = (v[:, d:] @ q[d:]) / w
            for r, sim in zip(found.tolist(), semantic_similarity(lead, title, w).tolist(), strict=True):
                if sim >= floor.get(by_rowid[r], -1.0) - 1e-6:
                    dirty.add(by_rowid[r])
    return dirty & set(hashes)

