"""The same-story model: its regimes, the shipped parameters, what a tier means, models of earlier versions,
calibration round trip, and `compare` tiers on constructed pairs with the real model."""

import json

import numpy as np
import pytest

from storycluster import Archive, Article
from storycluster.cluster import StoryModel, Thresholds
from storycluster.cluster.model import DUPLICATE_LOGIT, FEATURES, REGIMES
from storycluster.cluster.scoring import pair_logits, semantic_similarity, similarity_from, tiers, topical

from .conftest import HashEmbedder


def test_shipped_model_names_its_data_sets_and_has_every_regime():
    m = StoryModel.shipped()
    assert all(name in m.fitted_on for name in ("ECB+", "SemEval", "WMT")) and m.fitted_at
    assert set(m.regimes) == set(REGIMES) and all(len(r.coef) == len(FEATURES) == 9 for r in m.regimes.values())
    assert m.group_floor < m.group_threshold
    headline = m.regimes["headline"].coef
    assert headline[FEATURES.index("tfidf_cosine")] == headline[FEATURES.index("rare_terms_cosine")] == 0.0


NO_NUMBERS = {k: np.zeros(6) for k in ("years_jaccard", "years_conflict", "numbers_jaccard", "numbers_conflict")}


def test_each_pair_gets_one_regime():
    m = StoryModel.shipped()
    cases = [(300, False, False, "full"), (20, False, False, "short"), (300, True, False, "cross"),
             (5, False, False, "headline"), (20, True, False, "headline"), (300, False, True, "lexical only")]
    assert [m.regime(n, c, u) for n, c, u, _ in cases] == [r for *_, r in cases]
    masks = m.regime_masks([n for n, *_ in cases], [c for _, c, *_ in cases], [u for _, _, u, _ in cases])
    assert (sum(v.astype(int) for v in masks.values()) == 1).all()


def test_a_language_the_model_does_not_read_gets_lexical_evidence_only():
    m = StoryModel.shipped()
    t = Thresholds()
    args = dict(lead=np.full(6, 0.95), title=np.full(6, 0.95), tfidf=np.full(6, 0.6), rare=np.full(6, 0.6),
                min_tokens=np.full(6, 300), cross_lingual=np.zeros(6, dtype=bool),
                jaccard=np.array([0.0, 0.0, 0.9, 0.0, 0.0, 0.0]), same_content=np.array([0, 0, 0, 1, 0, 0], bool),
                **NO_NUMBERS)
    unread = np.array([True, False, True, True, True, False])
    z = pair_logits(**args, unreadable=unread, t=t, m=m)
    assert z[0] == m.lexical_only_logit < m.group_floor  # vectors of an unread language say nothing
    assert z[1] > 0  # the same evidence in a language it reads: same story
    assert z[2] >= DUPLICATE_LOGIT and z[3] >= DUPLICATE_LOGIT  # copies are still copies
    topic = topical(np.full(6, 0.95), np.array([0.1, 0.1, 0.1, 0.1, 0.5, 0.5]), unread)
    assert topic.tolist() == [0.1, 0.95, 0.1, 0.1, 0.5, 0.95]  # related by word overlap where unread


def test_same_story_means_probability_at_least_one_half():
    m = StoryModel.shipped()
    t = Thresholds()
    rng = np.random.default_rng(0)
    n = 4000
    ev = dict(lead=rng.uniform(0, 1, n), title=rng.uniform(0, 1, n), tfidf=rng.uniform(0, 0.6, n),
              rare=rng.uniform(0, 0.6, n), min_tokens=rng.integers(1, 400, n), cross_lingual=rng.random(n) < 0.3,
              jaccard=rng.uniform(0, 0.45, n), same_content=np.zeros(n, dtype=bool),
              **{k: rng.random(n) < 0.2 for k in ("years_conflict", "numbers_conflict")},
              **{k: rng.uniform(0, 1, n) for k in ("years_jaccard", "numbers_jaccard")})
    z = pair_logits(**ev, t=t, m=m)
    p = similarity_from(z, ev["jaccard"], ev["same_content"], t, m.slopes(ev["min_tokens"], ev["cross_lingual"]))
    tier = tiers(z, semantic_similarity(ev["lead"], ev["title"], t.title_weight), ev["jaccard"], ev["same_content"],
                 t, m)
    assert 0.05 < (tier == "same_story").mean() < 0.95  # both verdicts occur
    assert ((tier == "same_story") == (p >= 0.5)).all()


