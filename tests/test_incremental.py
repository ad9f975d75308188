"""Incremental grouping: later adds recluster only the touched neighbourhood, group ids stay, and what
changed (new, joined, left, split, merged, dissolved) is logged and shown by dedup --changes-since."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.cluster.groups import group_changes
from storycluster.ingest import to_article

from .conftest import SEEDS, SUDANI_HEADLINES


def test_group_changes_kinds():
    ids = {i: f"a{i}" for i in range(10)}
    before = {0: "g1", 1: "g1", 2: "g1", 3: "g2", 4: "g2", 5: "g3", 6: "g3", 7: "g4", 8: "g4"}
    after = {0: "g1", 1: "g1", 2: "g5", 3: "g1", 5: "g6", 6: "g6", 9: "g1"}
    kinds = {(k, g): (o, a) for k, g, o, a in group_changes(before, after, ids)}
    assert kinds[("split", "g1")] == (["g5"], ["a2"])
    assert kinds[("merged", "g2")] == (["g1"], ["a3", "a4"])
    assert kinds[("merged", "g3")] == (["g6"], ["a5", "a6"])
    assert kinds[("dissolved", "g4")] == ([], ["a7", "a8"])
    assert kinds[("joined", "g1")] == (["g2"], ["a3", "a9"])
    assert ("new", "g5") not in kinds and ("new", "g6") not in kinds  # they came from g1 / g3


def test_a_group_id_goes_to_the_group_that_holds_most_of_its_members():
    """A group that lost a member to a larger new group keeps its id; the larger one, listed first, does not
    take it for the one member it holds (the id a reader linked to would name another story)."""
    from storycluster.cluster.groups import _inherited_ids

    previous = {1: "gA", 2: "gA", 3: "gA", 4: "gB", 5: "gB"}
    # groups listed largest first, as build_groups lists them: [3, 6, 7] holds one member of gA, [1, 2] two
    assert _inherited_ids([[3, 6, 7], [1, 2], [4, 5, 8]], previous, set()) == {1: "gA", 2: "gB"}
    # a group whose best id went elsewhere takes its next one; reserved ids are not handed out
    assert _inherited_ids([[1, 2, 4], [3, 5]], previous, set()) == {0: "gA", 1: "gB"}
    assert _inherited_ids([[1, 2], [3]], previous, {"gA"}) == {}


@pytest.fixture
def incremental_only(monkeypatch):
    """Regroupings stay incremental (the bound that turns them into full ones is tested in test_convergence)."""
    monkeypatch.setattr("storycluster.regroup.FULL_REGROUP_SHARE", 1.0)


def test_two_batches_keep_ids_and_match_one_shot(seed_store, tmp_path, incremental_only):
    rows = [json.loads(line) for line in SEEDS.open(encoding="utf-8")]
    first = [r for r in rows if r["id"] not in ("similar-03", "similar-05", "fr-sudani-bloomberg", "fr-tempete-boris")]
    second = [r for r in rows if r not in first]
    with Archive(tmp_path / "s") as a:
        a.add([to_article(r) for r in first])
        before = {g["group"]: {m["id"] for m in g["members"]} for g in a.dedup()["groups"]}
        t0 = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        a.add([to_article(r) for r in second])
        assert a.last_regroup.reclustered < a.db.count()  # not the whole archive
        after = {g["group"]: {m["id"] for m in g["members"]} for g in a.dedup()["groups"]}
        changes = a.changes(t0)
    with Archive(seed_store) as one_shot:
        expected = sorted(sorted(m["id"] for m in g["members"]) for g in one_shot.dedup()["groups"])
    assert sorted(sorted(m) for m in after.values()) == expected
    merged = {c["group"] for c in changes if c["change"] == "merged"}
    for gid, members in before.items():  # every earlier group kept its id, or the log says where it went
        assert gid in after or gid in merged
        if gid in after:
            assert members & after[gid]
    sudani = next(g for g, m in after.items() if set(SUDANI_HEADLINES) <= m)
    joined = [c for c in changes if c["change"] == "joined" and c["group"] == sudani]
    assert joined and {"similar-03", "similar-05"} <= set(joined[0]["articles"])


def test_changes_since_cli(seed_store):
    r = CliRunner().invoke(app, ["dedup", "--changes-since", "2000-01-01", "--format", "json", "--store", str(seed_store)])
    assert r.exit_code == 0, r.output
    changes = json.loads(r.stdout)["changes"]
    assert changes and all(c["change"] == "new" for c in changes)  # one add: every group is new
    table = CliRunner().invoke(app, ["dedup", "--changes-since", "2000-01-01", "-f", "csv", "--store", str(seed_store)])
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [(r["change"], r["group"], json.loads(r["articles"])) for r in rows] == [
        (c["change"], c["group"], c["articles"]) for c in changes]
    later = CliRunner().invoke(app, ["dedup", "--changes-since", "2999-01-01", "--store", str(seed_store)])
    assert later.exit_code == 0 and "no group changed" in later.stderr
    bad = CliRunner().invoke(app, ["dedup", "--changes-since", "soon", "--store", str(seed_store)])
    assert bad.exit_code == 1 and "ISO" in bad.stderr


def test_incremental_regroup_reads_only_the_neighbourhood_and_frequencies_stay_exact(tmp_path, incremental_only):
    """After the first grouping the store keeps its term document frequencies current on every write (add,
    changed text, removal), so a later regrouping reads only the touched neighbourhood's rows; the kept
    frequencies equal a count over every stored term list."""
    from unittest import mock

    import numpy as np

    from storycluster.lexical import document_frequencies

    rows = [json.loads(line) for line in SEEDS.open(encoding="utf-8")]
    with Archive(tmp_path / "s") as a:
        a.add([to_article(r) for r in rows[:15]])
        assert a.db.get_meta("term_df_live") == "1"
        with mock.patch.object(a.db, "all_for_grouping", wraps=a.db.all_for_grouping) as spy:
            a.add([to_article(r) for r in rows[15:]])
        read = spy.call_args.kwargs["rowids"]
        assert 0 < len(read) < a.db.count()
        changed = dict(rows[0], text=rows[0]["text"] + "\nA new closing paragraph on the 2031 budget talks.")
        a.add([to_article(changed)])
        a.remove([rows[1]["id"]])
        df, n_docs = a.db.term_df()
        stored = [np.frombuffer(t, np.uint32) for (t,) in a.db.conn.execute("SELECT terms FROM articles")]
        assert n_docs == a.db.count() == len(rows) - 1
        assert np.array_equal(df, document_frequencies(stored))


def test_removing_a_group_member_is_logged(seed_store_copy):
    with Archive(seed_store_copy, create=False) as a:
        group = next(g for g in a.dedup()["groups"] if g["size"] == 2)
        gone, kept = group["members"][1]["id"], group["members"][0]["id"]
        before = a.db.conn.execute("SELECT max(at) FROM group_changes").fetchone()[0]
        a.remove([gone])
        changes = [c for c in a.changes(before) if c["at"] > before]
    assert {"change": "removed", "group": group["group"], "articles": [gone]}.items() <= changes[0].items()
    assert any(c["change"] == "dissolved" and c["articles"] == [kept] for c in changes)  # the one left alone
