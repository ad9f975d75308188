"""A large store's full regrouping keeps its term lists and TF-IDF rows in mapped files beside the store
(storycluster.store.spill): the same groups and member scores as in memory, the files gone afterwards, and the
pages read released as it goes. Real model, FAISS and SQLite; the size at which a store spills
(``regroup_spill_from`` in its config.json) set to 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from storycluster import Archive
from storycluster.store.spill import Spill

from .conftest import ECB


def groups_of(path: Path) -> list[tuple]:
    with Archive(path, create=False) as a:
        return sorted((g["group"], g["representative"], tuple((m["id"], m["score"], m["tier"]) for m in g["members"]))
                      for g in a.dedup()["groups"])


def regroup_spilled(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A full regrouping of the store at ``path`` through a spill; counts of what the spill did."""
    made = {"arrays": 0, "bytes": 0, "releases": 0}
    empty, release = Spill.empty, Spill.release

    def counted_empty(self, n, dtype):
        made["arrays"] += 1
        made["bytes"] += n * np.dtype(dtype).itemsize
        return empty(self, n, dtype)

    def counted_release(self):
        made["releases"] += 1
        release(self)

    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    (path / "config.json").write_text(json.dumps({**config, "regroup_spill_from": 0}), encoding="utf-8")
    monkeypatch.setattr(Spill, "empty", counted_empty)
    monkeypatch.setattr(Spill, "release", counted_release)
    with Archive(path, create=False) as a:
        a.regroup(full=True)
    assert not list(path.glob(".spill-*"))  # the files are removed
    return made


def test_spilled_regrouping_equals_the_one_in_memory(seed_store: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    with Archive(path, create=False) as a:
        a.regroup(full=True)
    in_memory = groups_of(path)
    assert in_memory  # the seeds hold groups
    made = regroup_spilled(path, monkeypatch)
    assert made["arrays"] >= 4 and made["bytes"] > 0 and made["releases"] >= 1
    assert groups_of(path) == in_memory


@pytest.mark.slow
@pytest.mark.skipif(not ECB.exists(), reason=f"ECB+ not found at {ECB}")
def test_spilled_regrouping_of_ecb_equals_the_one_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ECB+: hundreds of groups, many candidate edges whose TF-IDF cosines decide them (read by row blocks)."""
    path = tmp_path / "store"
    with Archive(path) as a:
        a.add_paths([ECB], on_error="skip")
        a.regroup(full=True)
    in_memory = groups_of(path)
    assert len(in_memory) > 50
    regroup_spilled(path, monkeypatch)
    assert groups_of(path) == in_memory


def test_released_pages_leave_the_values(tmp_path: Path) -> None:
    with Spill(tmp_path, interval=0.01) as spill:
        a = spill.empty(1 << 20, np.float32)
        a[:] = np.arange(1 << 20, dtype=np.float32)
        spill.release()
        assert float(a[12345]) == 12345.0 and float(a.sum(dtype=np.float64)) == float(np.arange(1 << 20).sum())
        assert len(list(spill.folder.iterdir())) == 1
        folder = spill.folder
    assert not folder.exists()


def test_no_room_for_the_files_is_one_clear_error(seed_store: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk without room for the files stops the regrouping with a message (a mapped file that cannot grow
    would kill the process at the write), and the store keeps its groups."""
    import errno
    import os

    from typer.testing import CliRunner

    from storycluster.cli import app

    path = tmp_path / "store"
    shutil.copytree(seed_store, path)
    before = groups_of(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    (path / "config.json").write_text(json.dumps({**config, "regroup_spill_from": 0}), encoding="utf-8")

    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    r = CliRunner().invoke(app, ["dedup", "--full-regroup", "--store", str(path)])
    assert r.exit_code != 0
    assert "no room for the regrouping's temporary files" in r.output and "regroup_spill_from" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not list(path.glob(".spill-*"))
    monkeypatch.undo()
    assert groups_of(path) == before


def test_a_store_spills_from_regroup_spill_from_articles(seed_store: Path) -> None:
    """The default (200,000 articles) and the setting decide; the seeds' 25 articles stay in memory by default."""
    from storycluster.regroup import _spill

    with Archive(seed_store, create=False) as a:
        store = a.store
        assert store.config.regroup_spill_from == 200_000
        with _spill(store) as spill:
            assert spill is None
        n = store.db.count()
        for setting, spills in ((n, True), (n + 1, False), (0, True)):
            store.config.regroup_spill_from = setting
            with _spill(store) as spill:
                assert (spill is not None) == spills
                if spill is not None:
                    assert spill.folder.parent == store.path
