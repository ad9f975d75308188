"""Headline weight and grouping thresholds, measured on ECB+ (cluster_id) and on the seed archive
(seeds/gold.jsonl): B-cubed F1 for each setting, and whether the seed page's checks hold (the four
Sudani-interview headlines in one group, the English report of it joining them).

Run: .venv/bin/python bench/title_weight.py [path/to/ecbplus/articles.jsonl]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from storycluster.cluster import cluster_labels
from storycluster.embed import USEEmbedder
from storycluster.evaluate import bcubed
from storycluster.lexical import signatures
from storycluster.normalize import content_hash, normalize_text

sys.path.insert(0, str(Path(__file__).parent))
from _semantic import semantic_scorer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ECB = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/data/ecbplus/articles.jsonl")
SUDANI = ["similar-03", "similar-04", "similar-05", "similar-07"]


def load(path: Path, gold: dict[str, str] | None, label: str = "cluster_id", max_chars: int = 1000):
    arts = [json.loads(line) for line in path.open(encoding="utf-8")]
    gold = gold or {a["id"]: a[label] for a in arts}
    bodies = []
    for a in arts:
        title, text = normalize_text(a["title"]), normalize_text(a["text"])
        bodies.append(text if text.startswith(title) else f"{title}\n{text}")
    emb = USEEmbedder()
    lead = emb.embed([b[:max_chars] for b in bodies])
    title = emb.embed([normalize_text(a["title"]) or b[:200] for a, b in zip(arts, bodies, strict=True)])
    return [a["id"] for a in arts], gold, lead, title, signatures(bodies), [content_hash(b) for b in bodies]


def main() -> None:
    seed_gold = {(r := json.loads(line))["id"]: r["story"] for line in (ROOT / "seeds/gold.jsonl").open()}
    data = {"ecb": load(ECB, None), "seeds": load(ROOT / "seeds/articles.jsonl", seed_gold)}
    print(f"{'w':>5} {'thr':>5} {'floor':>5} | {'ECB P':>6} {'R':>6} {'F1':>6} | {'seeds F1':>8} sudani4 english")
    for w in (0.0, 0.25, 0.5):
        for thr in (0.52, 0.55, 0.58, 0.61):
            for floor in (thr - 0.13, thr - 0.10):
                out = {}
                for name, (ids, gold, lead, title, sigs, hashes) in data.items():
                    scorer = semantic_scorer(lead, title, sigs, hashes, thr, round(floor, 2), w)
                    labels = dict(zip(ids, cluster_labels(scorer).tolist(), strict=True))
                    out[name] = (bcubed(labels, gold), labels)
                lab = out["seeds"][1]
                four = {lab[i] for i in SUDANI}
                e = out["ecb"][0]
                print(f"{w:5.2f} {thr:5.2f} {floor:5.2f} | {e['precision']:6.3f} {e['recall']:6.3f} {e['f1']:6.3f} | "
                      f"{out['seeds'][0]['f1']:8.3f} {len(four) == 1!s:7} {lab['en-sudani-bloomberg'] in four}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
