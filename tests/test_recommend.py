"""recommend: every article's related list as JSONL; a later run recomputes only what changed and
gives exactly what a full run gives."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.ingest import to_article
from storycluster.recommend import recommend

from .conftest import SEEDS

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


def test_recommend_cli(seed_store, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["recommend", "--out", str(out), "-k", "3", "--store", str(seed_store)])
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert len(rows) == sum(1 for _ in SEEDS.open()) and all(len(r["related"]) <= 3 for r in rows.values())
    assert "25 articles written" in result.stderr
