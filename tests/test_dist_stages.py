"""The distributed pipeline's stage functions, engine-neutral, run here without Ray: band shards give the
single-machine band pairs, IVF list blocks give the exact graph (one list) or most of it (many lists),
input order and duplicate ids, Parquet input. The Ray runs are in test_dist.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from storycluster.dist import stages  # noqa: E402
from storycluster.ingest import read_path  # noqa: E402
from storycluster.lexical import BANDS, EMPTY, NUM_PERM, candidate_pairs  # noqa: E402
from storycluster.neighbors.knn import block_target, knn_graph, merge_blocks  # noqa: E402
from storycluster.store.vector_index import VectorIndex, ivf_centroids  # noqa: E402


def _clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 10, d)).astype(np.float32)
    v = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _edges(g) -> set[tuple[int, int]]:
    return set(zip(g.a.tolist(), g.b.tolist(), strict=True))


def _by_list(rows: dict[str, np.ndarray]):
    """What an engine's group-by on ``list`` hands the list stage."""
    for lst in np.unique(rows["list"]):
        sel = rows["list"] == lst
        yield {c: v[sel] for c, v in rows.items()}


def test_band_shards_give_the_single_machine_pairs() -> None:
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 2**32 - 1, (400, NUM_PERM), dtype=np.uint64).astype(np.uint32)
    for i in range(0, 120, 2):  # planted pairs sharing some bands
        shared = rng.choice(BANDS, rng.integers(1, 6), replace=False)
        for b in shared:
            cols = slice(b * 4, b * 4 + 4)
            sigs[i + 1, cols] = sigs[i, cols]
    sigs[7] = EMPTY  # an empty text makes no pairs
    sigs[9] = sigs[7]
    batch = pa.table({"signature": [s.tobytes() for s in sigs], "pos": np.arange(len(sigs))})
    rows = stages.band_rows(batch, partitions=3)
    found = []
    for part in range(3):
        sel = rows["part"] == part
        out = stages.bucket_shard_pairs({"key": rows["key"][sel], "pos": rows["pos"][sel]})
        found.append(np.stack([out["a"], out["b"]], axis=1))
    got = np.unique(np.concatenate(found), axis=0)
    want = candidate_pairs(sigs)
    assert len(want) == 58  # the 60 planted pairs but (6, 7) and (8, 9): 7 and 9 are empty
    assert np.array_equal(got, want)
    assert 7 not in got and 9 not in got


def test_one_list_is_the_exact_graph() -> None:
    v = _clustered(600, 32)
    batch = pa.table({"pos": np.arange(len(v)), "vector": stages.vector_array(v)})
    rows = stages.list_rows(batch, np.zeros((1, 32), dtype=np.float32), spill=1)
    parts = [tuple(stages.list_neighbours(g, 10, block_target(len(v), 1), 16, spill=1).values())
             for g in _by_list(rows)]
    got = merge_blocks(len(v), 10, parts, 0.2)
    exact = VectorIndex(32, "flat")
    exact.add(np.arange(len(v)), v)
    want = knn_graph(exact, 10, 0.2, split=16)
    assert len(want) > 1000
    assert _edges(got) == _edges(want)
    order_g, order_w = np.lexsort((got.b, got.a)), np.lexsort((want.b, want.a))
    assert np.allclose(got.score[order_g], want.score[order_w], atol=1e-5)
    assert np.allclose(got.head[order_g], want.head[order_w], atol=1e-5)  # the lead half travels with it


def test_many_lists_find_most_of_the_exact_graph() -> None:
    v = _clustered(4000, 32, seed=1)
    centroids = ivf_centroids(v, len(v))
    assert len(centroids) > 50
    batch = pa.table({"pos": np.arange(len(v)), "vector": stages.vector_array(v)})
    rows = stages.list_rows(batch, centroids, spill=2)
    assert np.array_equal(np.bincount(rows["pos"]), np.full(len(v), 2))  # a member once, a query once more
    parts = [tuple(stages.list_neighbours(g, 10, block_target(len(v), len(centroids)), 16).values())
             for g in _by_list(rows)]
    got = merge_blocks(len(v), 10, parts, 0.5)
    exact = VectorIndex(32, "flat")
    exact.add(np.arange(len(v)), v)
    want = _edges(knn_graph(exact, 10, 0.5, split=16))
    recall = len(_edges(got) & want) / len(want)
    assert recall >= 0.9, recall


def test_positions_follow_input_order_and_report_duplicate_ids() -> None:
    rows = [(1, 0, "c", "b.jsonl:1", "h-c"), (0, 1, "b", "a.jsonl:2", "h-b"), (0, 0, "a", "a.jsonl:1", "h-a"),
            (1, 1, "a", "b.jsonl:2", "h-a2"), (1, 2, "b", "b.jsonl:3", "h-b")]
    by_file, problems, repeated = stages.positions(rows)
    assert by_file[0].tolist() == [0, 1] and by_file[1].tolist() == [2, -1, -1]
    assert problems == ["b.jsonl:2: field 'id': duplicate id 'a' (first at a.jsonl:1) (ids must be unique across "
                        "the input (a record repeated field for field is stored once))"]
    assert repeated == 1  # b.jsonl:3 repeats a.jsonl:2 field for field: dropped, not a problem


