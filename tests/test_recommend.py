"""recommend: every article's related list as JSONL; a later run recomputes only what changed and
gives exactly what a full run gives."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.ingest import read_path, to_article
from storycluster.recommend import recommend

from .conftest import ECB, SEEDS

runner = CliRunner()


def read(path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.open(encoding="utf-8"))}


def test_incremental_equals_full(seed_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(seed_store, store)
    out, full_out = tmp_path / "related.jsonl", tmp_path / "full.jsonl"
    with Archive(store) as a:
        first = recommend(a, out, k=5)
        n = a.db.count()
        assert first.articles == first.recomputed == n and len(read(out)) == n
        again = recommend(a, out, k=5)
        assert again.recomputed == 0 and again.reused == n  # nothing changed: nothing recomputed
        a.add([to_article({"id": "en-boris-copy", "title": "Storm Boris: floods hit Poland and Czechia",
                           "text": "Storm Boris brought days of heavy rain to central Europe. Rivers burst their "
                                   "banks in Poland and Czechia, towns were evacuated and several people died.",
                           "source": "third-wire.example", "published": "2024-09-16", "lang": "en"})])
        a.remove(["masalla-heat"])
        inc = recommend(a, out, k=5)
        full = recommend(a, full_out, k=5, full=True)
    assert inc.articles == full.articles == n  # one added, one removed
    assert 0 < inc.recomputed < n and inc.removed == 1
    assert read(out) == read(full_out)
    lists = read(out)
    assert "masalla-heat" not in lists and "en-boris-copy" in lists
    assert any("en-boris-copy" in {e["id"], *(o["id"] for o in e["also_in"])} for e in lists["en-storm-boris"]["related"])


def test_a_damaged_state_or_output_means_a_full_run_not_a_traceback(seed_store, tmp_path):
    out = tmp_path / "related.jsonl"
    state = tmp_path / "related.jsonl.state.json"
    with Archive(seed_store) as a:
        recommend(a, out, k=5)
        good = out.read_text(encoding="utf-8")
        for damaged_state in ("[1, 2]", '{"version": 3, "k": 5, "generation": "7", "ids": []}'):
            state.write_text(damaged_state)
            assert recommend(a, out, k=5).reused == 0 and out.read_text(encoding="utf-8") == good
        recommend(a, out, k=5)  # a good state again
        lines = good.splitlines(keepends=True)
        out.write_text("".join(['{"no_id": 1}' + " " * (len(lines[0]) - 13) + "\n", *lines[1:]]), encoding="utf-8")
        assert len(out.read_bytes()) == len(good.encode())  # the same size: the state alone cannot tell
        again = recommend(a, out, k=5)
    assert again.reused == 0 and again.recomputed == again.articles and out.read_text(encoding="utf-8") == good


def test_lists_deeper_than_the_stored_ones_are_related_answers(tmp_path, hash_embedder, monkeypatch):
    """A k deeper than the stored lists: every list computed (in blocks of neighbours, each plan as deep as its
    answer), each equal to related's answer computed on demand; no incremental state (a later run redoes all).
    1,500 articles under an IVF index, the stored lists current, each equal to the answer computed on demand."""
    import storycluster.recommend as rec
    from storycluster import queries
    from storycluster.related.stored import DEPTH, fresh

    from .conftest import ivf_articles

    k, out = DEPTH + 5, tmp_path / "deep.jsonl"
    asked: list[tuple[int, bool]] = []
    compute = rec.compute

    def spy(*args, depth, complete, **kwargs):
        asked.append((depth, complete))
        return compute(*args, depth=depth, complete=complete, **kwargs)

    monkeypatch.setattr(rec, "compute", spy)
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(3)))
        a.set_index("ivf")
        a.regroup()
        assert fresh(a.store) and a.index.index_type == "ivf"
        first = recommend(a, out, k=k)
        again = recommend(a, out, k=k)
        lists = read(out)
        assert first.recomputed == again.recomputed == a.db.count() == len(lists) == 1500
        assert set(asked) == {(k, False)}  # each plan only as deep as its answer, not completed
        assert sum(len(line["related"]) > DEPTH for line in lists.values()) > 100  # deeper than a stored list
        for article_id in sorted(lists)[::7]:
            assert lists[article_id]["related"] == queries.related(a.store, article_id, k=k)["related"]
        # and every stored list gives the answer computed on demand (headlines of 5 words from 40: candidates
        # tied at a search's last score, which one query and many break differently)
        for article_id in sorted(lists):
            assert queries.related(a.store, article_id, k=DEPTH) == \
                queries.related(a.store, article_id, k=DEPTH, stored=False)


@pytest.mark.slow
@pytest.mark.skipif(not ECB.exists(), reason=f"ECB+ not found at {ECB}")
def test_incremental_equals_full_on_ecbplus_after_removals_and_adds(tmp_path):
    """ECB+ (dense topics: groups of ten, lists that name each other): 20 random articles removed, then added
    back with 40 changed ones; after each step the incremental output equals a full run's, list for list."""
    out, full_out = tmp_path / "related.jsonl", tmp_path / "full.jsonl"
    records = [r for r in read_path(ECB) if hasattr(r, "id")]
    with Archive(tmp_path / "s") as a:
        a.add(records)
        recommend(a, out, k=10)
        rng = random.Random(1)
        gone = set(rng.sample(sorted(r.id for r in records), 20))
        a.remove(sorted(gone))
        inc = recommend(a, out, k=10)
        recommend(a, full_out, k=10, full=True)
        # 20 removals touch their groups' members too: past a tenth of the store the regrouping is a full one,
        # which recomputes every stored list (so every line is rewritten); the output still equals a full run's
        assert inc.removed == 20
        assert read(out) == read(full_out)
        changed = [replace_text(r) for r in rng.sample([r for r in records if r.id not in gone], 40)]
        a.add([r for r in records if r.id in gone] + changed)
        inc = recommend(a, out, k=10)
        recommend(a, full_out, k=10, full=True)
        assert inc.articles == len(records)
        assert read(out) == read(full_out)


