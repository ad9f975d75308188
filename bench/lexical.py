"""Lexical duplicate stage: storycluster (normalization + rensa MinHash + LSH banding + Jaccard check) against
datasketch's MinHash + MinHashLSH on the same texts with planted near-duplicates: word edits, Arabic tashkeel
and tatweel, Persian yeh/kaf for Arabic ones, a boilerplate line. Reports documents/s and the recall and
precision of the planted duplicate pairs (a found pair counts as correct when it is planted).

Texts: sentences of the ECB+ articles and of the Arabic seed page, shuffled into documents of 8–14 sentences.

Run: .venv/bin/python bench/lexical.py [--n 100000] [--dup-fraction 0.1]"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from storycluster.lexical import NUM_PERM, candidate_pairs, jaccard, shingles, signatures
from storycluster.normalize import normalize_text

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.5
TASHKEEL = "\u064e\u064f\u0650\u0651\u0652"


def sentences() -> list[str]:
    out = []
    ecb = ROOT.parent / "shared/data/ecbplus/articles.jsonl"
    for line in ecb.read_text(encoding="utf-8").splitlines():
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["text"]) if len(s.split()) >= 6]
    for line in (ROOT / "seeds/articles.jsonl").read_text(encoding="utf-8").splitlines():
        out += [s.strip() for s in re.split(r"(?<=[.!؟?])\s+|\n", json.loads(line)["text"]) if len(s.split()) >= 6]
    return sorted(set(out))


def perturb(text: str, rng: random.Random) -> str:
    """A near-copy: a few words dropped or changed, Arabic diacritics and Persian letters, a boilerplate line."""
    words = text.split()
    for _ in range(max(1, len(words) // 40)):
        i = rng.randrange(len(words))
        if rng.random() < 0.5:
            words.pop(i)
        else:
            words[i] = words[i] + "s"
    out = " ".join(words)
    if re.search("[\u0600-\u06ff]", out):
        out = "".join(c + (rng.choice(TASHKEEL) if "\u0621" <= c <= "\u064a" and rng.random() < 0.3 else "")
                      for c in out)
        out = out.replace("ي", "ی").replace("ك", "ک").replace("ـ", "ـــ")
    return out + "\nRead more news at our website. All rights reserved."


def corpus(n: int, dup_fraction: float, seed: int = 0) -> tuple[list[str], set[tuple[int, int]]]:
    rng = random.Random(seed)
    pool = sentences()
    n_dup = int(n * dup_fraction)
    docs = [" ".join(rng.sample(pool, rng.randint(8, 14))) for _ in range(n - n_dup)]
    planted = set()
    for _ in range(n_dup):
        src = rng.randrange(n - n_dup)
        planted.add((src, len(docs)))
        docs.append(perturb(docs[src], rng))
    return docs, planted


def ours(docs: list[str]) -> set[tuple[int, int]]:
    texts = [normalize_text(d) for d in docs]
    sigs = signatures(texts, normalized=True)
    pairs = candidate_pairs(sigs)
    keep = jaccard(sigs[pairs[:, 0]], sigs[pairs[:, 1]]) >= THRESHOLD
    return {(int(a), int(b)) for a, b in pairs[keep]}


def datasketch_lsh(docs: list[str], normalize: bool) -> set[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    hashes = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode("utf-8") for s in shingles(normalize_text(d) if normalize else d)])
        lsh.insert(i, m)
        hashes.append(m)
    found = set()
    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            if j != i and m.jaccard(hashes[j]) >= THRESHOLD:
                found.add((min(i, j), max(i, j)))
    return found


def families(planted: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every pair within an original and its copies (two copies of one original are duplicates too)."""
    by_src: dict[int, list[int]] = {}
    for src, copy in planted:
        by_src.setdefault(src, [src]).append(copy)
    return {(min(a, b), max(a, b)) for members in by_src.values() for a in members for b in members if a < b}


def score(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / len(truth), (tp / len(found) if found else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dup-fraction", type=float, default=0.1)
    args = ap.parse_args()
    docs, planted = corpus(args.n, args.dup_fraction)
    truth = families(planted)
    rows = []
    for name, fn in (("storycluster (rensa, banding 32×4, normalized)", ours),
                     ("datasketch MinHashLSH, same normalization", lambda d: datasketch_lsh(d, True)),
                     ("datasketch MinHashLSH, raw text", lambda d: datasketch_lsh(d, False))):
        t0 = time.perf_counter()
        found = fn(docs)
        dt = time.perf_counter() - t0
        r, p = score(found, truth)
        rows.append((name, len(docs) / dt, r, p, dt))
    print(f"{len(docs):,} texts, {len(planted):,} planted near-copies ({len(truth):,} duplicate pairs), "
          f"Jaccard threshold {THRESHOLD}, "
          f"{NUM_PERM} permutations, word {3}-shingles\n")
    print("| method | documents/s | recall | precision | seconds |\n| --- | --- | --- | --- | --- |")
    for name, rate, r, p, dt in rows:
        print(f"| {name} | {rate:,.0f} | {r:.3f} | {p:.3f} | {dt:.1f} |")
    print(f"\nthroughput ratio, storycluster / datasketch (same normalization): {rows[0][1] / rows[1][1]:.1f}×")


if __name__ == "__main__":
    main()
