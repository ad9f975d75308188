"""Evaluation metrics against small examples computed by hand, and the eval / score-pairs commands."""

import csv
import io
import json
import math

import pytest
from typer.testing import CliRunner

from storycluster.cli import app
from storycluster.evaluate import adjusted_rand_index, bcubed, pairwise, pearson, roc_auc, spearman

GOLD = {"a": 1, "b": 1, "c": 2, "d": 2}
PRED = {"a": "x", "b": "x", "c": "x", "d": "y"}


def test_bcubed_by_hand():
    # precision: a 2/3, b 2/3, c 1/3, d 1 -> 2/3; recall: a 1, b 1, c 1/2, d 1/2 -> 3/4
    m = bcubed(PRED, GOLD)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(12 / 17)
    assert bcubed(GOLD, GOLD) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_pairwise_by_hand():
    m = pairwise(PRED, GOLD)  # predicted pairs ab ac bc, gold pairs ab cd, one in common
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 2)


def test_adjusted_rand_by_hand():
    assert adjusted_rand_index(PRED, GOLD) == pytest.approx(0.0)  # index 1 equals its expectation 1
    assert adjusted_rand_index(GOLD, GOLD) == pytest.approx(1.0)


def test_correlations_and_auc_by_hand():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(0.8)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties take their average rank
    assert roc_auc([0.9, 0.8, 0.3, 0.5], [True, False, True, False]) == pytest.approx(0.5)
    assert roc_auc([0.9, 0.1], [True, False]) == 1.0
    assert math.isnan(roc_auc([0.9, 0.1], [True, True]))


def test_items_missing_from_either_side_are_left_out():
    assert bcubed({"a": 1, "zz": 2}, {"a": 1, "b": 2})["precision"] == 1.0
    with pytest.raises(ValueError, match="no item is in both"):
        bcubed({"x": 1}, {"y": 1})


