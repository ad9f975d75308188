"""The same-story model: its two regimes, the shipped parameters, calibration round trip, and `compare`
tiers on constructed pairs with the real model."""

import json

import numpy as np
import pytest

from storycluster import Archive, Article
from storycluster.cluster import StoryModel, Thresholds
from storycluster.cluster.model import FEATURES
from storycluster.cluster.scoring import pair_logits

from .conftest import HashEmbedder


def test_shipped_model_names_its_data_and_date():
    m = StoryModel.shipped()
    assert "ECB+" in m.fitted_on and m.fitted_at and len(m.coef) == len(m.short_coef) == len(FEATURES) == 9
    assert m.metrics["bcubed_held_out_topic_halves"]
    assert m.group_floor < m.group_threshold


NO_NUMBERS = {k: np.zeros(4) for k in ("years_jaccard", "years_conflict", "numbers_jaccard", "numbers_conflict")}


def test_cross_lingual_and_headline_pairs_rest_on_semantic_evidence():
    m = StoryModel.shipped()
    t = Thresholds()
    args = dict(lead=np.full(4, 0.6), title=np.full(4, 0.6), tfidf=np.zeros(4), rare=np.zeros(4),
                min_tokens=np.array([300, 300, 5, 20]), cross_lingual=np.array([False, True, False, False]),
                jaccard=np.zeros(4), same_content=np.zeros(4, dtype=bool), **NO_NUMBERS)
    same_lang, cross, headline, short = pair_logits(**args, t=t, m=m)
    assert cross == headline  # neither uses the lexical features
    assert cross >= m.group_threshold  # semantic 0.6 is above the 0.55 anchor: a translation still groups
    assert same_lang < cross  # long texts in one language with no shared words: lexical evidence counts against
    with_words = pair_logits(**{**args, "tfidf": np.full(4, 0.5), "rare": np.full(4, 0.5)}, t=t, m=m)
    assert with_words[0] > same_lang and with_words[1] == cross and with_words[2] == headline
    assert with_words[3] > short  # a short text's own weights: shared words count there too
    assert [m.regime(n, c) for n, c in ((300, False), (300, True), (5, False), (20, False))] == [
        "lexical + semantic", "semantic only", "semantic only", "short lexical + semantic"]


def test_shared_numbers_raise_and_conflicting_numbers_lower_the_odds():
    m = StoryModel.shipped()
    t = Thresholds()
    base = dict(lead=np.full(3, 0.7), title=np.full(3, 0.6), tfidf=np.full(3, 0.3), rare=np.full(3, 0.2),
                min_tokens=np.full(3, 200), cross_lingual=np.zeros(3, dtype=bool), jaccard=np.zeros(3),
                same_content=np.zeros(3, dtype=bool))
    # the same year and the same toll / the years and numbers of another event / no numbers written
    same, other, none = pair_logits(**base, years_jaccard=np.array([1.0, 0, 0]), years_conflict=np.array([0, 1.0, 0]),
                                    numbers_jaccard=np.array([0.5, 0, 0]), numbers_conflict=np.array([0, 1.0, 0]),
                                    t=t, m=m)
    assert same > none > other


def test_semantic_floor_blocks_below_it():
    m = StoryModel.shipped()
    z = m.logits(lead=[0.43, 0.41], title=[0.43, 0.41], semantic=[0.43, 0.41], tfidf=[0, 0], rare=[0, 0],
                 min_tokens=[5, 5], cross_lingual=[True, True])
    assert z[0] >= m.group_floor > z[1]


def test_model_file_round_trip_and_version_check(tmp_path):
    m = StoryModel.shipped()
    p = tmp_path / "m.json"
    p.write_text(m.to_json())
    assert StoryModel.load(p) == m
    p.write_text(m.to_json().replace('"version": 2', '"version": 7'))
    with pytest.raises(ValueError, match="model version 7"):
        StoryModel.load(p)


def test_a_version_1_model_loads_with_zero_weight_on_numbers(tmp_path):
    # a store calibrated before number evidence keeps its model: the same log-odds as before
    old = {"coef": [7.48, 0.28, 5.73, 9.03, 10.79], "intercept": -12.5, "group_threshold": -1.5, "group_floor": -3.0,
           "features": ["lead_cosine", "title_cosine", "semantic", "tfidf_cosine", "rare_terms_cosine"],
           "fitted_on": "my labels", "version": 1}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(old))
    m = StoryModel.load(p)
    assert m.version == 2 and m.coef[5:] == [0.0] * 4 and m.short_coef == [] and m.fitted_on == "my labels"
    z = m.logits(lead=[0.7], title=[0.6], semantic=[0.7], tfidf=[0.3], rare=[0.2], min_tokens=[20],
                 cross_lingual=[False], years_jaccard=[1.0], years_conflict=[0.0], numbers_jaccard=[1.0],
                 numbers_conflict=[0.0])
    assert z[0] == pytest.approx(m.semantic_slope * (0.7 - m.semantic_center) + m.group_threshold)  # short: semantic
    long = m.logits(lead=[0.7], title=[0.6], semantic=[0.7], tfidf=[0.3], rare=[0.2], min_tokens=[200],
                    cross_lingual=[False], years_jaccard=[1.0], numbers_jaccard=[1.0])
    assert long[0] == pytest.approx(7.48 * 0.7 + 0.28 * 0.6 + 5.73 * 0.7 + 9.03 * 0.3 + 10.79 * 0.2 - 12.5)


