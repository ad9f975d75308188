"""dedup-dist on a local Ray against the single-machine path (`storycluster add` + `dedup`), same articles:
wall time, peak memory of the whole process tree (Ray's GCS, raylet and workers included; proportional set
size, so the shared object store counts once), Ray's time per stage, and how far the two groupings agree.

Articles: N synthetic news articles made of real ECB+ sentences, as one line: stories of a few articles each
(a story's articles share most of their sentences, and stories of one ECB+ topic share its vocabulary), 10% of
them planted near-copies of an earlier one (a sentence dropped, one word changed). Both paths run the real
bundled model; the Ray run sits in a loopback-only network namespace (tests/isolated.sh).

Run: .venv/bin/python bench/dist.py [--n 100000] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ECB = ROOT.parent / "shared" / "data" / "ecbplus" / "articles.jsonl"


def synthesize(n: int, out: Path, seed: int = 0) -> dict[str, int]:
    """Stories, each a handful of articles: a story takes twelve sentences of one ECB+ topic and gives their
    names and numbers its own made-up values (another event of the same kind), and each of its articles
    eight of those sentences; 10% of articles are near-copies of an earlier one. (ECB+ holds ~15,000
    sentences: without the story's own names, stories of one topic would share verbatim sentences at
    100,000 articles, and every topic would be one component of thousands of articles.)"""
    rng = np.random.default_rng(seed)
    by_topic: dict[str, list[dict]] = {}
    for line in ECB.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("text", "").strip():
            by_topic.setdefault(str(r.get("topic_id")), []).append(r)
    topics = sorted(by_topic)
    # each topic's sentences, one line each (an ECB+ headline line repeated across many synthetic articles of
    # one outlet would look like that outlet's boilerplate)
    pools = {t: [x for r in arts for x in re.split(r"(?<=[.!?])\s+", " ".join(r["text"].split())) if len(x) > 20]
             for t, arts in by_topic.items()}
    common = {w for ss in pools.values() for x in ss for w in re.findall(r"\b[a-z]+\b", x)}
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def retold(sentences: list[str]) -> list[str]:
        """The sentences with this story's own names (capitalized words that are not common words) and numbers."""
        own: dict[str, str] = {}

        def fake(m: re.Match) -> str:
            w = m.group(0)
            if w not in own:
                own[w] = (str(rng.integers(2, 2000)) if w.isdigit()
                          else w[:3] + "".join(rng.choice(letters, 4)))
            return own[w]

        return [re.sub(r"\b(?:\d+|[A-Z][a-z]+)\b", lambda m: m.group(0) if m.group(0).lower() in common
                       else fake(m), x) for x in sentences]

    made: list[dict] = []
    story: list[str] = []
    left = stories = 0
    with open(out, "w", encoding="utf-8") as fh:
        for i in range(n):
            if made and rng.random() < 0.1:  # a near-copy of an earlier article
                src = made[rng.integers(0, len(made))]
                sents = src["sents"][:]
                if len(sents) > 3:
                    sents.pop(int(rng.integers(1, len(sents))))
                words = sents[0].split()
                if words:
                    words[int(rng.integers(0, len(words)))] = "reportedly"
                    sents[0] = " ".join(words)
                rec = {"id": f"syn-{i}", "title": src["title"], "sents": sents, "source": f"outlet-{i % 50}",
                       "story": src["story"]}
            else:  # another write-up of the current story; a new story (1 to ~15 articles) when it is told
                if left == 0:
                    pool = pools[topics[rng.integers(0, len(topics))]]
                    story = retold([pool[j] for j in rng.choice(len(pool), min(12, len(pool)), replace=False)])
                    left, stories = int(rng.geometric(0.3)), stories + 1
                picked = [story[j] for j in sorted(rng.choice(len(story), min(8, len(story)), replace=False))]
                left -= 1
                rec = {"id": f"syn-{i}", "title": picked[0][:120], "sents": picked, "source": f"outlet-{i % 50}",
                       "story": stories}
            made.append(rec)
            fh.write(json.dumps({"id": rec["id"], "title": rec["title"], "text": " ".join(rec["sents"]),
                                 "source": rec["source"]}, ensure_ascii=False) + "\n")
    return {r["id"]: r["story"] for r in made}