def test_eval_and_score_pairs_commands_on_the_seeds(seed_store, tmp_path):
    runner = CliRunner()
    gold = tmp_path / "gold.jsonl"
    from .conftest import ROOT

    gold.write_text((ROOT / "seeds" / "gold.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    r = runner.invoke(app, ["eval", str(gold), "--label", "story", "--format", "json", "--store", str(seed_store)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["evaluated"] == 25 and data["n_missing"] == 0
    assert 0.8 < data["bcubed"]["f1"] <= 1.0 and -1 <= data["adjusted_rand_index"] <= 1
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"id1": "similar-03", "id2": "en-sudani-bloomberg", "score": 5},
            {"id1": "similar-03", "id2": "similar-10", "score": 0},
            {"id1": "en-storm-boris", "id2": "fr-tempete-boris", "score": 5},
            {"id1": "en-iphone16", "id2": "seed-main", "score": 0},
            {"id1": "similar-03", "id2": "not-there", "score": 1}]
    pairs.write_text("".join(json.dumps(x) + "\n" for x in rows), encoding="utf-8")
    r = runner.invoke(app, ["eval", str(gold), "--label", "story", "--pairs", str(pairs), "--split", "3",
                            "--format", "json", "--store", str(seed_store)])
    p = json.loads(r.stdout)["pairs"]
    assert (p["n"], p["scored"], p["not_in_store"], p["positives"]) == (5, 4, 1, 2)
    assert p["roc_auc"] == 1.0 and p["spearman"] > 0.5
    # rated pairs alone (no labelled articles): the same pair figures, and how many of each side are same_story
    alone = runner.invoke(app, ["eval", "--pairs", str(pairs), "--split", "3", "--format", "json",
                                "--store", str(seed_store)])
    assert alone.exit_code == 0, alone.output
    only = json.loads(alone.stdout)
    assert set(only) == {"pairs"} and {k: v for k, v in only["pairs"].items() if "same_story" not in k} == \
        {k: v for k, v in p.items() if "same_story" not in k}
    assert (only["pairs"]["same_story_positives"], only["pairs"]["same_story_negatives"]) == (1.0, 0.0)
    text = runner.invoke(app, ["eval", "--pairs", str(pairs), "--split", "3", "--store", str(seed_store)]).stdout
    assert "gold items" not in text and "same_story   on 100% of the positives, 0% of the others" in text
    neither = runner.invoke(app, ["eval", "--store", str(seed_store)])
    assert neither.exit_code == 2 and "GOLD.jsonl" in neither.stderr and "--pairs" in neither.stderr
    r = runner.invoke(app, ["score-pairs", str(pairs), "--format", "json", "--store", str(seed_store)])
    out = json.loads(r.stdout)
    assert [(o["id1"], o["id2"]) for o in out] == [(x["id1"], x["id2"]) for x in rows]
    assert out[0]["tier"] == "same_story" and out[1]["tier"] in ("related", "unrelated")
    assert out[4]["similarity"] is None and "not-there" in out[4]["error"]
    r = runner.invoke(app, ["score-pairs", str(pairs), "--format", "ndjson", "--store", str(seed_store)])
    assert [json.loads(line) for line in r.stdout.splitlines()] == out
    r = runner.invoke(app, ["score-pairs", str(pairs), "--format", "csv", "--store", str(seed_store)])
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(t["id1"], t["id2"], t["tier"]) for t in table] == [(o["id1"], o["id2"], o["tier"] or "") for o in out]
    assert float(table[0]["similarity"]) == out[0]["similarity"] and table[4]["error"] == out[4]["error"]
    assert float(table[0]["log_odds"]) == out[0]["evidence"]["log_odds"] and table[4]["log_odds"] == ""
    assert [t["note"] for t in table] == [o.get("note") or "" for o in out]
    noted = tmp_path / "noted.jsonl"
    noted.write_text('{"id1": "similar-09", "id2": "similar-06"}\n', encoding="utf-8")
    line = runner.invoke(app, ["score-pairs", str(noted), "--store", str(seed_store)]).stdout.rstrip("\n").split("\t")
    assert line[:2] == ["similar-09", "similar-06"] and line[4].startswith("judged as a headline")
    row = next(csv.DictReader(io.StringIO(runner.invoke(app, ["score-pairs", str(noted), "-f", "csv", "--store",
                                                              str(seed_store)]).stdout)))
    assert row["note"] == line[4] and row["regime"] == "headline"
    headlines = json.loads(runner.invoke(app, ["compare", "similar-09", "similar-06", "--store",
                                               str(seed_store)]).stdout)
    assert headlines["evidence"]["regime"] == "headline" and "judged as a headline (the shorter text has 7 words)" \
        in headlines["note"]
    texts = json.loads(runner.invoke(app, ["compare", "en-sudani-bloomberg", "fr-sudani-bloomberg", "--store",
                                           str(seed_store)]).stdout)
    assert texts["evidence"]["regime"] == "cross" and "note" not in texts
    compared = runner.invoke(app, ["compare", "similar-03", "en-sudani-bloomberg", "--store", str(seed_store)])
    assert json.loads(compared.stdout)["similarity"] == out[0]["similarity"]
    line = runner.invoke(app, ["compare", "similar-03", "en-sudani-bloomberg", "-f", "ndjson", "--store",
                               str(seed_store)]).stdout
    assert line.count("\n") == 1 and json.loads(line) == json.loads(compared.stdout)
    text = runner.invoke(app, ["compare", "similar-03", "en-sudani-bloomberg", "-f", "text", "--store",
                               str(seed_store)]).stdout
    assert text.startswith(f"similar-03  en-sudani-bloomberg  similarity {out[0]['similarity']:.3f}  same_story")
    for command in (["stats"], ["compare", "similar-03", "similar-10"], ["eval", str(gold), "--label", "story"],
                    ["calibrate", str(gold), "--label", "story"], ["add", str(pairs)]):
        refused = runner.invoke(app, [*command, "--format", "csv", "--store", str(seed_store)])
        assert refused.exit_code == 2 and f"--format csv: {command[0]} writes" in refused.stderr
    stats = runner.invoke(app, ["stats", "-f", "ndjson", "--store", str(seed_store)]).stdout
    assert stats.count("\n") == 1 and json.loads(stats)["articles"] == 25
    bad = runner.invoke(app, ["eval", str(pairs), "--store", str(seed_store)])  # no cluster_id field
    assert bad.exit_code == 1 and "pairs.jsonl:1: field 'id'" in bad.stderr


