"""dedup-dist on a local Ray against the single-machine path (`storycluster add` + `dedup`), same articles:
wall time, peak memory of the whole process tree (Ray's GCS, raylet and workers included; proportional set
size, so the shared object store counts once), Ray's time per stage, and how far the two groupings agree.

Articles: N synthetic news articles made of real ECB+ sentences (each draws eight sentences from the whole of
one ECB+ topic, as one line), 10% of them planted near-copies of an earlier one (a sentence dropped, one word
changed). Both paths run the real bundled model; the Ray run sits in a loopback-only network
namespace (tests/isolated.sh).

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


def synthesize(n: int, out: Path, seed: int = 0) -> None:
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
    made: list[dict] = []
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
                rec = {"id": f"syn-{i}", "title": src["title"], "sents": sents, "source": f"outlet-{i % 50}"}
            else:  # eight sentences drawn from the whole topic: another article on the subject, not a copy
                pool = pools[topics[rng.integers(0, len(topics))]]
                picked = sorted(rng.choice(len(pool), min(8, len(pool)), replace=False).tolist())
                rec = {"id": f"syn-{i}", "title": pool[picked[0]][:120], "sents": [pool[j] for j in picked],
                       "source": f"outlet-{i % 50}"}
            made.append(rec)
            fh.write(json.dumps({"id": rec["id"], "title": rec["title"], "text": " ".join(rec["sents"]),
                                 "source": rec["source"]}, ensure_ascii=False) + "\n")


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
        synthesize(args.n, data)
        s_add, m_add, _ = run([*sc, "add", "--store", str(tmp / "store"), str(data)])
        s_dd, m_dd, dd = run([*sc, "dedup", "--store", str(tmp / "store"), "--format", "json"])
        single = json.loads(dd.stdout)
        s_ray, m_ray, rp = run([str(ROOT / "tests" / "isolated.sh"), *sc, "dedup-dist", str(data),
                                "--out", str(tmp / "dist"), "--workers", str(args.workers)])
        manifest = json.loads((tmp / "dist" / "manifest.json").read_text(encoding="utf-8"))
        dist = json.loads((tmp / "dist" / "dedup.json").read_text(encoding="utf-8"))
    agree = bcubed(labels(dist), labels(single))
    print(f"\n{args.n:,} articles, {args.workers} embedding actors of 0.5 CPU, local Ray (2 cores)\n")
    print("| path | wall time | articles/s | peak memory (PSS, process tree) | groups |\n| --- | --- | --- | --- | --- |")
    print(f"| single machine: add + dedup | {s_add + s_dd:.1f} s | {args.n / (s_add + s_dd):.0f} | "
          f"{max(m_add, m_dd):.0f} MB | {len(single['groups']):,} |")
    print(f"| Ray Data: dedup-dist | {s_ray:.1f} s | {args.n / s_ray:.0f} | {m_ray:.0f} MB | {len(dist['groups']):,} |")
    print(f"\nRay / single machine: time {s_ray / (s_add + s_dd):.2f}×, memory {m_ray / max(m_add, m_dd):.2f}×")
    print(f"groupings agree: B-cubed P {agree['precision']:.4f} / R {agree['recall']:.4f} / F1 {agree['f1']:.4f}"
          " (Ray's groups against the store's)")
    ray_s = manifest["seconds"]
    print("\n| Ray stage | seconds | share |\n| --- | --- | --- |")
    for k, v in ray_s.items():
        print(f"| {k} | {v:.1f} | {v / s_ray:.0%} |")
    print(f"| start-up, shut-down, imports (rest of the wall time) | {s_ray - sum(ray_s.values()):.1f} | "
          f"{(s_ray - sum(ray_s.values())) / s_ray:.0%} |")


if __name__ == "__main__":
    main()
