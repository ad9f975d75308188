"""Stored related lists: each article's plan kept in the store, refreshed inside every write's transaction, and
equal to the list computed on demand (real model, FAISS and SQLite)."""

from __future__ import annotations

import collections
import json
import random
import sys
import threading

import numpy as np
import pytest

from storycluster import Archive, queries
from storycluster.ingest import read_path, to_article
from storycluster.ranking import RelatedOptions
from storycluster.recommend import recommend
from storycluster.related import answer, load_plan
from storycluster.related.plan import Owner, score_rows
from storycluster.related.stored import fresh

from .conftest import ECB, ivf_articles


def option_sets(archive: Archive) -> dict[str, RelatedOptions]:
    """The filter sets the README documents, with values that remove stories from most lists."""
    ids = sorted(archive.db.ids_to_rowids())
    sources = collections.Counter(a.source for a in archive.db.iter_articles() if a.source)
    top = frozenset(s for s, _ in sources.most_common(20))
    some = frozenset(random.Random(1).sample(ids, max(1, len(ids) // 10)))
    return {"defaults": RelatedOptions(), "per_source": RelatedOptions(per_source=1),
            "diversity": RelatedOptions(diversity=0.5), "lang": RelatedOptions(lang="en"),
            "exclude_sources": RelatedOptions(exclude_sources=top), "exclude_ids": RelatedOptions(exclude_ids=some),
            "since": RelatedOptions(since="2024-06-01"),
            "combined": RelatedOptions(exclude_sources=frozenset(list(top)[:5]), exclude_ids=some, per_source=2,
                                       diversity=0.3)}


def differing(archive: Archive, options: RelatedOptions, k: int = 10) -> list[str]:
    """Ids whose stored answer differs from the one computed on demand."""
    s = archive.store
    return [i for i in sorted(archive.db.ids_to_rowids())
            if queries.related(s, i, k=k, options=options) != queries.related(s, i, k=k, options=options, stored=False)]


def stored_count(archive: Archive) -> int:
    return archive.db.conn.execute("SELECT count(*) FROM related_lists").fetchone()[0]


def test_stored_lists_follow_every_write(seed_store_copy):
    with Archive(seed_store_copy) as a:
        a.ensure_groups()
        assert fresh(a.store) and stored_count(a) == a.db.count()
        for name, opts in option_sets(a).items():
            assert differing(a, opts, k=5) == [], name
        a.add([to_article({"id": "en-boris-copy", "title": "Storm Boris: floods hit Poland and Czechia",
                           "text": "Storm Boris brought days of heavy rain to central Europe. Rivers burst their "
                                   "banks in Poland and Czechia, towns were evacuated and several people died.",
                           "source": "third-wire.example", "published": "2024-09-16", "lang": "en"})])
        assert fresh(a.store) and stored_count(a) == a.db.count()
        assert differing(a, RelatedOptions()) == []
        # the new article is in its story's lists at once (the same transaction as its group)
        boris = queries.related(a.store, "en-storm-boris", k=10)["related"]
        assert any("en-boris-copy" in {e["id"], *(o["id"] for o in e["also_in"])} for e in boris)
        old = a.article("fr-sudani-bloomberg")
        a.add([to_article({**{k: v for k, v in old.items() if k != "text"},
                           "text": old["text"] + "\nMis à jour : le Premier ministre a précisé le calendrier."})])
        a.remove(["masalla-heat"])
        assert fresh(a.store) and stored_count(a) == a.db.count()
        rows = a.db.ids_to_rowids()
        assert a.db.related_owners([rows["en-storm-boris"]])  # lists name it, and say so
        for name, opts in option_sets(a).items():
            assert differing(a, opts) == [], name
        named = {x for i in rows for e in queries.related(a.store, i, k=10)["related"]
                 for x in (e["id"], *(o["id"] for o in e["also_in"]))}
        assert "masalla-heat" not in named


def test_lists_older_than_the_groups_are_not_read(seed_store_copy, capsys):
    """Lists written for other groups (a writer that did not refresh them) are ignored until the next
    regrouping recomputes them all; ``serve`` says so at its start (every answer computed) and how to rebuild
    them."""
    from storycluster.cli import _read_threads
    from storycluster.parallel import cores

    assert _read_threads(seed_store_copy) == 1 and capsys.readouterr().err == ""
    with Archive(seed_store_copy) as a:
        a.ensure_groups()
        row = a.db.ids_to_rowids()["seed-main"]
        with a.db.transaction():
            a.db.set_meta("related_lists", "1:30:-1")
            a.db.conn.execute("UPDATE related_lists SET plan = '[]' WHERE article = ?", (row,))
        assert not fresh(a.store) and load_plan(a.store, row) is None
        assert queries.related(a.store, "seed-main", k=5) == queries.related(a.store, "seed-main", k=5, stored=False)
        assert queries.related(a.store, "seed-main", k=5)["related"]
        assert _read_threads(seed_store_copy) == cores()
        assert f"storycluster dedup --full-regroup --store {seed_store_copy}" in capsys.readouterr().err
        from storycluster.server import StoreBackend

        backend = StoreBackend(seed_store_copy, readers=1)
        assert backend.health()["related_lists"] == "computed" and backend.read_threads() == cores()
        backend.close()
        a.regroup()
        assert fresh(a.store) and load_plan(a.store, row).entries


def test_a_store_over_the_limit_keeps_no_lists(seed_store_copy):
    """Above ``related_lists_max`` articles the lists go (their full recomputation would cost every large
    regrouping) and every answer is computed, the same answers."""
    from storycluster.cli import _read_threads
    from storycluster.parallel import cores
    from storycluster.store.folder import StoreConfig

    config = StoreConfig.read(seed_store_copy)
    assert config is not None and config.related_lists_max == 2_000_000
    assert _read_threads(seed_store_copy) == 1  # serve's default: one read thread where lists are kept
    config.related_lists_max = 10
    config.write(seed_store_copy)
    assert _read_threads(seed_store_copy) == cores()  # one per core where answers are computed
    with Archive(seed_store_copy) as a:
        a.regroup()
        assert not fresh(a.store) and stored_count(a) == 0
        assert a._writer.last_regroup is not None and a._writer.last_regroup.lists == 0
        assert queries.related(a.store, "seed-main", k=5)["related"]
        assert differing(a, RelatedOptions(), k=5) == []
        # recommend computes the lists in blocks of neighbours: related's answers
        report = recommend(a, seed_store_copy.parent / "r.jsonl", k=5)
        rows = {r["id"]: r["related"] for r in map(json.loads, (seed_store_copy.parent / "r.jsonl").open())}
        assert report.recomputed == len(rows) == a.db.count()
        assert all(rows[i] == queries.related(a.store, i, k=5)["related"] for i in rows)


def test_a_filter_that_empties_the_stored_list_is_computed_on_demand(seed_store):
    with Archive(seed_store, create=False) as a:
        row = a.db.ids_to_rowids()["seed-main"]
        plan = load_plan(a.store, row)
        shown = {a.db.cards([r for r, *_ in e.rows])[e.rows[0][0]].source for e in plan.entries}
        opts = RelatedOptions(exclude_sources=frozenset(s for s in shown if s))
        got = queries.related(a.store, "seed-main", k=5, options=opts)
        assert got == queries.related(a.store, "seed-main", k=5, options=opts, stored=False)
        assert all(e["source"] not in opts.exclude_sources for e in got["related"])
        # k deeper than the stored lists: computed
        assert answer(a.store, plan, 40, RelatedOptions(), row) is None or plan.floor is None
        assert queries.related(a.store, "seed-main", k=40) == queries.related(a.store, "seed-main", k=40, stored=False)


def test_a_pair_scores_the_same_in_any_batch(seed_store):
    with Archive(seed_store, create=False) as a:
        s = a.store
        rows = sorted(a.db.rowids().tolist())
        arts = a.db.articles_by_rowid(rows)
        vecs = s.vectors(rows)
        owners = [Owner.stored(arts[r], vecs[n], None, []) for n, r in enumerate(rows)]
        qi = np.repeat(np.arange(len(rows)), len(rows))
        cand = np.tile(np.array(rows), len(rows))
        topic, tier = score_rows(s, [o.query for o in owners], qi, cand, arts)
        for q in (0, 7, len(rows) - 1):
            one_topic, one_tier = score_rows(s, [owners[q].query], np.zeros(len(rows), dtype=np.int64),
                                             np.array(rows), arts)
            sel = qi == q
            assert np.array_equal(one_topic, topic[sel]) and list(one_tier) == list(tier[sel])


def test_recommend_writes_the_stored_lists(seed_store_copy, tmp_path):
    out = tmp_path / "related.jsonl"
    with Archive(seed_store_copy) as a:
        first = recommend(a, out, k=5)
        rows = {r["id"]: r["related"] for r in map(json.loads, out.open(encoding="utf-8"))}
        assert first.recomputed == len(rows) == a.db.count()
        assert all(rows[i] == queries.related(a.store, i, k=5, stored=False)["related"] for i in rows)
        a.remove(["masalla-heat"])
        again = recommend(a, out, k=5)
        assert again.removed == 1 and again.reused > 0 and again.recomputed < again.articles
        rows = {r["id"]: r["related"] for r in map(json.loads, out.open(encoding="utf-8"))}
        assert all(rows[i] == queries.related(a.store, i, k=5, stored=False)["related"] for i in rows)


@pytest.mark.slow
@pytest.mark.skipif(not ECB.exists(), reason=f"ECB+ not found at {ECB}")
def test_stored_lists_equal_on_demand_on_ecbplus(tmp_path):
    """Every ECB+ article under every documented filter set, after one add and after small writes (incremental
    refreshes: 40 added, 15 removed, 5 changed)."""
    records = [r for r in read_path(ECB) if hasattr(r, "id")]
    random.Random(3).shuffle(records)
    with Archive(tmp_path / "ecb") as a:
        a.add(records[:900])
        for name, opts in option_sets(a).items():
            assert differing(a, opts) == [], name
        a.add(records[900:940])
        a.remove([r.id for r in records[:15]])
        from dataclasses import replace

        a.add([replace(r, text=r.text + "\nUpdated: the court ruled on 12 May.") for r in records[20:25]])
        assert a._writer.last_regroup is not None and not a._writer.last_regroup.full
        assert fresh(a.store)
        for name in ("defaults", "exclude_ids", "combined"):
            assert differing(a, option_sets(a)[name]) == [], name


def test_plans_do_not_depend_on_how_their_first_searches_were_batched(tmp_path, hash_embedder, monkeypatch):
    """``compute`` searches many owners at once and plans them a block at a time: the same plans as one owner at
    a time, and no more searching (a block that read other owners' rows of the first search would find their
    neighbours, not its own, and search again). 300 articles: more than one search's depth."""
    from storycluster import Article
    from storycluster.related.stored import compute
    from storycluster.store.vector_index import VectorIndex

    rng = random.Random(5)
    arts = []
    for story in range(60):  # 60 stories of 5 articles, each story with words of its own
        vocab = [f"s{story}w{i}" for i in range(15)]
        arts += [Article(f"a{story:02d}-{n}", " ".join(rng.sample(vocab, 6)), " ".join(rng.choices(vocab, k=60)),
                         lang="en") for n in range(5)]
    searched: list[int] = []
    search = VectorIndex.search
    monkeypatch.setattr(VectorIndex, "search", lambda self, q, k: searched.append(len(q)) or search(self, q, k))
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(arts)
        rows = sorted(a.db.ids_to_rowids().values())
        searched.clear()
        alone = dict(compute(a.store, rows, block=1))
        queries_alone, searched[:] = sum(searched), []
        together = dict(compute(a.store, rows, block=16, search=64))
        assert len(alone) == 300 and together == alone
        assert sum(len(p.entries) for p in alone.values()) > 300  # lists with stories in them
        assert sum(searched) == queries_alone < 2 * 2 * 300  # most owners searched once
        # the next search runs beside a part's plans, the interpreter switching threads quickly meanwhile: a
        # caller that stops early gets its switch interval back, and no search is left running
        interval = sys.getswitchinterval()
        plans_of = compute(a.store, rows, block=16, search=64)
        first = next(plans_of)
        assert first == (rows[0], alone[rows[0]]) and sys.getswitchinterval() < interval
        plans_of.close()
        assert sys.getswitchinterval() == interval
        assert not [t for t in threading.enumerate() if t.name.startswith("storycluster-search")]


def test_an_answer_computed_on_demand_equals_the_stored_lists_under_an_ivf_index(tmp_path, hash_embedder):
    """With an IVF index a group member can sit in no probed list at all, and a search's candidates depend on
    how deep it asked. So every plan's first search reaches a stored list's depth whatever ``k``, a stored
    list's completion adds members after those the search found (they do not rank its stories), and a filtered
    answer from a list stands a story by a found member only: the same answers as computed on demand, with and
    without filters. Headlines drawn from words shared across stories, bodies of their own story's words. The
    index is switched after the add: the stores' lists are recomputed with its vectors."""
    rng = random.Random(11)
    arts = ivf_articles(rng)
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(arts)
        generation = a.db.generation
        a.set_index("ivf")
        assert a.index.index_type == "ivf" and a.index.nlist > a.index._inner.nprobe
        assert fresh(a.store) and a.db.generation > generation
        ids = sorted(a.db.ids_to_rowids())
        excluded = frozenset(rng.sample(ids, 450))
        for name, opts in (("defaults", RelatedOptions()), ("exclude_ids", RelatedOptions(exclude_ids=excluded)),
                           ("per_source", RelatedOptions(per_source=1))):
            differ = [i for i in ids[::2] if queries.related(a.store, i, k=10, options=opts)["related"]
                      != queries.related(a.store, i, k=10, options=opts, stored=False)["related"]]
            assert differ == [], name


@pytest.mark.slow
def test_stored_lists_follow_incremental_adds_under_an_ivf_index(tmp_path, hash_embedder):
    """After each incremental add under an IVF index every stored list still gives the answer computed on
    demand: an added article enters every list whose answer shows it (though its own search probes other lists
    than theirs), and no list keeps a story that only its search's last results held (both searches of an
    article score the lists either probes, so nothing ranks above the scores they gave it). Three adds of 20 to
    1,400 articles whose headlines, five words of forty, tie across stories."""
    arts = ivf_articles(random.Random(11))
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(arts[:1400])
        a.set_index("ivf")
        for step in range(3):
            a.add(arts[1400 + 20 * step:1420 + 20 * step])
            assert fresh(a.store) and a.index.index_type == "ivf"
            differ = [i for i in sorted(a.db.ids_to_rowids()) if queries.related(a.store, i, k=30)
                      != queries.related(a.store, i, k=30, stored=False)]
            assert differ == [], step


def test_ranked_scores_round_as_python_rounds():
    """Stories rank on their best member's score rounded to 4 places, as the answers show it (Python's round:
    the decimal nearest the exact binary value); numpy's round multiplies first, which crosses a half step for
    values within a rounding error of one."""
    from storycluster.related.plan import rounded

    rng = np.random.default_rng(3)
    halves = (np.arange(10_000) + 0.5) / 10_000  # k + 0.5 steps, and their neighbours in binary
    x = np.concatenate([rng.uniform(-1, 1, 20_000), halves, np.nextafter(halves, 2), np.nextafter(halves, -2),
                        -halves])
    assert rounded(x).tolist() == [round(v, 4) for v in x.tolist()]
    assert np.round(x, 4).tolist() != [round(v, 4) for v in x.tolist()]  # the case it guards against exists


def test_a_readers_kept_group_members_follow_every_write(seed_store_copy, monkeypatch):
    """Inside read snapshots of one generation a reader reads a group's members and their cards once; a write
    (here an update of a member's source, by another connection) makes a new generation and the next snapshot
    reads them again; past the row budget the kept ones are dropped, not answered stale."""
    from storycluster.store import database

    with Archive(seed_store_copy, create=False) as reader, Archive(seed_store_copy, create=False) as writer:
        gid, members = max(reader.db.members_of(reader.db.groups_of(reader.db.rowids().tolist()).values()).items(),
                           key=lambda gm: len(gm[1]))
        sql: list[str] = []
        reader.db.conn.set_trace_callback(sql.append)

        def read() -> tuple[list[int], dict]:
            with reader.reading():
                cards: dict = {}
                return reader.db.members_with_cards([gid], cards), cards

        first, cards = read()
        assert first == {gid: members} and set(cards) == set(members)
        sql.clear()
        assert read() == (first, cards)
        assert not any("group_members" in s for s in sql)  # kept
        member = cards[members[-1]]
        stored = writer.article(member.id)
        writer.add([to_article({**stored, "source": "moved.example"}, "test")])
        _, after = read()
        assert after[members[-1]].source == "moved.example"
        monkeypatch.setattr(database, "KEPT_MEMBER_ROWS", 0)
        sql.clear()
        read()
        read()
        assert sum("group_members" in s for s in sql) == 2  # over the budget: read each time


def test_a_large_stores_lists_are_built_after_the_commit_by_worker_processes(tmp_path, hash_embedder, monkeypatch,
                                                                             capsys):
    """Over ``INLINE_MAX`` articles a full regrouping commits its groups with the lists pending, and the same write
    then builds them by one worker process per core (here two, parts of 200 of 1,500 articles under an IVF
    index): the same plans, byte for byte, as one process builds, also when a worker stops half-way; readers
    meanwhile see no list (their answers are computed), never lists of other groups. A build that stops leaves
    the lists pending and answers computed; the next write builds them (what the stopped one had kept aside is
    dropped)."""
    import storycluster.related.stored as stored
    import storycluster.writes as writes
    from storycluster.errors import StoryclusterError

    monkeypatch.setattr(stored, "INLINE_MAX", 100)
    monkeypatch.setattr(stored, "SEARCH", 200)
    monkeypatch.setattr(writes, "cores", lambda: 2)
    used: list[int] = []
    import storycluster.parallel as parallel

    process_map = parallel.process_map
    monkeypatch.setattr(parallel, "process_map", lambda fn, items, n: used.append(n) or process_map(fn, items, n))
    path = tmp_path / "s"
    seen_by_reader: list[tuple[bool, str | None]] = []
    stage = stored._stage

    def staged(store, rows, progress):
        if not seen_by_reader:  # another process's view while the build runs: groups current, lists pending
            with Archive(path, create=False) as reader:
                seen_by_reader.append((fresh(reader.store), reader.db.get_meta("related_lists")))
        return stage(store, rows, progress)

    monkeypatch.setattr(stored, "_stage", staged)
    with Archive(path, embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(7)))  # a flat index: built by this process
        assert used == [] and fresh(a.store) and stored_count(a) == 1500
        a.set_index("ivf")
        assert used == [2] and fresh(a.store) and stored_count(a) == 1500
        assert a._writer.last_regroup is not None and a._writer.last_regroup.lists == 1500
        assert seen_by_reader[-1][0] is False and seen_by_reader[-1][1].startswith("pending:")
        by_workers = dict(a.db.conn.execute("SELECT article, floor || plan FROM related_lists"))
        refs = a.db.conn.execute("SELECT ref, owner FROM related_refs ORDER BY 1, 2").fetchall()
        ids = sorted(a.db.ids_to_rowids())
        assert [i for i in ids[::3] if queries.related(a.store, i, k=10)
                != queries.related(a.store, i, k=10, stored=False)] == []
        # the same lists from one process
        a.db.set_meta("related_lists", f"pending:{a.db.get_meta('groups_generation')}")
        assert stored.build(a.store, workers=1) == 1500 and used == [2]
        assert dict(a.db.conn.execute("SELECT article, floor || plan FROM related_lists")) == by_workers
        assert a.db.conn.execute("SELECT ref, owner FROM related_refs ORDER BY 1, 2").fetchall() == refs

        # a worker process that stops (killed, out of memory) leaves the parts not received to this process
        def one_part_then_stopped(fn, items, n):
            parts = process_map(fn, items, n)
            yield next(parts)
            parts.close()
            raise StoryclusterError("a worker process stopped (exit code -9)")

        monkeypatch.setattr(parallel, "process_map", one_part_then_stopped)
        a.db.set_meta("related_lists", f"pending:{a.db.get_meta('groups_generation')}")
        assert stored.build(a.store, workers=2) == 1500 and fresh(a.store)
        assert dict(a.db.conn.execute("SELECT article, floor || plan FROM related_lists")) == by_workers
        monkeypatch.setattr(parallel, "process_map", lambda fn, items, n: used.append(n) or process_map(fn, items, n))

        # stopped after its first part: pending, no list in the store (they are kept aside until the last)
        def stop(store, rows, progress):
            stage(store, rows, progress)
            raise KeyboardInterrupt

        monkeypatch.setattr(stored, "_stage", stop)
        with pytest.raises(KeyboardInterrupt):
            a.regroup(full=True)
        assert not fresh(a.store) and stored.due(a.store) and stored_count(a) == 0
        assert load_plan(a.store, a.db.ids_to_rowids()["a000-0"]) is None
        assert a.stats()["related_lists"] == {"stored": 0, "current": False, "pending": True,
                                              "max_articles": 2_000_000}
        from storycluster.cli import _read_threads
        from storycluster.parallel import cores

        assert _read_threads(path) == cores()  # serve: answers computed, one read thread per core
        assert "being built after a full regrouping" in capsys.readouterr().err
        monkeypatch.setattr(stored, "_stage", stage)
        a.add([to_article({"id": "late", "title": "h1 h2 h3", "text": "s3w1 s3w2 s3w3 s3w4 " * 10, "lang": "en"})])
        assert fresh(a.store) and stored_count(a) == 1501 and used == [2, 2, 2]
        assert [i for i in sorted(a.db.ids_to_rowids())[::3] if queries.related(a.store, i, k=10)
                != queries.related(a.store, i, k=10, stored=False)] == []


@pytest.mark.slow
def test_a_server_answers_a_write_before_building_the_lists_it_left_pending(tmp_path, hash_embedder, monkeypatch):
    """``serve``: a POST whose full regrouping leaves a large store's lists pending answers once the groups are
    committed; the lists are built afterwards on the write lane (a write sent meanwhile waits for them), reads
    meanwhile computed on one thread per core and back to one once the lists are current. A server stopped
    during the build leaves them pending; the next write builds them."""
    import anyio.to_thread
    from fastapi.testclient import TestClient

    import storycluster.related.stored as stored
    import storycluster.server.backend as backend_module
    import storycluster.writes as writes
    from storycluster.server import StoreBackend, create_app

    monkeypatch.setattr(stored, "INLINE_MAX", 100)
    monkeypatch.setattr(stored, "SEARCH", 200)
    monkeypatch.setattr(writes, "cores", lambda: 1)
    monkeypatch.setattr(backend_module, "cores", lambda: 2)
    path = tmp_path / "s"
    arts = ivf_articles(random.Random(3))
    with Archive(path, embedder=hash_embedder) as a:
        a.add(arts[:1000])
        assert fresh(a.store)
    entered, release = threading.Event(), threading.Event()
    stage = stored._stage

    def held(store, rows, progress):
        entered.set()
        assert release.wait(60)
        return stage(store, rows, progress)

    monkeypatch.setattr(stored, "_stage", held)

    def state() -> tuple[bool, bool, int]:
        with Archive(path, create=False) as reader:
            return fresh(reader.store), stored.due(reader.store), stored_count(reader)

    def rows(items) -> list[dict]:
        return [{"id": x.id, "title": x.title, "text": x.text, "lang": "en"} for x in items]

    async def read_threads() -> int:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    def wait_for(check) -> None:
        for _ in range(600):
            if check():
                return
            threading.Event().wait(0.1)
        raise AssertionError("timed out")

    backend = StoreBackend(path, readers=2, embedder=hash_embedder)
    try:
        with TestClient(create_app(backend, anonymous_writes=True, read_threads=None, cache_mb=0)) as c:
            assert c.portal.call(read_threads) == 1  # lists current: one read thread
            r = c.post("/articles", json=rows(arts[1000:1200]))  # a fifth more: a full regrouping
            assert r.status_code == 200 and r.json()["added"] == 200
            assert entered.wait(60)  # the build has begun after the answer, and holds here
            assert state() == (False, True, 0)
            assert c.portal.call(read_threads) == 2  # answers computed: one read thread per core
            assert c.get("/health").json()["related_lists"] == "pending"
            during = c.get("/articles/a150-1/related?k=8")
            assert during.status_code == 200
            late: list[int] = []  # a write sent during the build waits for it (one write lane)
            sender = threading.Thread(target=lambda: late.append(c.post("/articles", json=[
                {"id": "late", "title": "h1 h2 h3", "text": "s3w1 s3w2 s3w3 s3w4 " * 10, "lang": "en"}]).status_code))
            sender.start()
            sender.join(2.0)
            assert sender.is_alive() and late == []
            release.set()
            sender.join(120)
            assert late == [200]
            wait_for(lambda: state()[0])
            wait_for(lambda: c.portal.call(read_threads) == 1)
            assert state() == (True, False, 1201)
            assert c.get("/health").json()["related_lists"] == "stored"
            assert c.get("/articles/a150-1/related?k=8").json() == during.json()  # now from its stored list
            # stopped during the build: the lists stay pending
            entered.clear()
            release.clear()
            r = c.post("/articles", json=rows(arts[1200:]))
            assert r.status_code == 200 and r.json()["added"] == 300
            assert entered.wait(60)
            threading.Timer(1.0, release.set).start()
        assert state() == (False, True, 0)
    finally:
        backend.close()
    monkeypatch.setattr(stored, "_stage", stage)
    with Archive(path, embedder=hash_embedder) as a:
        assert a.build_lists() == 1501 and fresh(a.store)
        assert [i for i in sorted(a.db.ids_to_rowids())[::7] if queries.related(a.store, i, k=10)
                != queries.related(a.store, i, k=10, stored=False)] == []


def test_writes_can_leave_a_large_stores_lists_for_later(tmp_path, hash_embedder, monkeypatch):
    """``Archive.add(..., lists=False)`` and ``remove(..., lists=False)`` return with the lists a full regrouping
    left pending; ``build_lists`` builds them (stopped when asked, they stay pending), equal to answers on demand."""
    import storycluster.related.stored as stored
    from storycluster.writes import BuildStopped

    monkeypatch.setattr(stored, "INLINE_MAX", 100)
    monkeypatch.setattr(stored, "SEARCH", 200)
    with Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(ivf_articles(random.Random(5))[:300], lists=False)  # a first grouping is a full one
        assert stored.due(a.store) and stored_count(a) == 0
        a.remove(["a000-0"], lists=False)
        assert stored.due(a.store) and stored_count(a) == 0
        with pytest.raises(BuildStopped):
            a.build_lists(stop=lambda: True)
        assert stored.due(a.store) and stored_count(a) == 0
        assert a.build_lists() == 299 and fresh(a.store) and a.build_lists() == 0
        assert [i for i in sorted(a.db.ids_to_rowids())[::5] if queries.related(a.store, i, k=10)
                != queries.related(a.store, i, k=10, stored=False)] == []
