"""`storycluster recommend` against `storycluster add` of the same file, in one run: ECB+ added to a fresh store
(the model loaded, every article embedded and grouped, the related lists stored), then every article's related
list exported (`recommend --out`), then exported again with nothing changed (the incremental run). Wall times of
the CLI commands as a user runs them, and the ratio (target: recommend within 10% of add).

Run: .venv/bin/python bench/recommend.py [path/to/ecbplus/articles.jsonl]"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "storycluster.cli", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/ecbplus/articles.jsonl"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, out = Path(tmp) / "store", Path(tmp) / "related.jsonl"
        add = timed("add", args.data, "--on-error", "skip", "--store", str(store))
        full = timed("recommend", "--store", str(store), "--out", str(out), "-k", "10")
        again = timed("recommend", "--store", str(store), "--out", str(out), "-k", "10")
        lines = sum(1 for _ in out.open(encoding="utf-8"))
    print(f"\n| command | wall | share of add |\n| --- | --- | --- |\n| add ({lines} articles) | {add:.1f} s | |")
    print(f"| recommend --out | {full:.1f} s | {full / add:.1%} |")
    print(f"| recommend --out again (nothing changed) | {again:.1f} s | {again / add:.1%} |")


if __name__ == "__main__":
    main()
