"""Crash safety: `storycluster add` killed with SIGKILL at 20 random moments over a larger input. After each
kill the store opens and `stats` works; re-running the same add finishes with exactly the input's article
count and the same groups (members) as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from storycluster import Archive

from .conftest import ARTIFACTS, SEEDS, write_jsonl

KILLS = 20


def tag(i: int) -> str:
    """A distinct letters-only tag per article (a distinct number in each text would be a number no other
    article writes: same-story evidence against every pair)."""
    return "ref" + "".join("abcdefghij"[int(d)] for d in f"{i:04d}")


def make_input(path, n: int = 700) -> int:
    seeds = [json.loads(line) for line in SEEDS.open(encoding="utf-8")]
    rng = random.Random(7)
    rows = []
    for i in range(n):
        s = seeds[i % len(seeds)]
        words = s["text"].split()
        start = rng.randrange(0, max(1, len(words) - 60))
        rows.append({"id": f"v{i:04d}", "title": s.get("title") or "", "source": f"outlet{i % 9}.example",
                     "text": " ".join(words[start:start + 60]) + f" ({tag(i)})", "lang": s.get("lang")})
    write_jsonl(path, rows)
    return n


def add(src, store) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "storycluster.cli", "add", str(src), "--store", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def groups_of(store) -> list[list[str]]:
    """The groups' members (ids follow each store's history: stats after a kill groups what was stored so
    far, and later groups keep those ids)."""
    with Archive(store, create=False) as a:
        d = a.dedup()
    return sorted(sorted(m["id"] for m in g["members"]) for g in d["groups"])


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path):
    src = tmp_path / "input.jsonl"
    n = make_input(src)
    clean = tmp_path / "clean"
    t0 = time.monotonic()
    p = add(src, clean)
    assert p.wait(timeout=900) == 0, p.stderr.read().decode()
    duration = time.monotonic() - t0
    expected = groups_of(clean)
    assert expected and sum(len(m) for m in expected) > n // 2

    store = tmp_path / "killed"
    rng = random.Random(2024)
    log, landed, completed = [], 0, 0

    def check_complete() -> None:
        with Archive(store, create=False) as a:
            assert a.db.count() == n
            assert a.stats()["index"]["vectors"] == n
        assert groups_of(store) == expected

    while landed < KILLS:  # every kill must land while add runs; a run that ends first is checked, then reset
        assert len(log) < 4 * KILLS, log
        p = add(src, store)
        delay = rng.uniform(0.2, duration)
        time.sleep(delay)
        entry = {"after_s": round(delay, 2)}
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            landed += 1
            entry["killed"] = True
            if (store / "config.json").exists():  # a kill before the store was created leaves none
                with Archive(store, create=False) as a:  # what the kill left, before stats regroups
                    entry |= {"stored": a.db.count(),
                              "groups_current": a.db.get_meta("groups_generation") == str(a.db.generation)}
                stats = subprocess.run([sys.executable, "-m", "storycluster.cli", "stats", "--format", "json",
                                        "--store", str(store)], capture_output=True, text=True, timeout=300)
                assert stats.returncode == 0, (landed, stats.stderr)
                assert 0 <= json.loads(stats.stdout)["articles"] <= n
        else:
            assert p.returncode == 0, p.stderr.read().decode()
            entry["killed"] = False
            check_complete()  # resumed runs ended with the input's count and the uninterrupted groups
            completed += 1
            shutil.rmtree(store)
        log.append(entry)
    p = add(src, store)
    assert p.wait(timeout=900) == 0, p.stderr.read().decode()
    check_complete()
    leftovers = [f.name for f in store.iterdir() if f.name.endswith(".tmp")]
    assert not leftovers, leftovers
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "kill-test.json").write_text(json.dumps({"input": n, "uninterrupted_s": round(duration, 1),
                                                          "kills": landed, "completed_runs_checked": completed + 1,
                                                          "runs": log}, indent=1))
