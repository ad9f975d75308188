"""The distributed dedup on Ray Data: the stages of :mod:`.stages` wired into datasets.

read (one task per input file) → input order and duplicate ids (driver) → boilerplate lines (group-by
source and line) → prepare (normalize, language, MinHash, terms) → embed (an actor pool: the model loaded
once per actor) → embeddings written as Parquet → candidates: (a) MinHash bands grouped by bucket key,
(b) vector neighbours over IVF lists (centroids trained on a sample on the driver; each list's block, with
the vectors whose second-nearest list it is, searched by one task) → grouping on the driver over the
gathered columns and candidate edges (O(n·k)) → groups as JSON/JSONL in ``storycluster dedup``'s schema.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import partial
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..boilerplate import MIN_COUNT
from ..cluster import StoryModel, Thresholds
from ..embed import model_id_for, model_languages
from ..store.folder import EMBED_MAX_CHARS
from ..neighbors.knn import EXACT_GRAPH, block_target
from ..store.vector_index import IVF_SAMPLE_PER_LIST, sample_rows, ivf_centroids, ivf_lists
from ..ingest import DEFAULT_MAX_TEXT_BYTES
from . import stages

#: the columns written to ``embeddings/`` (Parquet)
EMBEDDING_COLUMNS = ("pos", "id", "content_hash", "lang", "vector")
SCHEMA_VERSION = 1
#: articles per block after reading (the unit a task or an embedding actor takes)
BLOCK_ROWS = 512


@dataclass(slots=True)
class DistReport:
    """What a distributed dedup did: ``read == articles + repeated + len(problems)``."""

    read: int = 0
    articles: int = 0
    #: records that repeat one read earlier in the input, field for field (kept once, as ``add`` stores them)
    repeated: int = 0
    groups: int = 0
    grouped: int = 0
    singletons: int = 0
    problems: list[str] = field(default_factory=list)
    #: one line per input file with fields that were not read (as ``add`` reports them)
    notices: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a cluster (``address``: ``auto`` or ``HOST:PORT``) or start a local Ray on this machine
    (``num_cpus``), without the dashboard."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def _timed(report: DistReport, name: str, start: float) -> float:
    now = time.perf_counter()
    report.seconds[name] = round(now - start, 3)
    return now


def _table(ds):
    """A (small or driver-sized) dataset as one pyarrow Table on the driver."""
    import pyarrow as pa
    import ray

    tables = ray.get(ds.to_arrow_refs())
    return pa.concat_tables(tables) if tables else None


def dedup_distributed(inputs: Sequence[str | Path], out: str | Path, *, model: str | None = None,
                      workers: int = 2, actor_cpus: float = 0.5, embed_batch: int = 64,
                      thresholds: Thresholds | None = None, story_model: StoryModel | None = None,
                      embed_max_chars: int | None = None, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
                      on_error: str = "fail", k: int = 20, actor_gpus: float = 0.0,
                      exact_below: int = EXACT_GRAPH) -> DistReport:
    """Deduplicate ``inputs`` (JSONL/CSV/Parquet files or folders, on local or shared storage) on the Ray
    cluster :func:`init_ray` connected to; writes ``out/groups.jsonl``, ``out/dedup.json``,
    ``out/problems.jsonl``, ``out/embeddings/*.parquet`` and ``out/manifest.json``.

    ``workers`` embedding actors of ``actor_cpus`` CPUs (and ``actor_gpus`` GPUs) each; the neighbour graph is
    exact below ``exact_below`` articles (as a store's), over IVF lists from there."""
    t = thresholds or Thresholds()
    m = story_model or StoryModel.shipped()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = DistReport()
    shards = max(2, 2 * workers)  # group-by partitions: a few per worker (Ray's default of 200 is all overhead)
    clock = time.perf_counter()

    articles = _read(inputs, max_text_bytes, on_error, report)
    clock = _timed(report, "read", clock)
    boiler = _boilerplate(articles, shards)
    clock = _timed(report, "boilerplate", clock)
    embedded = _prepare_and_embed(articles, boiler, t, model, workers, actor_cpus, actor_gpus, embed_batch,
                                  embed_max_chars or EMBED_MAX_CHARS)
    clock = _timed(report, "prepare+embed", clock)
    embedded.select_columns(list(EMBEDDING_COLUMNS)).write_parquet(str(out / "embeddings"))
    n = report.articles = embedded.count()
    clock = _timed(report, "write embeddings", clock)
    result: dict = {"groups": [], "singletons": []}
    if n:
        lexical = _band_pairs(embedded, shards)
        clock = _timed(report, "band candidates", clock)
        blocks = _neighbour_blocks(embedded, n, k, shards, exact_below)
        clock = _timed(report, "vector candidates", clock)
        # grouping on the driver: the single-machine scorer and linkage over the gathered columns
        cols = ["pos", "id", "title", "url", "source", "published", "published_ts", "lang", "content_hash",
                "signature", "terms", "numbers", "text_length", "vector"]
        result = stages.group(_table(embedded.select_columns(cols)).sort_by("pos"), blocks, lexical, t, m, k=k,
                              languages=model_languages(model_id_for(model)))
        clock = _timed(report, "grouping", clock)
    _write(out, result, report, inputs, model, t)
    _timed(report, "write groups", clock)
    return report


def _read(inputs: Sequence[str | Path], max_text_bytes: int, on_error: str, report: DistReport):
    """Articles (with ``pos``) of every input path, one read task per path; bad records into the report."""
    import pyarrow as pa
    import ray

    from ..errors import InputError, Problem

    items = [{"path": str(p), "file_no": i} for i, p in enumerate(inputs)]
    raw = ray.data.from_items(items, override_num_blocks=max(1, len(items))).flat_map(
        partial(stages.read_file, max_text_bytes=max_text_bytes)).materialize()
    light = _table(raw.select_columns(["file_no", "ordinal", "id", "origin", "digest", "problem", "notice"]))
    report.read = light.num_rows
    report.problems = [p for p in light.column("problem").to_pylist() if p]
    report.notices = [line for n in light.column("notice").to_pylist() if n for line in n.split("\n")]
    ok = light.filter(pa.array(~light.column("problem").is_valid().to_numpy(zero_copy_only=False)))
    columns = ("file_no", "ordinal", "id", "origin", "digest")
    by_file, dups, report.repeated = stages.positions(list(zip(*(ok.column(c).to_pylist() for c in columns),
                                                               strict=True)))
    report.problems += dups
    if report.problems and on_error == "fail":
        raise InputError(Problem("<input>", None, None, f"{len(report.problems)} bad record(s); the first: "
                                 f"{report.problems[0]}", "nothing was written; fix them or rerun with --on-error skip"))
    return (raw.drop_columns(["notice", "digest"]).filter(lambda r: r["problem"] is None)
            .map_batches(stages.with_positions, fn_kwargs={"by_file": by_file}, batch_format="pyarrow")
            .filter(lambda r: r["pos"] >= 0)
            .repartition(target_num_rows_per_block=BLOCK_ROWS))  # one big file still feeds every actor


def _boilerplate(articles, shards: int) -> dict[str, set[int]]:
    """Lines seen in MIN_COUNT or more articles of a source, by source."""
    counts = (articles.map_batches(stages.line_key_rows, batch_format="pyarrow")
              .groupby(["source", "key"], num_partitions=shards).count())
    boiler: dict[str, set[int]] = {}
    for row in counts.filter(lambda r: r["count()"] >= MIN_COUNT).take_all():
        boiler.setdefault(row["source"], set()).add(int(row["key"]))
    return boiler


def _prepare_and_embed(articles, boiler: dict[str, set[int]], t: Thresholds, model: str | None, workers: int,
                       actor_cpus: float, actor_gpus: float, embed_batch: int, embed_max_chars: int):
    prepared = articles.map_batches(stages.prepare, batch_format="pyarrow",
                                    fn_kwargs={"boilerplate": boiler, "embed_max_chars": embed_max_chars})
    return prepared.map_batches(
        stages.Embed, fn_constructor_kwargs={"model_id": model, "title_weight": t.title_weight,
                                             "threads": max(1, round(actor_cpus))},
        batch_format="pyarrow", batch_size=embed_batch, concurrency=workers, num_cpus=actor_cpus,
        num_gpus=actor_gpus or None,
    ).drop_columns(["text"]).materialize()


def _band_pairs(embedded, shards: int) -> np.ndarray:
    """MinHash candidate pairs: band keys grouped by key shard, pairs within each bucket."""
    band = (embedded.map_batches(stages.band_rows, fn_kwargs={"partitions": shards}, batch_format="pyarrow")
            .groupby("part", num_partitions=shards).map_groups(stages.bucket_shard_pairs, batch_format="numpy"))
    pairs = [np.stack([b["a"], b["b"]], axis=1) for b in band.iter_batches(batch_format="numpy", batch_size=None)]
    return np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), dtype=np.int64)


def _neighbour_blocks(embedded, n: int, k: int, shards: int, exact_below: int) -> list:
    """Each IVF list's block top-k (one list holding everything below ``exact_below``: the exact graph, as a
    store this small has); lists from centroids trained on a sample, on the driver."""
    dim = len(embedded.take(1)[0]["vector"])
    if n < exact_below:
        centroids, spill = np.zeros((1, dim), dtype=np.float32), 1
    else:
        want = set(sample_rows(n, IVF_SAMPLE_PER_LIST * ivf_lists(n)).tolist())
        sample = _table(embedded.filter(lambda r: r["pos"] in want).select_columns(["vector"]))
        centroids, spill = ivf_centroids(stages.vectors_of(sample.column("vector")), n), 2
    params = {"k": k, "target": block_target(n, len(centroids)), "split": dim // 2, "spill": spill}
    blocks = (embedded.map_batches(stages.list_rows, fn_kwargs={"centroids": centroids, "spill": spill},
                                   batch_format="pyarrow")
              .groupby("list", num_partitions=shards)
              .map_groups(stages.list_neighbours, batch_format="numpy", fn_kwargs=params))
    return [(b["q"], b["val"], b["packed"]) for b in blocks.iter_batches(batch_format="numpy", batch_size=None)]


def _write(out: Path, result: dict, report: DistReport, inputs: Sequence[str | Path], model: str | None, t: Thresholds) -> None:
    report.groups = len(result["groups"])
    report.grouped = sum(g["size"] for g in result["groups"])
    report.singletons = len(result["singletons"])
    (out / "dedup.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(out / "groups.jsonl", "w", encoding="utf-8") as fh:
        for g in result["groups"]:
            fh.write(json.dumps(g, ensure_ascii=False) + "\n")
    with open(out / "problems.jsonl", "w", encoding="utf-8") as fh:
        for p in report.problems:
            fh.write(json.dumps({"problem": p}, ensure_ascii=False) + "\n")
    manifest = {"version": SCHEMA_VERSION, "model_id": model_id_for(model), "inputs": [str(p) for p in inputs],
                "read": report.read, "articles": report.articles, "repeated": report.repeated,
                "problems": len(report.problems),
                "notices": report.notices,
                "groups": report.groups, "grouped": report.grouped, "singletons": report.singletons,
                "seconds": report.seconds, "embeddings": {"columns": list(EMBEDDING_COLUMNS), "vector":
                "lead and headline embeddings side by side, scaled by sqrt(1 - title_weight) and sqrt(title_weight)",
                "title_weight": t.title_weight}}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
