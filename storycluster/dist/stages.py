"""The distributed pipeline's stages, engine-neutral: each takes a batch (a ``pyarrow.Table``, or a dict of
columns) and returns one, so any engine that maps batches can run them (:mod:`.ray_engine` runs them on Ray
Data). They call the same functions the single-machine store does (``read_path``, ``prepare_article``, the
embedder, ``featurize.lexical_features``, ``band_keys``, ``assign_lists``, ``block_neighbours``), so the two
paths cannot drift; :func:`group` is the single-machine grouping itself over the gathered columns.

Rows carry ``pos``, the article's position in input order (the row order a store would give them), which
is also the id every later stage uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..article import FIELDS, Article
from ..errors import Problem
from ..ingest import read_path
from ..lexical import BANDS, NUM_PERM, band_keys, shared_key_pairs


# -- read -------------------------------------------------------------------------------------------
def read_file(item: dict, max_text_bytes: int) -> list[dict]:
    """One input path (a file or a folder) → rows: articles with ``file_no``/``ordinal`` (their order in the
    input), and problems (``problem`` set, reported and not grouped), exactly as ``storycluster add`` reads. The
    last row carries the path's notices (fields not read, one line per file) in ``notice``."""
    rows: list[dict] = []
    notices: list[str] = []
    ordinal = 0
    for rec in read_path(item["path"], max_text_bytes, notices):
        if isinstance(rec, Problem):
            rows.append({**dict.fromkeys(FIELDS), "file_no": item["file_no"], "ordinal": -1,
                         "origin": None, "digest": None, "problem": str(rec), "notice": None})
        else:
            rows.append({**rec.to_dict(), "file_no": item["file_no"], "ordinal": ordinal,
                         "origin": rec.origin, "digest": rec.record_hash(), "problem": None, "notice": None})
            ordinal += 1
    if rows and notices:  # a path always gives a row: a file without records is a problem
        rows[-1]["notice"] = "\n".join(notices)
    return rows


def positions(files: list[tuple[int, int, str, str, str]]) -> tuple[dict[int, np.ndarray], list[str], int]:
    """Input order and repeated ids, as ``add`` treats them: from (file_no, ordinal, id, origin, record hash) of
    every article, each file's positions by ordinal (-1 for an id read before, dropped by the caller), the
    problems (an id read before with other fields) and how many records repeat an earlier one field for field
    (stored once, as ``add`` counts them)."""
    files = sorted(files)
    seen: dict[str, tuple[str, str]] = {}
    by_file: dict[int, list[int]] = {}
    problems = []
    repeated = 0
    pos = 0
    for file_no, _, art_id, origin, digest in files:
        if art_id in seen:
            by_file.setdefault(file_no, []).append(-1)
            if seen[art_id][1] == digest:
                repeated += 1
                continue
            path, _, line = (origin or "<input>").rpartition(":")
            problems.append(str(Problem(path or origin, int(line) if line.isdigit() else None, "id",
                                        f"duplicate id '{art_id}' (first at {seen[art_id][0]})",
                                        "ids must be unique across the input (a record repeated field for field is "
                                        "stored once)")))
            continue
        seen[art_id] = (origin or "<input>", digest)
        by_file.setdefault(file_no, []).append(pos)
        pos += 1
    return {f: np.asarray(p, dtype=np.int64) for f, p in by_file.items()}, problems, repeated


def with_positions(batch, by_file: dict[int, np.ndarray]):
    """Add ``pos`` (-1: a duplicate id, dropped by the caller)."""
    import pyarrow as pa

    files = batch.column("file_no").to_numpy()
    ords = batch.column("ordinal").to_numpy()
    pos = np.array([by_file[int(f)][int(o)] for f, o in zip(files, ords, strict=True)], dtype=np.int64)
    return batch.append_column("pos", pa.array(pos))


# -- boilerplate ------------------------------------------------------------------------------------
def line_key_rows(batch) -> dict[str, np.ndarray]:
    """(outlet, line key) once per article and distinct line (its headline among them): what the store counts
    per outlet (:func:`~..boilerplate.outlet`), in the column ``source``."""
    from ..boilerplate import article_line_keys, outlet

    sources, keys = [], []
    for src, url, title, text in zip(batch.column("source").to_pylist(), batch.column("url").to_pylist(),
                                     batch.column("title").to_pylist(), batch.column("text").to_pylist(), strict=True):
        if of := outlet(src, url):
            ks = list(article_line_keys(title, text))
            sources.extend([of] * len(ks))
            keys.extend(ks)
    return {"source": np.asarray(sources, dtype=object), "key": np.asarray(keys, dtype=np.int64)}