STORIES = {
    "flood": "Heavy rain flooded the city of {city} on {day}, killing {n} people, cutting roads and power lines "
             "while rescue teams searched submerged streets for survivors through the night",
    "chess": "The world chess championship final in {city} ended on {day} after {n} moves when the challenger "
             "resigned a long endgame, handing the title to the defending champion again",
    "strike": "Rail workers in {city} walked out on {day} over pay, stopping {n} trains and leaving commuters "
              "stranded as unions and the operator traded blame for the failed talks",
}


def labelled_articles():
    rows, gold = [], {}
    rng = np.random.default_rng(1)
    for story, template in STORIES.items():
        for k in range(5):
            text = template.format(city=["Valencia", "Oslo", "Lyon"][k % 3], day=["Monday", "Tuesday"][k % 2],
                                   n=int(rng.integers(10, 99)))
            words = text.split()
            rng.shuffle(words[5:])  # different write-ups of the same event share words, not sentences
            aid = f"{story}-{k}"
            body = " ".join(words) + f" report number {k}. " + template.format(city="the region", day="today", n=k)
            rows.append(Article(aid, f"{story} report {k}", body))
            gold[aid] = story
    return rows, gold


def test_calibration_round_trip(tmp_path):
    rows, gold = labelled_articles()
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add(rows)
        before = archive.model
        result = archive.calibrate(gold, fitted_on="test labels")
        assert (tmp_path / "s" / "story_model.json").exists()
        fitted = archive.model
        assert fitted != before and fitted.fitted_on == "test labels"
        assert result["labelled"] == 15 and result["in_sample"]["f1"] == pytest.approx(1.0)
        groups = archive.dedup()["groups"]
    assert sorted(sorted(m["id"].split("-")[0] for m in g["members"]) for g in groups) == \
        [["chess"] * 5, ["flood"] * 5, ["strike"] * 5]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert archive.model == fitted  # the store's own model is used after reopening
    data = json.loads((tmp_path / "s" / "story_model.json").read_text())
    assert data["fitted_on"] == "test labels" and data["version"] == 2


def test_calibration_needs_labels(tmp_path):
    rows, _ = labelled_articles()
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add(rows)
        with pytest.raises(ValueError, match="at least 4"):
            archive.calibrate({"flood-0": "x"})
        with pytest.raises(ValueError, match="no same-story pairs"):
            archive.calibrate({a.id: a.id for a in rows})


def test_compare_tiers_on_constructed_pairs(seed_store_copy, seed_rows):
    by_id = {r["id"]: r for r in seed_rows}
    sudani = by_id["seed-readalso-sudani"]
    exact = dict(sudani, id="exact-copy", source="outlet-b")
    tashkeel = dict(sudani, id="tashkeel-copy", text=sudani["text"].replace("رئيس الوزراء", "رَئِيسُ الوُزَرَاءِ"))
    with Archive(seed_store_copy, create=False) as archive:
        archive.add([Article(**{k: v for k, v in r.items()}) for r in (exact, tashkeel)])
        cases = {
            "exact copy": archive.compare("seed-readalso-sudani", "exact-copy"),
            "tashkeel-only copy": archive.compare("seed-readalso-sudani", "tashkeel-copy"),
            "translation": archive.compare("en-storm-boris", "fr-tempete-boris"),
            "same topic, other event": archive.compare("seed-reuters-deal", "similar-06"),
            "unrelated": archive.compare("en-iphone16", "masalla-heat"),
        }
    tiers = {name: c["tier"] for name, c in cases.items()}
    assert tiers == {"exact copy": "duplicate", "tashkeel-only copy": "duplicate", "translation": "same_story",
                     "same topic, other event": "related", "unrelated": "unrelated"}
    assert cases["exact copy"]["similarity"] == 1.0 and cases["tashkeel-only copy"]["similarity"] == 1.0
    assert cases["translation"]["evidence"]["cross_lingual"] and cases["translation"]["similarity"] > 0.5
    assert cases["unrelated"]["similarity"] < cases["same topic, other event"]["similarity"] < 0.5
