"""Which text to embed? Title, lead of N characters, full text, or title+lead combined — measured on ECB+
with the same average-link grouping the tool uses, at the best threshold per variant (an oracle, for
comparing representations only) and at the shipped default.

Run: .venv/bin/python bench/representation.py [path/to/ecbplus/articles.jsonl] [--only NAME,NAME]"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from storycluster.cluster import cluster_labels
from storycluster.embed import USEEmbedder, l2_normalize
from storycluster.evaluate import bcubed
from storycluster.lexical import signatures
from storycluster.normalize import content_hash, normalize_text

sys.path.insert(0, str(Path(__file__).parent))
from _semantic import semantic_scorer  # noqa: E402

_parser = argparse.ArgumentParser(description="Which text to embed, measured on ECB+.")
_parser.add_argument("data", nargs="?", type=Path,
                     default=Path(__file__).parent.parent.parent / "shared/data/ecbplus/articles.jsonl")
_parser.add_argument("--only", help="comma-separated view names to score (all by default)")
_args = _parser.parse_args()
DATA = _args.data
ONLY = set(_args.only.split(",")) if _args.only else None


def body_of(a: dict) -> str:
    title, text = normalize_text(a["title"]), normalize_text(a["text"])
    return text if text.startswith(title) else f"{title}\n{text}"


def main() -> None:
    arts = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    gold = {a["id"]: a["cluster_id"] for a in arts}
    ids = [a["id"] for a in arts]
    emb = USEEmbedder()
    bodies = [body_of(a) for a in arts]
    sigs = signatures(bodies)
    hashes = [content_hash(b) for b in bodies]
    t0 = time.perf_counter()
    views = {"title": emb.embed([normalize_text(a["title"]) or b[:200] for a, b in zip(arts, bodies, strict=True)])}
    for n in (300, 600, 1000, 2000, 4000, 10**9):
        views[f"lead{n if n < 10**9 else '_all'}"] = emb.embed([b[:n] for b in bodies])
    print(f"embedded {len(views)} views of {len(arts)} articles in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    for n in (600, 1000, 2000):
        views[f"title+lead{n}"] = l2_normalize(views["title"] + views[f"lead{n}"])
    # chunk pooling: the mean of the embeddings of consecutive 1,000-character chunks of the whole text
    chunks = [[b[s:s + 1000] for s in range(0, len(b), 1000)] or [""] for b in bodies]
    flat = emb.embed([c for cs in chunks for c in cs])
    starts = np.cumsum([0] + [len(cs) for cs in chunks])
    views["chunk_mean1000"] = l2_normalize(np.vstack([flat[a:b].mean(axis=0) for a, b in zip(starts[:-1], starts[1:],
                                                                                             strict=True)]))
    print(f"{'representation':<18} {'best thr':>8} {'P':>6} {'R':>6} {'F1':>6}")
    for name, vecs in views.items():
        if ONLY and name not in ONLY:
            continue
        best = (0.0, 0.0, {})
        for thr in np.arange(0.40, 0.77, 0.04):
            labels = cluster_labels(semantic_scorer(vecs, vecs, sigs, hashes, float(thr), float(thr) - 0.15, 0.0))
            m = bcubed(dict(zip(ids, labels.tolist(), strict=True)), gold)
            if m["f1"] > best[1]:
                best = (float(thr), m["f1"], m)
        print(f"{name:<18} {best[0]:8.2f} {best[2]['precision']:6.3f} {best[2]['recall']:6.3f} {best[1]:6.3f}")


if __name__ == "__main__":
    main()
