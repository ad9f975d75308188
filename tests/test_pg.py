"""PostgreSQL + pgvector round trip: export the seed store, then `related` from PostgreSQL equals `related`
from the store; the server answers from PostgreSQL. Needs STORYCLUSTER_TEST_DSN (.ci/postgres.sh prints
one); skipped without it only outside CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.errors import StoreError
from storycluster.ranking import RelatedOptions
from storycluster.server import create_app

from .conftest import ECB, SUDANI_HEADLINES, ivf_articles

DSN = os.environ.get("STORYCLUSTER_TEST_DSN")
if not DSN and os.environ.get("CI"):
    raise RuntimeError("CI must provide PostgreSQL: run .ci/postgres.sh and set STORYCLUSTER_TEST_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="no PostgreSQL (set STORYCLUSTER_TEST_DSN; .ci/postgres.sh)")


@pytest.fixture(scope="module")
def pg(seed_store):
    from storycluster.server.pg import PgBackend

    result = CliRunner().invoke(app, ["export-pg", DSN, "-k", "10", "--store", str(seed_store)])
    assert result.exit_code == 0, result.output
    assert "exported 25 articles" in result.stderr
    backend = PgBackend(DSN)
    yield backend
    backend.close()


def test_related_from_pg_equals_store(pg, seed_store):
    with Archive(seed_store) as a:
        ids = sorted(i for _, i, _, _ in a.db.facts())
        for article_id in ids:
            assert pg.related(article_id, 10, RelatedOptions()) == a.related(article_id, k=10), article_id
        for opts in (RelatedOptions(exclude_sources={"exemple-presse.fr"}), RelatedOptions(per_source=1),
                     RelatedOptions(past_only=True), RelatedOptions(lang="fr")):
            for article_id in ("seed-main", "en-sudani-bloomberg", "en-storm-boris"):
                assert pg.related(article_id, 5, opts) == a.related(article_id, k=5, options=opts), (article_id, opts)


def test_pg_groups_and_article(pg, seed_store):
    with Archive(seed_store) as a:
        local = a.groups(limit=100)
        assert pg.groups(100, 0) == local
        gid = local["groups"][0]["group"]
        assert pg.group(gid) == a.group(gid)
        assert pg.article("seed-main") == a.article("seed-main")


def test_server_on_pg_backend(pg):
    with TestClient(create_app(pg)) as c:
        assert c.get("/health").json()["backend"] == "pg" and c.get("/health").json()["related_lists"] == "stored"
        items = c.get("/articles/seed-main/related").json()["related"]
        assert sum(1 for i in items if {i["id"], *(o["id"] for o in i["also_in"])} & set(SUDANI_HEADLINES)) == 1
        r = c.post("/related", json={"text": "Iraq's prime minister says American forces are no longer needed "
                                             "after the defeat of ISIS", "k": 3})
        assert r.status_code == 200 and set(SUDANI_HEADLINES) & {x for i in r.json()["related"][:1]
                                                                   for x in (i["id"], *(o["id"] for o in i["also_in"]))}
        assert "note" not in r.json()  # as the store backend says (tests/test_server.py)
        short = c.post("/related", json={"text": "Sudani: US troops no longer needed", "k": 3}).json()
        assert short["note"].startswith("the query has 6 words and is judged as a headline")
        assert c.post("/articles", json=[]).status_code == 405
        assert c.get("/articles/nope/related").status_code == 404


def test_export_to_a_bad_dsn_is_a_clear_error(seed_store):
    from storycluster.server.pg import PgBackend

    with pytest.raises(StoreError, match="cannot connect"):
        PgBackend("postgresql://nobody@127.0.0.1:1/none")


def test_export_names_the_article_postgresql_cannot_take(seed_store_copy):
    """A NUL character (refused at ingest now; a store written before may hold one) fails the export with the
    article and field named, and the tables already there stay as they were."""
    import sqlite3

    import psycopg

    def exported() -> int | None:
        with psycopg.connect(DSN) as pgc:
            if pgc.execute("SELECT to_regclass('sc_articles')").fetchone()[0] is None:
                return None
            return pgc.execute("SELECT count(*) FROM sc_articles").fetchone()[0]

    before = exported()
    with sqlite3.connect(seed_store_copy / "store.sqlite") as conn:
        conn.execute("UPDATE articles SET title = 'bad' || char(0) || 'title' WHERE id = 'similar-02'")
    conn.close()
    result = CliRunner().invoke(app, ["export-pg", DSN, "-k", "5", "--store", str(seed_store_copy)])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "article 'similar-02': its title holds a NUL character" in result.stderr
    assert exported() == before


@contextmanager
def own_database(suffix: str) -> Iterator[str]:
    """A database of its own beside the test one (created empty, dropped after): its DSN."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{conninfo_to_dict(DSN).get('dbname', 'postgres')}_{suffix}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(DSN, dbname=name)
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.slow
@pytest.mark.skipif(not ECB.exists(), reason=f"ECB+ not found at {ECB}")
def test_pg_answers_equal_the_store_on_ecbplus(tmp_path):
    """ECB+ (980 articles in dense topics, so lists reach past the first candidates) exported to a database of its
    own: for every third id and each documented filter set, `serve --backend pg` gives the store's list."""
    from storycluster.server.pg import PgBackend

    store = tmp_path / "ecb"
    with Archive(store) as a:
        a.add_paths([ECB], on_error="skip")
    filters = {"defaults": RelatedOptions(), "per_source": RelatedOptions(per_source=1),
               "diversity": RelatedOptions(diversity=0.5), "lang": RelatedOptions(lang="en"),
               "exclude_source": RelatedOptions(exclude_sources={"www.examiner.com", "www.huffingtonpost.com"}),
               "combined": RelatedOptions(per_source=1, diversity=0.3, exclude_sources={"www.examiner.com"})}
    with own_database("ecb") as dsn:
        result = CliRunner().invoke(app, ["export-pg", dsn, "-k", "10", "--store", str(store)])
        assert result.exit_code == 0, result.output
        with closing(PgBackend(dsn)) as backend, Archive(store, create=False) as a:
            ids = sorted(a.db.ids_to_rowids())[::3]
            for what, options in filters.items():
                differ = [i for i in ids if a.related(i, k=10, options=options)["related"]
                          != backend.related(i, 10, options)["related"]]
                assert not differ, (what, len(differ), differ[:5])