def pss_mb(pid: int) -> float:
    """Proportional set size of a process (/proc/PID/smaps_rollup: cheap to read, unlike smaps)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0.0


class TreeMemory:
    """Peak total PSS of a process and all its descendants, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 2.0) -> None:
        import psutil

        self.root, self.every, self.peak = psutil.Process(pid), every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                pids = [self.root.pid, *(c.pid for c in self.root.children(recursive=True))]
            except psutil.NoSuchProcess:
                break
            self.peak = max(self.peak, sum(pss_mb(p) for p in pids))
            self._stop.wait(self.every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def run(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    mem = TreeMemory(p.pid)
    out, err = p.communicate()
    seconds, peak = time.perf_counter() - t0, mem.stop()
    done = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return seconds, peak, done


def labels(result: dict) -> dict[str, str]:
    out = {m["id"]: g["group"] for g in result["groups"] for m in g["members"]}
    out.update({s: s for s in result["singletons"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from storycluster.evaluate import bcubed

    sc = [sys.executable, "-m", "storycluster"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "articles.jsonl"
        planted = synthesize(args.n, data)
        s_add, m_add, _ = run([*sc, "add", "--store", str(tmp / "store"), str(data)])
        s_dd, m_dd, dd = run([*sc, "dedup", "--store", str(tmp / "store"), "--format", "json"])
        single = json.loads(dd.stdout)
        s_ray, m_ray, rp = run([str(ROOT / "tests" / "isolated.sh"), *sc, "dedup-dist", str(data),
                                "--out", str(tmp / "dist"), "--workers", str(args.workers)])
        manifest = json.loads((tmp / "dist" / "manifest.json").read_text(encoding="utf-8"))
        dist = json.loads((tmp / "dist" / "dedup.json").read_text(encoding="utf-8"))
    agree = bcubed(labels(dist), labels(single))
    truth = {"single machine": bcubed(labels(single), planted), "Ray Data": bcubed(labels(dist), planted)}
    print(f"\n{args.n:,} articles, {args.workers} embedding actors of 0.5 CPU, local Ray (2 cores)\n")
    print("| path | wall time | articles/s | peak memory (PSS, process tree) | groups |\n| --- | --- | --- | --- | --- |")
    print(f"| single machine: add + dedup | {s_add + s_dd:.1f} s | {args.n / (s_add + s_dd):.0f} | "
          f"{max(m_add, m_dd):.0f} MB | {len(single['groups']):,} |")
    print(f"| Ray Data: dedup-dist | {s_ray:.1f} s | {args.n / s_ray:.0f} | {m_ray:.0f} MB | {len(dist['groups']):,} |")
    print(f"\nRay / single machine: time {s_ray / (s_add + s_dd):.2f}×, memory {m_ray / max(m_add, m_dd):.2f}×")
    print(f"groupings agree: B-cubed P {agree['precision']:.4f} / R {agree['recall']:.4f} / F1 {agree['f1']:.4f}"
          " (Ray's groups against the store's)")
    for name, b in truth.items():
        print(f"{name} against the planted stories: B-cubed P {b['precision']:.3f} / R {b['recall']:.3f} / "
              f"F1 {b['f1']:.3f}")
    ray_s = manifest["seconds"]
    print("\n| Ray stage | seconds | share |\n| --- | --- | --- |")
    for k, v in ray_s.items():
        print(f"| {k} | {v:.1f} | {v / s_ray:.0%} |")
    print(f"| start-up, shut-down, imports (rest of the wall time) | {s_ray - sum(ray_s.values()):.1f} | "
          f"{(s_ray - sum(ray_s.values())) / s_ray:.0%} |")


if __name__ == "__main__":
    main()