def replace_text(r):
    """The record with its text changed (an update of the stored article)."""
    from dataclasses import replace

    return replace(r, text=r.text + "\nUpdated with a closing paragraph on the court ruling of 12 May.")


def test_recommend_cli(seed_store, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["recommend", "--out", str(out), "-k", "3", "--store", str(seed_store)])
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert len(rows) == sum(1 for _ in SEEDS.open()) and all(len(r["related"]) <= 3 for r in rows.values())
    assert "25 articles written" in result.stderr
    for k in ("3", "40"):  # from the stored lists, and computed (deeper than they are)
        to_file = runner.invoke(app, ["recommend", "-o", str(out), "-k", k, "--store", str(seed_store)])
        piped = runner.invoke(app, ["recommend", "-o", "-", "-k", k, "--store", str(seed_store)])
        assert piped.exit_code == 0 and piped.stdout == out.read_text(encoding="utf-8") and to_file.exit_code == 0
        assert piped.stderr.startswith("25 lists written to standard output")
    assert not (tmp_path / "-").exists() and not Path("-.state.json").exists()  # '-' is not a file name


def test_a_regrouping_with_new_thresholds_is_seen_by_the_next_incremental_run(seed_store_copy, tmp_path):
    """No article changes, but the lists do: the regrouping is a new generation, and the incremental run rewrites
    them (it reused every list of the last run, which said what the old thresholds gave)."""
    from storycluster.store.folder import StoreConfig

    out, full_out = tmp_path / "related.jsonl", tmp_path / "full.jsonl"
    with Archive(seed_store_copy) as a:
        recommend(a, out, k=5)
        before = read(out)
    config = StoreConfig.read(seed_store_copy)
    assert config is not None
    config.thresholds = {**config.thresholds, "related": 0.6}
    config.write(seed_store_copy)
    with Archive(seed_store_copy) as a:
        a.regroup(full=True)
        again = recommend(a, out, k=5)
        recommend(a, full_out, k=5, full=True)
    assert again.recomputed == again.articles and read(out) == read(full_out) != before