def test_the_headline_regimes_probability_is_flatter_and_its_verdicts_unchanged():
    """The headline regime reports ``sigmoid(slope · z)`` (its scale fitted on real headlines, docs/quality.md):
    a headline pair at log-odds 6.5 is no longer 0.998; the sign, so the verdict and the groups, stay."""
    m = StoryModel.shipped()
    t = Thresholds()
    slope = m.similarity_slopes["headline"]
    assert 0.1 < slope < 0.5
    z = np.array([6.5, 6.5, -3.0, 0.4])
    tokens = np.array([8, 300, 8, 8])  # a headline pair, the same log-odds for two full texts, ...
    p = similarity_from(z, np.zeros(4), np.zeros(4, dtype=bool), t, m.slopes(tokens, np.zeros(4, dtype=bool)))
    assert p[0] == pytest.approx(1 / (1 + np.exp(-slope * 6.5))) and p[0] < 0.9 < p[1]
    assert p[2] < 0.5 < p[3]  # the verdict is the log-odds' sign
    assert m.regime(8, False) == "headline" and m.regime(300, False) == "full"
    # a lexical duplicate of a headline (the duplicate rule's log-odds, not the regime's) keeps its certainty
    dup = similarity_from(np.array([12.0]), np.array([0.6]), np.zeros(1, dtype=bool), t, m.slopes(8, False))
    assert dup[0] > 0.999


def test_similarity_slopes_are_checked_when_a_model_loads(tmp_path):
    m = StoryModel.shipped()
    p = tmp_path / "m.json"
    data = json.loads(m.to_json())
    for bad in ({"headline": -1}, {"titles": 0.5}, {"headline": "x"}, [0.2]):
        p.write_text(json.dumps({**data, "similarity_slopes": bad}))
        with pytest.raises(ValueError, match="similarity_slopes must map regimes"):
            StoryModel.load(p)
    del data["similarity_slopes"]  # a model written before slopes: every regime reports sigmoid(z)
    p.write_text(json.dumps(data))
    assert StoryModel.load(p).slopes(8, False) == 1.0


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


def test_model_file_round_trip_and_version_check(tmp_path):
    m = StoryModel.shipped()
    p = tmp_path / "m.json"
    p.write_text(m.to_json())
    assert StoryModel.load(p) == m
    p.write_text(m.to_json().replace('"version": 3', '"version": 7'))
    with pytest.raises(ValueError, match="model version 7"):
        StoryModel.load(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        StoryModel.load(p)


def test_models_of_earlier_versions_load_with_the_same_log_odds(tmp_path):
    # a store calibrated before: its model keeps giving the log-odds it gave (the semantic line for the rest)
    old = {"coef": [7.48, 0.28, 5.73, 9.03, 10.79], "intercept": -12.5, "group_threshold": -1.5, "group_floor": -3.0,
           "features": ["lead_cosine", "title_cosine", "semantic", "tfidf_cosine", "rare_terms_cosine"],
           "fitted_on": "my labels", "version": 1}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(old))
    m = StoryModel.load(p)
    assert m.version == 3 and m.regimes["full"].coef[5:] == [0.0] * 4 and m.fitted_on == "my labels"
    slope = (-1.5 + 3.0) / (0.55 - 0.42)
    z = m.logits(lead=[0.7, 0.7, 0.7], title=[0.6] * 3, semantic=[0.7] * 3, tfidf=[0.3] * 3, rare=[0.2] * 3,
                 min_tokens=[20, 300, 5], cross_lingual=[False, True, False], years_jaccard=[1.0] * 3,
                 numbers_jaccard=[1.0] * 3)
    assert z == pytest.approx([slope * (0.7 - 0.55) - 1.5] * 3)  # short (no short weights then), cross, headline
    long = m.logits(lead=[0.7], title=[0.6], semantic=[0.7], tfidf=[0.3], rare=[0.2], min_tokens=[200],
                    cross_lingual=[False], years_jaccard=[1.0], numbers_jaccard=[1.0])
    assert long[0] == pytest.approx(7.48 * 0.7 + 0.28 * 0.6 + 5.73 * 0.7 + 9.03 * 0.3 + 10.79 * 0.2 - 12.5)
    v2 = {**old, "version": 2, "features": list(FEATURES), "coef": [1.0] * 9, "short_coef": [2.0] * 9,
          "short_intercept": -1.0}
    p.write_text(json.dumps(v2))
    m2 = StoryModel.load(p)
    assert m2.regimes["short"].coef == [2.0] * 9 and m2.regimes["short"].intercept == -1.0