# -- prepare ----------------------------------------------------------------------------------------
def prepare(batch, boilerplate: dict[str, set[int]], embed_max_chars: int):
    """Derived forms (as ``add`` stores them): content hash, embedder inputs, language, MinHash signature
    term vector and numbers (bytes)."""
    import pyarrow as pa

    from ..boilerplate import outlet
    from ..featurize import lexical_features, prepare_article

    arts = [Article(*(row[c] for c in FIELDS)) for row in batch.select(list(FIELDS)).to_pylist()]
    prepared = [prepare_article(a, boilerplate.get(outlet(a.source, a.url) or "", set()), embed_max_chars)
                for a in arts]
    lexical = lexical_features(prepared)
    cols = {
        "content_hash": [p.content_hash for p in prepared],
        "embed_input": [p.embed_input for p in prepared],
        "title_input": [p.title_input for p in prepared],
        "lang": [p.lang for p in prepared],
        "published_ts": [a.published_ts for a in arts],
        "text_length": [len(a.text) for a in arts],
        "signature": [x.signature.tobytes() for x in lexical],
        "terms": [x.terms.tobytes() for x in lexical],
        "numbers": [x.numbers.tobytes() for x in lexical],
    }
    out = batch.drop_columns([c for c in cols if c in batch.column_names])
    for name, values in cols.items():
        out = out.append_column(name, pa.array(values))
    return out


# -- embed ------------------------------------------------------------------------------------------
class Embed:
    """Callable class for an actor pool: the model is loaded once per worker; each batch gets its index
    vector (lead and headline embeddings side by side, as the store's index holds them)."""

    def __init__(self, model_id: str, title_weight: float, threads: int = 1) -> None:
        from ..embed import get_embedder

        self.embedder = get_embedder(model_id, threads=threads)
        self.title_weight = title_weight

    def __call__(self, batch):
        import pyarrow as pa

        from ..embed.layout import VectorLayout

        lead = batch.column("embed_input").to_pylist()
        both = self.embedder.embed(lead + batch.column("title_input").to_pylist(), cache=None)
        v = VectorLayout(self.title_weight).combine(both[:len(lead)], both[len(lead):])
        out = batch.drop_columns(["embed_input", "title_input"])
        return out.append_column("vector", vector_array(v))


def vector_array(v: np.ndarray):
    """(n, d) float32 as a Parquet-friendly fixed-size list column."""
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v, dtype=np.float32).ravel()), v.shape[1])


