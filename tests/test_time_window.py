"""Time window: dated articles more than window_days apart are never the same story; duplicates and the
related tier have no window."""

from __future__ import annotations

import json

import numpy as np

from storycluster import Archive
from storycluster.cluster.model import StoryModel
from storycluster.cluster.scoring import Thresholds, pair_logits, similarity_from
from storycluster.ingest import to_article

from .conftest import SEEDS


def test_pair_logits_window():
    t, m = Thresholds(window_days=7), StoryModel.shipped()
    args = dict(lead=np.array([0.9, 0.9, 0.9, 0.9]), title=np.array([0.9] * 4), tfidf=np.array([0.8] * 4),
                rare=np.array([0.8] * 4), min_tokens=np.array([100] * 4), cross_lingual=np.array([False] * 4),
                jaccard=np.array([0.1, 0.1, 0.1, 0.9]), same_content=np.array([False] * 4),
                **{k: np.zeros(4) for k in ("years_jaccard", "years_conflict", "numbers_jaccard", "numbers_conflict")})
    z = pair_logits(**args, t=t, m=m, date_gap=np.array([1.0, 30.0, np.nan, 30.0]))
    assert z[0] >= m.group_threshold and z[2] == z[0]  # within the window / a date unknown: as before
    assert z[1] < m.group_floor  # a month apart: never grouped
    assert z[3] >= m.group_threshold  # a lexical duplicate a month later is still a copy


def test_a_pair_dated_apart_reports_the_window_rules_probability_in_every_regime():
    """The window rule sets a pair's log-odds under the grouping floor; the headline regime's slope is that
    regime's scale, not the rule's, so it does not apply: a headline pair a month apart is as unlikely as two
    full texts a month apart (it showed 0.35, a headline pair within the window with those log-odds)."""
    t, m = Thresholds(window_days=7), StoryModel.shipped()
    z = np.full(3, m.group_floor - 1.0)
    tokens = np.array([8, 300, 8])  # a headline pair apart, full texts apart, a headline pair within the window
    p = similarity_from(z, np.zeros(3), np.zeros(3, dtype=bool), t, m.slopes(tokens, np.zeros(3, dtype=bool)),
                        np.array([30.0, 30.0, 1.0]))
    assert p[0] == p[1] < 0.1 < p[2] < 0.5


def test_headlines_a_season_apart_are_not_reported_as_a_third_likely_one_story(tmp_path):
    """Real model: two headline items of one storm two months apart. `compare` says what the window rule says."""
    rows = [{"id": "h1", "title": "Storm Boris floods towns across central Europe", "published": "2024-09-15"},
            {"id": "h2", "title": "Storm Boris floods towns in central Europe", "published": "2024-11-20"},
            {"id": "h3", "title": "Storm Boris floods towns in central Europe, thousands evacuated",
             "published": "2024-09-16"}]
    with Archive(tmp_path / "s") as a:
        a.add([to_article({**r, "text": r["title"]}) for r in rows])
        far, near = a.compare("h1", "h2"), a.compare("h1", "h3")
        assert far["evidence"]["regime"] == "headline" and far["evidence"]["date_gap_days"] == 66.0
        assert far["similarity"] <= 0.07 and far["tier"] != "same_story"  # as the README says
        assert near["similarity"] > 0.5 and near["tier"] == "same_story"


def boris(published_fr: str) -> list:
    rows = {r["id"]: r for r in map(json.loads, SEEDS.open(encoding="utf-8"))}
    fr = dict(rows["fr-tempete-boris"], published=published_fr)
    return [to_article(rows["en-storm-boris"]), to_article(fr), to_article(rows["en-iphone16"])]


def grouped(a: Archive) -> bool:
    return any({"en-storm-boris", "fr-tempete-boris"} <= {m["id"] for m in g["members"]} for g in a.dedup()["groups"])


def test_translation_a_month_later_is_related_not_same_story(tmp_path):
    with Archive(tmp_path / "near") as a:
        a.add(boris("2024-09-17"))
        assert grouped(a)
    with Archive(tmp_path / "far") as a:
        a.add(boris("2024-10-20"))
        assert not grouped(a)
        c = a.compare("en-storm-boris", "fr-tempete-boris")
        assert c["evidence"]["date_gap_days"] == 34.0 and c["tier"] == "related"
        rel = a.related("en-storm-boris", k=3)["related"]
        assert rel[0]["id"] == "fr-tempete-boris" and rel[0]["tier"] == "related"  # related reaches further back
        assert a.set_thresholds(window_days=60) and grouped(a)
        assert not a.set_thresholds(window_days=60)
    with Archive(tmp_path / "far") as a:  # the setting is stored with the store
        assert a.thresholds.window_days == 60 and grouped(a)


def test_cli_window_option(tmp_path):
    from typer.testing import CliRunner

    from storycluster.cli import app

    store = tmp_path / "s"
    r = CliRunner().invoke(app, ["add", str(SEEDS), "--window-days", "3", "--store", str(store)])
    assert r.exit_code == 0, r.output
    with Archive(store) as a:
        assert a.stats()["thresholds"]["window_days"] == 3
