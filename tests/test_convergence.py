"""Incremental regrouping converges to a full one (real model, ECB+): the sequence of a crashed add, a read that
groups the partial store, and the re-run gives the groups of one full grouping of the same store; many small adds
stay within the documented bound, and ``dedup --full-regroup`` restores the exact groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storycluster import Archive
from storycluster.cli import app
from storycluster.evaluate import bcubed

from .conftest import ECB

pytestmark = pytest.mark.skipif(not ECB.exists(), reason=f"ECB+ not found at {ECB} (set STORYCLUSTER_ECB)")


def partition(a: Archive) -> set[frozenset[str]]:
    return {frozenset(m["id"] for m in g["members"]) for g in a.dedup()["groups"]}


def labels(groups: set[frozenset[str]]) -> dict[str, int]:
    return {i: n for n, g in enumerate(sorted(groups, key=sorted)) for i in g}


def first_lines(n: int, path: Path) -> Path:
    path.write_text("".join(ECB.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
    return path


def test_crash_read_rerun_equals_a_full_regrouping(tmp_path):
    """An add stopped after 511 records (a crash leaves exactly those committed), a read that groups that partial
    store, then the same add run again: the groups equal a full regrouping of the store."""
    store = tmp_path / "s"
    with Archive(store) as a:
        a.add_paths([first_lines(511, tmp_path / "part.jsonl")], on_error="skip")
    with Archive(store, create=False) as a:  # the read (dedup) after the crash
        assert a.dedup()["groups"]
    with Archive(store, create=False) as a:
        a.add_paths([ECB], on_error="skip")
        assert a.last_regroup is not None and a.last_regroup.full  # 469 of 980 touched: past the bound
        after_rerun = partition(a)
        a.regroup(full=True)
        assert partition(a) == after_rerun


def test_small_adds_stay_within_the_bound_and_full_regroup_restores(tmp_path):
    """ECB+ added as 500 articles, then batches of 40 (each under a tenth of the store): every regrouping after a
    batch is incremental until the touched articles reach a tenth of the store, then a full one; the groups
    after the last batch are within B-cubed F1 0.98 of a full regrouping's, which ``dedup --full-regroup``
    gives exactly."""
    rows = ECB.read_text(encoding="utf-8").splitlines(keepends=True)
    store = tmp_path / "s"
    kinds = []
    with Archive(store) as a:
        a.add_paths([first_lines(500, tmp_path / "first.jsonl")], on_error="skip")
        for n, start in enumerate(range(500, len(rows), 40)):
            batch = tmp_path / f"b{n}.jsonl"
            batch.write_text("".join(rows[start:start + 40]), encoding="utf-8")
            a.add_paths([batch], on_error="skip")
            assert a.last_regroup is not None
            kinds.append(a.last_regroup.full)
        incremental = partition(a)
    assert False in kinds and True in kinds[1:]  # both kinds ran
    r = CliRunner().invoke(app, ["dedup", "--full-regroup", "--format", "json", "--store", str(store)])
    assert r.exit_code == 0, r.output
    full = {frozenset(m["id"] for m in g["members"]) for g in json.loads(r.stdout)["groups"]}
    with Archive(store, create=False) as a:
        assert partition(a) == full  # what --full-regroup printed is what the store now holds
        a.regroup(full=True)
        assert partition(a) == full  # and a second full regrouping changes nothing
    ids = {i for g in incremental | full for i in g}
    inc, ful = labels(incremental), labels(full)
    f1 = bcubed({i: inc.get(i, f"s{i}") for i in ids}, {i: ful.get(i, f"s{i}") for i in ids})["f1"]
    assert f1 >= 0.98, f1