def test_lists_computed_by_worker_processes_are_those_of_one_process(tmp_path, hash_embedder, monkeypatch):
    """A store that keeps no lists (over ``related_lists_max``) has them computed by worker processes, each a
    part of neighbouring articles, the index mapped from its file: byte for byte the output of one process, and
    related's answers. 1,500 articles under an IVF index, parts of 200 (8 parts, two processes)."""
    import storycluster.recommend as rec
    from storycluster import queries
    from storycluster.related.stored import fresh
    from storycluster.store.folder import StoreConfig

    from .conftest import ivf_articles

    store = tmp_path / "s"
    with Archive(store, embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(7)))
        a.set_index("ivf")
    config = StoreConfig.read(store)
    assert config is not None
    config.related_lists_max = 10
    config.write(store)
    used: list[int] = []
    process_map = rec.process_map
    monkeypatch.setattr(rec, "process_map", lambda fn, items, n: used.append(n) or process_map(fn, items, n))
    monkeypatch.setattr(rec, "SEARCH", 200)
    with Archive(store, embedder=hash_embedder) as a:
        a.regroup()
        assert a.index.index_type == "ivf" and not fresh(a.store)
        one = recommend(a, tmp_path / "one.jsonl", k=10, workers=1)
        assert used == []
        monkeypatch.setattr(rec, "cores", lambda: 2)  # the default: one worker per core
        two = recommend(a, tmp_path / "two.jsonl", k=10)
        assert used == [2]
        assert one.recomputed == two.recomputed == two.articles == 1500
        assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
        # stopped half-way (an error, Ctrl-C): the processes stop, the previous output stays, nothing is left beside
        def stop(n: int) -> None:
            raise KeyboardInterrupt

        before = (tmp_path / "two.jsonl").read_bytes()
        with pytest.raises(KeyboardInterrupt):
            recommend(a, tmp_path / "two.jsonl", k=10, full=True, workers=2, progress=stop)
        assert used == [2, 2] and (tmp_path / "two.jsonl").read_bytes() == before
        assert sorted(p.name for p in tmp_path.glob("two.jsonl*")) == ["two.jsonl", "two.jsonl.state.json"]
        lists = read(tmp_path / "two.jsonl")
        assert all(lists[i]["related"] == queries.related(a.store, i, k=10)["related"] for i in sorted(lists)[::5])
        assert a.index.index_type == "ivf" and not a.store.map_index  # the index held in memory again after
        # a saved index that cannot be used (here: changed since written) is rebuilt in this process, which
        # then computes every list itself
        a.store.forget_index()
        with (store / "index.faiss").open("r+b") as fh:
            fh.seek(-100, 2)
            fh.write(b"\xff" * 4)
        three = recommend(a, tmp_path / "three.jsonl", k=10, workers=2)
        assert used == [2, 2] and three.recomputed == 1500 and a.store.index_rebuilt
        assert (tmp_path / "three.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
        a.remove(["a000-0"])  # and written as before


def test_a_worker_refuses_a_store_written_after_the_export_began(seed_store, monkeypatch):
    """A worker process reads the store at the generation the export began with; a later one (a write
    committed meanwhile) would mix two states in one output: a one-line error that says to run it again."""
    import storycluster.recommend as rec
    import storycluster.related.stored as stored
    from storycluster.errors import StoreError

    monkeypatch.setattr(stored, "_part", None)
    with Archive(seed_store, create=False) as a:
        generation, rows = a.db.generation, sorted(a.db.ids_to_rowids().values())[:3]
    with pytest.raises(StoreError, match=r"written while recommend ran .*run recommend again"):
        rec._part_lines(str(seed_store), generation - 1, 10, rows)
    assert stored._part is None  # closed, not kept
    assert rec._part_lines(str(seed_store), generation, 10, rows).decode().count("\n") == 3
    with Archive(seed_store, create=False) as a:
        by_row = {r: i for i, r in a.db.ids_to_rowids().items()}
        expected = [json.dumps({"id": by_row[r], "related": a.related(by_row[r], k=10)["related"]},
                               ensure_ascii=False) + "\n" for r in rows]
    assert rec._part_stored(str(seed_store), generation, 10, rows) == expected
    assert stored._part is not None
    # the worker's index is the file mapped into memory (shared with the other processes), not a copy
    assert str(seed_store.resolve() / "index.faiss") in Path("/proc/self/maps").read_text()
    # a later part is read in a read transaction of its own, at the same generation
    with pytest.raises(StoreError, match="written while recommend ran"):
        rec._part_lines(str(seed_store), generation + 1, 10, rows)
    assert stored._part is None


def test_stored_lists_written_by_worker_processes_are_those_of_one_process(tmp_path, hash_embedder, monkeypatch):
    """A store whose lists are current has them read and shaped by one worker process per core when there are
    more than two parts to write: byte for byte one process's output, in id order, also when a later run
    rewrites only the lists a write changed. 1,500 articles, parts of 200."""
    import storycluster.recommend as rec
    from storycluster.related.stored import fresh

    from .conftest import ivf_articles

    used: list[int] = []
    process_map = rec.process_map
    monkeypatch.setattr(rec, "process_map", lambda fn, items, n: used.append(n) or process_map(fn, items, n))
    monkeypatch.setattr(rec, "SEARCH", 200)
    monkeypatch.setattr(rec, "BLOCK", 128)
    monkeypatch.setattr(rec, "cores", lambda: 2)
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(3)))
        assert fresh(a.store)
        one = recommend(a, tmp_path / "one.jsonl", k=10, workers=1)
        assert used == []
        two = recommend(a, tmp_path / "two.jsonl", k=10)
        assert used == [2] and one.recomputed == two.recomputed == 1500
        assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
        ids = list(read(tmp_path / "two.jsonl"))
        assert ids == sorted(ids)
        a.add([to_article({"id": "a003-9", "title": "h1 h2 h3 h4 h5", "text": "s3w1 s3w2 s3w3 s3w4 " * 10,
                           "lang": "en"})])
        again = recommend(a, tmp_path / "two.jsonl", k=10)
        assert 0 < again.recomputed < 1501 and again.reused == 1501 - again.recomputed
        recommend(a, tmp_path / "full.jsonl", k=10, workers=1)
        assert (tmp_path / "full.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
        assert used == [2] * (1 + (again.recomputed > 2 * 200))