def test_gold_and_pair_files_with_problems_name_file_and_line(tmp_path):
    from storycluster.errors import InputError
    from storycluster.evaluate import read_labels, read_pairs

    with pytest.raises(InputError, match="missing.jsonl: cannot read"):
        read_labels(tmp_path / "missing.jsonl")
    p = tmp_path / "g.jsonl"
    p.write_text('{"id": "a", "cluster_id": 1}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputError, match="g.jsonl:3: expected a JSON object"):
        read_labels(p)
    p.write_text('{"id1": "a", "id2": "b", "score": "high"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="g.jsonl:1: field 'score': not a number: \"high\" \\(one JSON object per line"):
        read_pairs(p)
    for line, field in [('{"id1": "a", "id2": "b", "score": NaN}', "score"), ('{"id1": "a", "score": 2}', "id2"),
                        ('{"id1": "a", "id2": "b"}', "score")]:
        p.write_text('{"id1": "x", "id2": "y", "score": 1}\n' + line + "\n", encoding="utf-8")
        with pytest.raises(InputError, match=f"g.jsonl:2: field '{field}': "):
            read_pairs(p)
    # a byte order mark before the first line is not part of it
    p.write_bytes(b'\xef\xbb\xbf{"id1": "a", "id2": "b", "score": 1.5}\n')
    assert read_pairs(p) == [("a", "b", 1.5)]
    p.write_bytes(b'\xef\xbb\xbf{"id": "a", "cluster_id": 1}\n')
    assert read_labels(p) == {"a": "1"}
    # an empty file is an error, not an evaluation of nothing
    p.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="g.jsonl: no gold lines"):
        read_labels(p)
    with pytest.raises(InputError, match="g.jsonl: no pairs"):
        read_pairs(p)


def test_eval_with_nothing_to_measure_says_so(seed_store, tmp_path):
    """Ids that are not stored are an error naming one; a measure the pairs leave undefined is null in JSON (NaN
    is not JSON) and '-' in text, with a note saying why."""
    runner = CliRunner()
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "zz1", "cluster_id": "a"}\n{"id": "zz2", "cluster_id": "a"}\n', encoding="utf-8")
    r = runner.invoke(app, ["eval", str(gold), "--store", str(seed_store)])
    assert r.exit_code == 1 and r.stderr.startswith("Error: no gold article (2 in the file) is in the store (e.g. 'zz1')")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"id1": "zz1", "id2": "seed-main", "score": 1}\n', encoding="utf-8")
    r = runner.invoke(app, ["eval", "--pairs", str(pairs), "--store", str(seed_store)])
    assert r.exit_code == 1 and "no rated pair (1 in the file) has both articles in the store" in r.stderr
    pairs.write_text('{"id1": "similar-01", "id2": "seed-main", "score": 1}\n', encoding="utf-8")
    r = runner.invoke(app, ["eval", "--pairs", str(pairs), "--split", "2", "-f", "json", "--store", str(seed_store)])
    assert r.exit_code == 0 and "NaN" not in r.stdout
    p = json.loads(r.stdout)["pairs"]
    assert (p["scored"], p["pearson"], p["spearman"], p["roc_auc"]) == (1, None, None, None)
    text = runner.invoke(app, ["eval", "--pairs", str(pairs), "--split", "2", "--store", str(seed_store)]).stdout
    assert "Pearson -  Spearman -  ROC AUC -" in text and "note: '-' is a measure these pairs leave undefined" in text