def test_read_file_keeps_problems_as_rows(tmp_path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"id": "x", "text": "Hello there."}) + "\n{broken\n"
                 + json.dumps({"id": "y", "text": "مرحبا بكم"}, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = stages.read_file({"path": str(f), "file_no": 4}, 10**6)
    assert [(r["id"], r["ordinal"], r["file_no"]) for r in rows] == [("x", 0, 4), (None, -1, 4), ("y", 1, 4)]
    assert rows[0]["digest"] == next(read_path(f)).record_hash() and rows[1]["digest"] is None
    assert rows[1]["problem"].startswith(f"{f}:2: invalid JSON")
    assert rows[2]["text"] == "مرحبا بكم"
    assert [r["notice"] for r in rows] == [None, None, None]
    # fields not read: named once for the file, on its last row (dedup-dist reports them as add does)
    f.write_text(json.dumps({"id": "x", "text": "Hello.", "author": "a"}) + "\n"
                 + json.dumps({"id": "y", "text": "There.", "author": "b", "tags": []}) + "\n", encoding="utf-8")
    rows = stages.read_file({"path": str(f), "file_no": 0}, 10**6)
    assert [r["notice"] for r in rows[:-1]] == [None]
    assert rows[-1]["notice"].startswith(f"{f}: fields not read: 'author' (2 records), 'tags' (1 record); ")


def test_parquet_input_reads_like_jsonl(tmp_path) -> None:
    import pyarrow.parquet as pq

    records = [{"id": "a1", "title": "Iraq's PM interview", "text": "Body one.", "lang": "en"},
               {"id": "a2", "title": "مقابلة", "text": "نص المقال", "source": "sudanile"},
               {"id": "a3", "title": "no text", "text": ""}]
    fields = ["id", "title", "text", "source", "lang"]
    pq.write_table(pa.table({f: [r.get(f) for r in records] for f in fields}), tmp_path / "in.parquet")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                       encoding="utf-8")
    from_pq = [str(r) if not hasattr(r, "to_dict") else r.to_dict() for r in read_path(tmp_path / "in.parquet")]
    from_jsonl = [str(r) if not hasattr(r, "to_dict") else r.to_dict() for r in read_path(tmp_path / "in.jsonl")]
    assert from_pq[:2] == from_jsonl[:2]
    assert from_pq[2] == (f"{tmp_path / 'in.parquet'}:3: field 'text': missing or empty (every article needs its body "
                          "text in 'text')")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    (problem,) = list(read_path(tmp_path / "bad.parquet"))
    assert "not a readable Parquet file" in str(problem)


def test_parquet_dates_and_columns_not_read(tmp_path) -> None:
    """A Parquet timestamp or date column is a date (under any of a date's names), and the columns storycluster
    does not read are named in the file's notice, as for JSONL."""
    import datetime as dt

    import pyarrow.parquet as pq

    when = dt.datetime(2024, 9, 15, 8, 30, tzinfo=dt.UTC)
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["Body one.", "Body two."],
                             "published_at": pa.array([when, None], pa.timestamp("s", tz="UTC")),
                             "date": pa.array([None, dt.date(2024, 9, 16)], pa.date32()),
                             "author": ["x", "y"], "views": [1, 2]}), tmp_path / "d.parquet")
    notices: list[str] = []
    a, b = read_path(tmp_path / "d.parquet", notices=notices)
    assert (a.published, b.published) == ("2024-09-15T08:30:00+00:00", "2024-09-16")
    assert a.published_ts == when.timestamp()
    assert notices == [f"{tmp_path / 'd.parquet'}: fields not read: 'author' (2 records), 'views' (2 records); "
                       "storycluster reads id, title, text, url, source, published, lang (dates also from date, "
                       "published_at, publishedAt, pubDate, datePublished, pub_date, publication_date, dateCreated)"]


def test_boilerplate_lines_are_counted_per_outlet_as_the_store_counts_them() -> None:
    """The distributed line counts: the source, else the URL's host (as ``add`` counts), headlines among the
    lines; an article with neither counts toward nothing."""
    from storycluster.boilerplate import article_line_keys

    batch = pa.table({"source": ["paper", None, None, None], "title": ["Weather", "Weather", "Weather", "Weather"],
                      "url": [None, "https://www.wx.example/1", "https://wx.example/2", None],
                      "text": ["Rain.\nShare this", "Sun.\nShare this", "Fog.", "Snow."]})
    rows = stages.line_key_rows(batch)
    got = sorted(zip(rows["source"].tolist(), rows["key"].tolist(), strict=True))
    want = sorted((o, k) for o, (title, text) in [("paper", ("Weather", "Rain.\nShare this")),
                                                  ("host:wx.example", ("Weather", "Sun.\nShare this")),
                                                  ("host:wx.example", ("Weather", "Fog."))]
                  for k in article_line_keys(title, text))
    assert got == want