STORIES = {
    "flood": "Heavy rain flooded the city of {city} on {day}, killing {n} people, cutting roads and power lines "
             "while rescue teams searched submerged streets for survivors through the night",
    "chess": "The world chess championship final in {city} ended on {day} after {n} moves when the challenger "
             "resigned a long endgame, handing the title to the defending champion again",
    "strike": "Rail workers in {city} walked out on {day} over pay, stopping {n} trains and leaving commuters "
              "stranded as unions and the operator traded blame for the failed talks",
}


FILLER = ("officials", "said", "later", "according", "sources", "local", "statement", "week", "reporters",
          "residents", "morning", "evening", "national", "agency", "spokesperson", "confirmed", "earlier", "update")


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
            filler = rng.choice(FILLER, 30)  # words of any story: the text is long enough for the full regime
            body = " ".join(words) + f" report number {k}. " + " ".join(filler)
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
        refitted = set(result["regimes_fitted"]) if "regimes_fitted" in result else set(fitted.metrics["regimes_fitted"])
        assert all(name not in fitted.similarity_slopes for name in refitted)  # their own scale, no old slope
        assert {k: v for k, v in before.similarity_slopes.items() if k not in refitted} == fitted.similarity_slopes
        assert result["labelled"] == 15 and result["in_sample"]["f1"] == pytest.approx(1.0)
        groups = archive.dedup()["groups"]
    assert sorted(sorted(m["id"].split("-")[0] for m in g["members"]) for g in groups) == \
        [["chess"] * 5, ["flood"] * 5, ["strike"] * 5]
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        assert archive.model == fitted  # the store's own model is used after reopening
    data = json.loads((tmp_path / "s" / "story_model.json").read_text())
    assert data["fitted_on"] == "test labels" and data["version"] == 3


def test_a_regime_calibrated_on_a_users_labels_reports_its_own_probability(tmp_path):
    """Headline items labelled by a user refit the headline regime; the slope fitted for the shipped weights
    (``similarity_slopes``) then goes: the new weights' probability is already on the user's scale."""
    rows, gold = labelled_articles()
    heads = [Article(a.id, "", " ".join(a.text.split()[5:13]), lang="en") for a in rows]  # reworded
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add(heads)
        assert "headline" in archive.model.similarity_slopes
        result = archive.calibrate(gold, fitted_on="headline labels")
        assert "headline" in result["regimes_fitted"] and "headline" not in archive.model.similarity_slopes


def test_calibrate_command_prints_a_summary_or_the_weights(tmp_path):
    from typer.testing import CliRunner

    from storycluster.cli import app

    rows, gold = labelled_articles()
    with Archive(tmp_path / "s") as archive:  # the real model, as the command opens the store
        archive.add(rows)
    labels = tmp_path / "gold.jsonl"
    labels.write_text("".join(json.dumps({"id": i, "story": s}) + "\n" for i, s in gold.items()), encoding="utf-8")
    text = CliRunner().invoke(app, ["calibrate", str(labels), "--label", "story", "--store", str(tmp_path / "s")])
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("fitted on 15 labelled articles of gold.jsonl (story); regimes fitted: ")
    assert f"saved to {tmp_path / 's' / 'story_model.json'}: used from now on" in text.stdout
    data = CliRunner().invoke(app, ["calibrate", str(labels), "--label", "story", "-f", "json", "--store",
                                    str(tmp_path / "s")])
    weights = json.loads(data.stdout)
    assert weights["labelled"] == 15 and set(weights["regimes"]) >= set(weights["regimes_fitted"])


def test_calibration_needs_labels(tmp_path):
    rows, _ = labelled_articles()
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as archive:
        archive.add(rows)
        with pytest.raises(ValueError, match="at least 4"):
            archive.calibrate({"flood-0": "x"})
        with pytest.raises(ValueError, match="fewer than 20 same-story or different-story pairs"):
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