def test_pg_answers_equal_the_store_under_an_ivf_index(tmp_path, hash_embedder):
    """Under an IVF index a stored list's completion adds group members the search did not find; a filtered
    answer stands a story by a found member only (the store's answer computed with the filter finds no other),
    so the exported alternates a filter may fall back on are the found members too: the same answers from
    PostgreSQL as from the store (the articles of
    ``test_an_answer_computed_on_demand_equals_the_stored_lists_under_an_ivf_index``, from three outlets)."""
    import random

    from storycluster.server.pg import PgBackend, export_pg

    rng = random.Random(11)
    arts = ivf_articles(rng, sources=True)
    with own_database("ivf") as dsn, Archive(tmp_path / "s", embedder=hash_embedder) as a:
        a.add(arts)
        a.set_index("ivf")
        assert a.index.index_type == "ivf"
        export_pg(a, dsn, k=10)
        with closing(PgBackend(dsn)) as backend:
            ids = sorted(a.db.ids_to_rowids())
            excluded = frozenset(rng.sample(ids, 150))
            for what, opts in (("defaults", RelatedOptions()), ("exclude_ids", RelatedOptions(exclude_ids=excluded)),
                               ("exclude_source", RelatedOptions(exclude_sources={"outlet0.example"})),
                               ("per_source", RelatedOptions(per_source=1))):
                differ = [i for i in ids[::3] if a.related(i, k=10, options=opts)["related"]
                          != backend.related(i, 10, opts)["related"]]
                assert differ == [], (what, len(differ), differ[:5])
