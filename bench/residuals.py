"""The SemEval dev pairs the same-story model gets most wrong, with their texts: where to look for what it misreads.

Protocol: the shipped recipe refitted without the language shown (``devsets.fit``, as ``bench/quality.py`` part 2);
each pair's probability against its rating (1 = the same story … 4 = different, read as 1 … 0). It lists the pairs
scored furthest above and furthest below their rating, with the evidence the model read and the start of both
texts. Reading these found an outlet's disclaimer read as the story (docs/quality.md).

Run: .venv/bin/python bench/residuals.py ar [N]  (ar, tr or fr; N pairs each way, default 8)"""

from __future__ import annotations

import json
import sys

import devsets
import numpy as np
from quality import involves, prob


def main(lang: str, n: int = 8) -> None:
    sets = devsets.load_all()
    se = sets["semeval"]
    records = {r["id"]: r for r in map(json.loads, (devsets.DATA / "semeval2022-task8-dev/articles.jsonl")
                                        .open(encoding="utf-8"))}
    p = prob(se, devsets.fit(sets, drop=involves(lang)))
    k = np.flatnonzero(se.lang1 == lang)
    if not len(k):
        raise SystemExit(f"no SemEval dev pairs in {lang!r}: use ar, tr or fr")
    residual = (1 - (se.rating[k] - 1) / 3) - p[k]  # rated similarity (1 … 0) less the probability
    order = k[np.argsort(residual)]
    f = se.features
    for heading, rows in (("scored furthest above their rating", order[:n]),
                          ("scored furthest below their rating", order[::-1][:n])):
        print(f"== {lang}: {heading}")
        for i in rows:
            print(f"-- p {p[i]:.2f}, rating {se.rating[i]:.1f}; lead {f['lead'][i]:.2f}, title {f['title'][i]:.2f}, "
                  f"tfidf {f['tfidf'][i]:.2f}  ({se.id1[i]}, {se.id2[i]})")
            for a in (records[se.id1[i]], records[se.id2[i]]):
                text = " ".join(a["text"][:240].split())
                print(f"   [{a.get('source')}] {(a.get('title') or '')[:110]} | {text}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ar", int(sys.argv[2]) if len(sys.argv) > 2 else 8)