def vectors_of(column) -> np.ndarray:
    """The (n, d) float32 matrix back from a list column (fixed-size or not; an engine may change which)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, -1) if n else flat.reshape(0, 0)


# -- candidates: MinHash bands ----------------------------------------------------------------------
def band_rows(batch, partitions: int) -> dict[str, np.ndarray]:
    """(partition, key, pos) for every band of every non-empty signature; the partition (key modulo
    ``partitions``) lets an engine group a whole shard of buckets per call instead of one bucket per call."""
    sigs = np.frombuffer(b"".join(batch.column("signature").to_pylist()), dtype=np.uint32).reshape(-1, NUM_PERM)
    keys = band_keys(sigs, BANDS)
    pos = batch.column("pos").to_numpy()
    ok = keys[:, 0] != 0
    k = keys[ok].ravel()
    return {"part": (k % np.uint64(partitions)).astype(np.int64), "key": k,
            "pos": np.repeat(pos[ok], keys.shape[1])}


def bucket_shard_pairs(batch) -> dict[str, np.ndarray]:
    """Candidate pairs (a < b) of every bucket in one shard of band keys."""
    pairs = shared_key_pairs(np.asarray(batch["key"]), np.asarray(batch["pos"], dtype=np.int64))
    both = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), dtype=np.int64)
    return {"a": both[:, 0], "b": both[:, 1]}


# -- candidates: vector neighbours over IVF lists ---------------------------------------------------
def list_rows(batch, centroids: np.ndarray, spill: int = 2) -> dict[str, np.ndarray]:
    """Each vector as a member of its nearest list and a (foreign) query in its next ``spill - 1``."""
    from ..neighbors.assign import assign_lists

    v = vectors_of(batch.column("vector"))
    pos = batch.column("pos").to_numpy()
    best = assign_lists(v, centroids, spill)
    m = best.shape[1]
    return {"list": best.ravel(), "pos": np.repeat(pos, m), "own": np.tile(np.arange(m) == 0, len(pos)),
            "vector": np.repeat(v, m, axis=0)}


def list_neighbours(batch, k: int, target: int, split: int, spill: int = 2) -> dict[str, np.ndarray]:
    """One list's block (:func:`~storycluster.neighbors.knn.block_neighbours`): each query's best k there."""
    from ..neighbors.knn import block_neighbours

    own = np.asarray(batch["own"], dtype=bool)
    pos = np.asarray(batch["pos"], dtype=np.int64)
    v = np.asarray(batch["vector"], dtype=np.float32)
    if v.ndim == 1:  # a column of arrays
        v = np.stack(list(v))
    q, val, packed = block_neighbours(v[own], pos[own], v[~own], pos[~own], k, target, split, spill)
    return {"q": q, "val": val, "packed": packed}


# -- grouping (on the driver) -----------------------------------------------------------------------
def group(table, graph_parts: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], lexical: np.ndarray,
          thresholds, model, k: int = 20, languages: frozenset[str] | None = None) -> dict:
    """The single-machine grouping over gathered articles (``table`` sorted by ``pos``), given the neighbour
    blocks and band pairs the distributed stages found: the same scorer, linkage, representatives and
    group ids as a store's first full regroup, in ``storycluster dedup --format json``'s schema."""
    from ..cluster import ArticleFacts, build_groups, cluster_labels
    from ..cluster.graph import grouping_scorer
    from ..cluster.groups import group_record
    from ..cluster.graph import graph_edges
    from ..embed.layout import VectorLayout
    from ..neighbors.knn import merge_blocks

    n = table.num_rows
    if n == 0:
        return {"groups": [], "singletons": []}
    ids = table.column("id").to_pylist()
    lead, title = VectorLayout(thresholds.title_weight).split(vectors_of(table.column("vector")))
    sigs = np.frombuffer(b"".join(table.column("signature").to_pylist()), dtype=np.uint32).reshape(n, NUM_PERM)
    terms = [np.frombuffer(t, dtype=np.uint32) for t in table.column("terms").to_pylist()]
    numbers = [np.frombuffer(x, dtype=np.uint64) for x in table.column("numbers").to_pylist()]
    published = np.array([np.nan if p is None else p for p in table.column("published_ts").to_pylist()])
    scorer, _ = grouping_scorer(lead, title, sigs.copy(), table.column("content_hash").to_pylist(), terms,
                                table.column("lang").to_pylist(), published, thresholds, model, numbers,
                                languages=languages)
    graph = merge_blocks(n, k, graph_parts, thresholds.related)
    near = graph_edges(graph, np.arange(n), thresholds.title_weight)
    rows = np.arange(n, dtype=np.int64)
    labels = cluster_labels(scorer, k=k, neighbours=near, lexical=lexical)
    facts = {i: ArticleFacts(ids[i], None if np.isnan(published[i]) else float(published[i]), length)
             for i, length in enumerate(table.column("text_length").to_pylist())}
    groups = build_groups(rows, labels, scorer, facts, {}, set())
    arts = _Rows(table)
    records = [group_record(g.group_id, g.representative, g.members, arts) for g in groups]
    records.sort(key=lambda g: (-g["size"], g["group"]))
    grouped = {r for g in groups for r, *_ in g.members}
    return {"groups": records, "singletons": sorted(ids[i] for i in range(n) if i not in grouped)}


class _Rows:
    """``arts[pos].title`` etc. over the gathered table, for :func:`~storycluster.cluster.groups.group_record`."""

    @dataclass(slots=True)
    class Row:
        id: str
        title: str
        url: str | None
        source: str | None
        published: str | None
        lang: str | None

    def __init__(self, table) -> None:
        self.cols = {c: table.column(c).to_pylist() for c in ("id", "title", "url", "source", "published", "lang")}

    def __getitem__(self, pos: int) -> _Rows.Row:
        return _Rows.Row(**{c: v[pos] for c, v in self.cols.items()})

