"""From cluster labels to stored groups: representative, member scores and tiers, stable group ids."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from ..lexical import jaccard
from ..memory import release_free_memory
from ..results import Group as GroupRecord
from ..results import Member, Tier
from .graph import PairScorer, candidate_edges
from .linkage import SparseAverageLinkage
from .scoring import similarity_from


class ByRow(Protocol):
    """Articles by row id (a dict of stored articles, or the distributed path's table)."""

    def __getitem__(self, row: int, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class ArticleFacts:
    """What choosing a representative needs to know of an article."""

    id: str
    published_ts: float | None
    text_length: int


@dataclass(slots=True)
class Group:
    group_id: str
    representative: int  # row id
    #: (row id, score against the representative, tier, row id of the copy it duplicates or None)
    members: list[tuple[int, float, str, int | None]]


def cluster_labels(scorer: PairScorer, k: int = 20, random_state: int = 0, index=None,
                   rowids: np.ndarray | None = None, neighbours=None, lexical: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels (index of a root member) for every row of the scorer's arrays. ``index``/``rowids``: a
    store's vector index over exactly these rows, reused for the neighbour graph; ``neighbours``/``lexical``:
    candidates computed elsewhere (see :func:`.graph.candidate_edges`)."""
    n = len(scorer.lead)
    m = scorer.model
    linkage = SparseAverageLinkage(threshold=m.group_threshold, floor=m.group_floor, random_state=random_state)
    edges, weights = candidate_edges(scorer, k=k, index=index, rowids=rowids, neighbours=neighbours, lexical=lexical,
                                     at_least=linkage.edge_threshold)
    release_free_memory()  # the edge scoring's chunks, freed on worker threads
    return linkage.fit(n, edges, weights, scorer).labels_


def representative(members: Sequence[int], facts: dict[int, ArticleFacts],
                   central: dict[int, float] | None = None) -> int:
    """The original: the earliest published member; without dates, the most ``central`` one (the text the others
    copy: see :func:`centrality`), then the shorter (of two copies, the one with a line appended is the reprint),
    then by id."""
    central = central or {}

    def key(r: int) -> tuple:
        f = facts[r]
        return (f.published_ts is None, f.published_ts or 0.0, -round(central.get(r, 0.0), 6), f.text_length, f.id)

    return min(members, key=key)


def centrality(idx: np.ndarray, lead: np.ndarray, scorer: PairScorer, max_full: int = 300) -> np.ndarray:
    """How much of each member (``idx``: scorer rows; ``lead``: their lead vectors) the others share: the summed
    MinHash Jaccard to the other members (copies of one text all contain the original; each reprint adds its own
    lines), plus its cosine to the group's mean lead vector as a tie-break below one Jaccard step (rewrites and
    translations share no shingles). Groups over ``max_full`` members use the cosine alone, to stay linear in
    memory."""
    lead = np.asarray(lead, dtype=np.float64)
    mean = lead.mean(axis=0)
    cos = lead @ mean / max(float(np.linalg.norm(mean)), 1e-12)
    if len(idx) > max_full:
        return cos
    jac = np.asarray(jaccard(scorer.sigs[idx][:, None, :], scorer.sigs[idx][None, :, :]))
    np.fill_diagonal(jac, 0.0)
    return np.round(jac.sum(axis=1), 6) + 1e-3 * cos


def build_groups(rowids: np.ndarray, labels: np.ndarray, scorer: PairScorer, facts: dict[int, ArticleFacts],
                 previous: dict[int, str], reserved: set[str] | None = None) -> list[Group]:
    """Groups of 2+ members. A previous group's id (``previous`` maps row id → old group id) goes to the group
    that holds most of its members (:func:`_inherited_ids`); a group without one gets an id derived from its
    members, never one of ``reserved`` (ids of groups outside a partial regrouping)."""
    t = scorer.thresholds
    clusters: dict[int, list[int]] = {}
    for idx, lab in enumerate(labels):
        clusters.setdefault(int(lab), []).append(idx)
    multi = [m for m in clusters.values() if len(m) > 1]
    multi.sort(key=lambda m: (-len(m), min(facts[int(rowids[i])].id for i in m)))
    used: set[str] = set(reserved or ())
    # every member against its group's representative, scored in one call (one call per group costs per-call
    # overhead at every group of a large archive)
    in_groups = np.fromiter((i for m in multi for i in m), dtype=np.int64, count=sum(map(len, multi)))
    # one read (an IVF store decodes its 8-bit codes)
    leads = np.asarray(scorer.lead[in_groups]) if len(in_groups) else np.zeros((0, 0), dtype=np.float32)
    reps, centrals = [], []
    start = 0
    for m in multi:
        rows = [int(rowids[i]) for i in m]
        cent = centrality(np.asarray(m), leads[start:start + len(m)], scorer)
        start += len(m)
        central = dict(zip(rows, cent.tolist(), strict=True))
        centrals.append(central)
        reps.append(m[rows.index(representative(rows, facts, central))])
    rep = np.repeat(np.asarray(reps, dtype=np.int64), [len(m) for m in multi])
    sims = similarity_from(scorer.pairs(in_groups, rep), jaccard(scorer.sigs[in_groups], scorer.sigs[rep]),
                           scorer.codes[in_groups] == scorer.codes[rep], t,
                           scorer.slopes(in_groups, rep), scorer.date_gap(in_groups, rep)).tolist() \
        if len(in_groups) else []
    inherited = _inherited_ids([[int(rowids[i]) for i in m] for m in multi], previous, used)
    groups = []
    start = 0
    for g, (m, rep_idx, central) in enumerate(zip(multi, reps, centrals, strict=True)):
        rows = [int(rowids[i]) for i in m]
        rep_row = int(rowids[rep_idx])
        dup_of = _duplicate_of(np.asarray(m), rows, scorer, facts, central)
        members = []
        for r, sim in zip(rows, sims[start:start + len(m)], strict=True):
            score = 1.0 if r == rep_row else round(sim, 4)
            tier = "duplicate" if r in dup_of else "same_story"
            copy_of = dup_of.get(r)
            members.append((r, score, tier, copy_of if copy_of != r else None))
        start += len(m)
        members.sort(key=lambda x: (x[0] != rep_row, -x[1], facts[x[0]].id))
        gid = inherited.get(g) or _new_id(sorted(facts[r].id for r in rows), used)
        used.add(gid)
        groups.append(Group(gid, rep_row, members))
    return groups


def group_record(gid: str, rep: int, members: list[tuple[int, float, str, int | None]], arts: ByRow) -> GroupRecord:
    """A group as ``dedup`` prints it; ``arts``: row → an object with id, title, url, source, published, lang."""
    ordered = sorted(members, key=lambda m: (m[0] != rep, -m[1], arts[m[0]].id))
    return GroupRecord(group=gid, representative=arts[rep].id, size=len(members),
                 members=[Member(id=arts[r].id, score=s, tier=cast(Tier, t),
                                 # under 0.5 against the representative: it joined through the group's average link
                                 via="pair" if t == "duplicate" or s >= 0.5 else "group",
                                 duplicate_of=arts[d].id if d else None,
                                 title=arts[r].title, url=arts[r].url, source=arts[r].source,
                                 published=arts[r].published, lang=arts[r].lang)
                          for r, s, t, d in ordered])


def _duplicate_of(idx: np.ndarray, rows: list[int], scorer: PairScorer, facts: dict[int, ArticleFacts],
                  central: dict[int, float], max_full: int = 300) -> dict[int, int]:
    """Members that are lexical copies of another member: row id → the copy that represents them
    (:func:`representative`; itself when it is that one). Groups over ``max_full`` members compare equal
    normalized content only, to stay linear in memory."""
    t = scorer.thresholds
    n = len(idx)
    if n <= max_full:
        jac = jaccard(scorer.sigs[idx][:, None, :], scorer.sigs[idx][None, :, :])
        dup = (jac >= t.duplicate_jaccard) | (scorer.codes[idx][:, None] == scorer.codes[idx][None, :])
    else:
        dup = scorer.codes[idx][:, None] == scorer.codes[idx][None, :]
    np.fill_diagonal(dup, False)
    out: dict[int, int] = {}
    for a in range(n):
        partners = [rows[b] for b in np.flatnonzero(dup[a])]
        if partners:
            out[rows[a]] = representative([rows[a], *partners], facts, central)
    return out


def _inherited_ids(groups: list[list[int]], previous: dict[int, str], used: set[str]) -> dict[int, str]:
    """Which previous id each group (by position) keeps: an id goes to the group holding most of its members
    (the largest overlaps are settled first, ties to the group listed first), so a group that lost a member
    to a new group keeps its id rather than handing it to the group that took the member; a group whose ids
    all went elsewhere gets none. Ids in ``used`` are not handed out."""
    overlaps = [(-n, g, gid) for g, rows in enumerate(groups)
                for gid, n in Counter(previous[r] for r in rows if r in previous).items() if gid not in used]
    out: dict[int, str] = {}
    taken: set[str] = set()
    for _, g, gid in sorted(overlaps):
        if g not in out and gid not in taken:
            out[g] = gid
            taken.add(gid)
    return out


def _new_id(member_ids: list[str], used: set[str]) -> str:
    h = hashlib.blake2b("\x1f".join(member_ids).encode("utf-8"), digest_size=6).hexdigest()
    gid = f"g{h}"
    while gid in used:
        h = hashlib.blake2b(h.encode(), digest_size=6).hexdigest()
        gid = f"g{h}"
    return gid


def group_changes(previous: dict[int, str], current: dict[int, str], ids: dict[int, str]
                  ) -> list[tuple[str, str, list[str], list[str]]]:
    """What a regrouping did, as (kind, group id, other group ids, article ids), from the row → group maps
    before and after (rows no longer stored are left out of ``previous`` by the caller).

    Kinds: ``new`` (a group of articles that were in none), ``joined`` (articles came into a kept group,
    from the groups listed, if any), ``left`` (articles of a kept group are now in no group), ``split``
    (articles of a kept group went to the groups listed), ``merged`` (a group id ended; its articles are now
    in the groups listed), ``dissolved`` (a group id ended and its articles are in no group). ``Archive.remove``
    logs a fifth kind itself: ``removed`` (members of the group removed from the store).
    """
    def invert(m: dict[int, str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for r, g in m.items():
            out.setdefault(g, []).append(r)
        return out

    before, after = invert(previous), invert(current)
    out: list[tuple[str, str, list[str], list[str]]] = []
    for g in sorted(before):
        rows = sorted(before[g], key=lambda r: ids[r])
        if g in after:
            moved = [r for r in rows if current.get(r) not in (g, None)]
            gone = [r for r in rows if current.get(r) is None]
            if moved:
                out.append(("split", g, sorted({current[r] for r in moved}), [ids[r] for r in moved]))
            if gone:
                out.append(("left", g, [], [ids[r] for r in gone]))
        else:
            into = sorted({current[r] for r in rows if r in current})
            out.append(("merged" if into else "dissolved", g, into, [ids[r] for r in rows]))
    for g in sorted(after):
        rows = sorted(after[g], key=lambda r: ids[r])
        if g not in before:
            if not any(r in previous for r in rows):
                out.append(("new", g, [], [ids[r] for r in rows]))
            continue
        joined = [r for r in rows if previous.get(r) != g]
        if joined:
            out.append(("joined", g, sorted({previous[r] for r in joined if r in previous}), [ids[r] for r in joined]))
    return out
