"""Quality, per language, in two parts.

1. **At default settings** (the shipped model; each data set added to a fresh store as a user would, no label
   read while grouping): ECB+ groups and related lists, the seed page's checks, WMT translations grouped (the
   model's languages, and Czech/Hungarian which it does not read), SemEval pairs scored with ``score_pairs``.
   The shipped model was fitted on these dev sets, so these figures are in-sample.
2. **Cross-validated** (the shipped model's recipe, bench/calibrate.py, refitted without the data judged):
   leave-one-language-out on SemEval and on WMT, held-out story halves on WMT, held-out topic halves on ECB+.

Run: .venv/bin/python bench/quality.py [--skip-cv]"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import devsets
import numpy as np
from calibrate import fit_shipped

from storycluster import Archive
from storycluster.calibrate import cluster_dense, dense_logits
from storycluster.cluster import StoryModel, Thresholds
from storycluster.cluster.scoring import pair_logits, similarity_from
from storycluster.evaluate import bcubed, pearson, read_labels, read_pairs, roc_auc

ROOT = Path(__file__).resolve().parent.parent
DATA = devsets.DATA
ECB = DATA / "ecbplus/articles.jsonl"
SEMEVAL = DATA / "semeval2022-task8-dev"
WMT = DATA / "wmt-multiway-dev/articles.jsonl"
SEEDS, SEED_GOLD, SEED_PAIRS = (ROOT / "seeds/articles.jsonl", ROOT / "seeds/gold.jsonl", ROOT / "seeds/pairs.jsonl")
NOT_READ = ("cs", "hu")
T = Thresholds()


def table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n## {title}\n")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def prf(d: dict) -> str:
    return f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f}"


def related_precision_at_5(archive: Archive, topic: dict[str, str]) -> tuple[float, float, int]:
    """Share of the top-5 related entries that share the query's topic: all entries, and `related`-tier ones
    (one ECB+ topic holds two stories, so after collapsing at most two entries of a list can share it)."""
    hits = n = hits_rel = n_rel = 0
    ids = {r: i for i, r in archive.db.ids_to_rowids().items()}
    for _, q in sorted(ids.items()):
        for item in archive.related(q, k=5)["related"]:
            same = topic.get(item["id"]) == topic[q]
            hits, n = hits + same, n + 1
            if item["tier"] == "related":
                hits_rel, n_rel = hits_rel + same, n_rel + 1
    return hits / max(n, 1), hits_rel / max(n_rel, 1), n_rel


def by_language(predicted: dict[str, str], gold: dict[str, str], lang: dict[str, str]) -> list[tuple[str, str]]:
    """B-cubed of each language's articles, their groups and gold stories counted over every language (a Czech
    article's recall is the share of its story's translations it was grouped with)."""
    in_pred, in_gold, both = Counter(predicted[i] for i in gold), Counter(gold.values()), Counter(
        (predicted[i], gold[i]) for i in gold)
    rows = []
    for code in sorted({lang[i] for i in gold}):
        items = [i for i in gold if lang[i] == code]
        p = float(np.mean([both[predicted[i], gold[i]] / in_pred[predicted[i]] for i in items]))
        r = float(np.mean([both[predicted[i], gold[i]] / in_gold[gold[i]] for i in items]))
        rows.append((f"  {code} ({len(items)} articles) B-cubed P / R / F1",
                     prf({"precision": p, "recall": r, "f1": 2 * p * r / (p + r)})))
    return rows


def defaults(tmp: Path) -> None:
    rows = []
    with Archive(tmp / "ecb") as archive:
        t0 = time.perf_counter()
        archive.add_paths([ECB], on_error="skip")
        ingest = time.perf_counter() - t0
        r = archive.evaluate(read_labels(ECB, "cluster_id"))
        p5_all, p5_rel, n_rel = related_precision_at_5(archive, read_labels(ECB, "topic_id"))
    rows += [("ECB+ (en) cluster_id, B-cubed P / R / F1", prf(r["bcubed"])),
             ("ECB+ (en) cluster_id, pairwise P / R / F1", prf(r["pairwise"])),
             ("ECB+ groups (+ singletons) vs gold", f"{r['groups']} (+{r['singletons']}) vs {r['gold_groups']}"),
             ("ECB+ related precision@5 vs topic_id: all entries / `related` tier",
              f"{p5_all:.3f} / {p5_rel:.3f} ({n_rel} entries)"),
             ("ECB+ add of 980 articles", f"{ingest:.1f} s")]
    with Archive(tmp / "seeds") as archive:
        archive.add_paths([SEEDS])
        r = archive.evaluate(read_labels(SEED_GOLD, "story"), read_pairs(SEED_PAIRS), split=3)
        dedup = archive.dedup()
    group = {m["id"]: g["group"] for g in dedup["groups"] for m in g["members"]}
    four = {group.get(i) for i in ("similar-03", "similar-04", "similar-05", "similar-07")}
    checks = {
        "four Sudani headlines (ar) in one group": len(four) == 1 and None not in four,
        "English and French reports join it": {group.get("en-sudani-bloomberg"), group.get("fr-sudani-bloomberg")} == four,
        "Niger/Ukraine/CdI/elections outside it": all(group.get(i) not in four for i in
                                                      ("similar-06", "similar-08", "similar-09", "similar-10")),
        "same-outlet boilerplate does not group": all(i in dedup["singletons"] for i in
                                                      ("masalla-electricity", "masalla-budget", "masalla-heat")),
    }
    rows += [("seeds (ar/fr/en, 25) B-cubed P / R / F1", prf(r["bcubed"]))]
    rows += [(f"seeds: {name}", "yes" if ok else "NO") for name, ok in checks.items()]
    p = r["pairs"]
    rows += [(f"seed pairs rated 0-3 by us ({p['scored']}): Spearman / same-story ROC AUC",
              f"{p['spearman']:.3f} / {p['roc_auc']:.3f}")]
    # the seed story as headlines only
    heads = [json.loads(line) for line in SEEDS.open(encoding="utf-8")]
    story = {i for i, g in read_labels(SEED_GOLD, "story").items() if g == "sudani-bloomberg"}
    heads = [{**h, "text": h["title"], "title": ""} for h in heads if h["id"] in story and h.get("title")]
    with Archive(tmp / "heads") as archive:
        archive.add(devsets._articles(heads))
        d = archive.dedup()
    rows += [(f"seed Sudani story as {len(heads)} headlines only (ar/en/fr): groups",
              f"{len(d['groups'])} group(s) of {[g['size'] for g in d['groups']]}, {len(d['singletons'])} alone")]
    table("At default settings: ECB+ and the seed page", rows)

    # WMT: every article of both test sets in one store
    recs = [json.loads(line) for line in WMT.open(encoding="utf-8")]
    gold = {r["id"]: r["gold"] for r in recs}
    lang = {r["id"]: r["lang"] for r in recs}
    with Archive(tmp / "wmt") as archive:
        report = archive.add(devsets._articles(recs))
        d = archive.dedup()
    predicted = {m["id"]: g["group"] for g in d["groups"] for m in g["members"]}
    predicted |= {s: "\x00" + s for s in d["singletons"]}
    read_ids = {i: g for i, g in gold.items() if lang[i] not in NOT_READ}
    unread = {i: g for i, g in gold.items() if lang[i] in NOT_READ}
    rows = [("model's languages (de, en, es, fr) among themselves: B-cubed P / R / F1", prf(bcubed(predicted, read_ids))),
            ("not read (cs, hu) among themselves: B-cubed P / R / F1", prf(bcubed(predicted, unread))),
            ("every language, all 1,090 articles: B-cubed P / R / F1", prf(bcubed(predicted, gold))),
            *by_language(predicted, gold, lang),
            ("groups holding two different stories", str(sum(len({gold[m["id"]] for m in g["members"]}) > 1
                                                             for g in d["groups"]))),
            ("add reports articles not read", json.dumps(report.not_read))]
    table("At default settings: WMT translations in one store (1,090 articles, 200 stories)", rows)

    # SemEval pairs through score_pairs
    pairs = [json.loads(line) for line in (SEMEVAL / "pairs.jsonl").open(encoding="utf-8")]
    with Archive(tmp / "semeval") as archive:
        archive.add_paths([SEMEVAL / "articles.jsonl"], on_error="skip")
        scored = archive.score_pairs((p["id1"], p["id2"], p["score"]) for p in pairs)
        evaluated = {code: archive.evaluate(None, [(p["id1"], p["id2"], p["score"]) for p in pairs
                                                   if p["lang1"] == code], lower_is_similar=True, split=1.5)["pairs"]
                     for code in ("ar", "tr", "fr")}  # what `eval --pairs` prints
    rows = []
    for code in ("ar", "tr", "fr"):
        mine = [(s, p) for s, p in zip(scored, pairs, strict=True) if p["lang1"] == code and s["similarity"] is not None]
        rows.append((f"{code}: {len(mine)} pairs", semeval_row([s["similarity"] for s, _ in mine],
                                                               [s["tier"] for s, _ in mine],
                                                               [p["score"] for _, p in mine])))
        e = evaluated[code]
        rows.append((f"{code}: eval --pairs --lower-is-similar --split 1.5",
                     f"Pearson {e['pearson']:.3f}, same_story on {e['same_story_positives']:.0%} of pairs rated "
                     f"≤ 1.5 / {e['same_story_negatives']:.0%} of the others"))
    table("At default settings: SemEval-2022 Task 8 dev pairs, `score-pairs` (Pearson with the rating, ROC AUC "
          "same ≤ 1.5 vs different ≥ 3, same_story share of pairs rated different / same)", rows)


def semeval_row(sim, tier, score) -> str:
    sim, score = np.asarray(sim, dtype=float), np.asarray(score, dtype=float)
    ss = np.isin(np.asarray(tier), ["same_story", "duplicate"])
    same, diff = score <= 1.5, score >= 3
    auc = roc_auc(sim[same | diff].tolist(), same[same | diff].tolist())
    return (f"Pearson {pearson(sim.tolist(), (-score).tolist()):.3f}, AUC {auc:.3f}, same_story on "
            f"{ss[diff].mean():.0%} of different / {ss[same].mean():.0%} of same")


def prob(ps: devsets.PairSet, m: StoryModel) -> np.ndarray:
    f = ps.features
    return similarity_from(pair_logits(**f, t=T, m=m), f["jaccard"], f["same_content"], T,
                           m.slopes(f["min_tokens"], f["cross_lingual"], f.get("unreadable")))


def grouped(ps: devsets.PairSet, ids: list[str], m: StoryModel) -> tuple[dict[str, int], list[str]]:
    """Average-link groups of ``ids`` (all their pairs are candidates): article id → label, and the ids in order."""
    sub, order = devsets.pairs_among(ps, ids)
    labels = cluster_dense(dense_logits(sub.features, len(order), m, T), m)
    return {order[k]: labels[k] for k in range(len(order))}, order


def held_out(prefix: str, held: set[str]):
    """``drop`` for :func:`devsets.fit`: the pairs of sources named ``prefix…`` that touch a held-out group."""
    def drop(source, ps):
        if not source.startswith(prefix):
            return np.zeros(len(ps.label), dtype=bool)
        return np.isin(ps.group1, list(held)) | np.isin(ps.group2, list(held))

    return drop


def involves(code: str):
    return lambda name, ps: (ps.lang1 == code) | (ps.lang2 == code)


def cross_validated() -> None:
    sets = devsets.load_all()
    se = sets["semeval"]
    rows = []
    for code in ("ar", "tr", "fr"):
        m = devsets.fit(sets, drop=involves(code))
        k = se.lang1 == code
        p = prob(se, m)[k]
        rows.append((f"{code}: {int(k.sum())} pairs", semeval_row(p, np.where(p >= 0.5, "same_story", "related"),
                                                                 se.rating[k])))
    table("Cross-validated: SemEval dev pairs, leave one language out (fitted without any pair of that language)",
          rows)

    w, wt = sets["wmt"], sets["wmt-titles"]
    readable = ~np.isin(w.lang1, NOT_READ) & ~np.isin(w.lang2, NOT_READ)
    readable_t = ~np.isin(wt.lang1, NOT_READ) & ~np.isin(wt.lang2, NOT_READ)
    rows = []
    for code in ("de", "en", "es", "fr"):
        m = devsets.fit(sets, drop=involves(code))
        inv, inv_t = involves(code)(None, w) & readable, involves(code)(None, wt) & readable_t
        p, pt = prob(w, m), prob(wt, m)
        rows.append((f"{code}: translation pairs same_story (texts / headlines)",
                     f"{(p[inv & (w.label == 1)] >= 0.5).mean():.3f} / {(pt[inv_t & (wt.label == 1)] >= 0.5).mean():.3f}"
                     f"; other stories same_story {(p[inv & (w.label == 0)] >= 0.5).mean():.4f} / "
                     f"{(pt[inv_t & (wt.label == 0)] >= 0.5).mean():.4f}"))
    table("Cross-validated: WMT translations, leave one language out (fitted without any pair of that language)",
          rows)

    rows = []
    stories = sorted(set(w.group1) | set(w.group2))
    rng = np.random.default_rng(0)
    half = set(rng.permutation(stories)[: len(stories) // 2].tolist())
    for name, held in (("A", half), ("B", set(stories) - half)):
        m, _ = fit_shipped(sets, drop=held_out("wmt", held), keep_article=lambda s, i, held=held: s == "ecb" or (
            i.rsplit("-", 1)[0] not in held and i.rsplit("-", 1)[1] not in NOT_READ))
        for test_set in sorted({i.rsplit("-", 2)[0] for i in w.id1}):
            ids = [i for i in dict.fromkeys([*w.id1, *w.id2]) if i.rsplit("-", 1)[0] in held
                   and i.startswith(test_set + "-")]
            pred, order = grouped(w, ids, m)
            gold = {i: i.rsplit("-", 1)[0] for i in order}
            lang = {i: i.rsplit("-", 1)[1] for i in order}
            read_ids = {i: g for i, g in gold.items() if lang[i] not in NOT_READ}
            unread = {i: g for i, g in gold.items() if lang[i] in NOT_READ}
            rows.append((f"half {name}, {test_set}: model's languages B-cubed P / R / F1", prf(bcubed(pred, read_ids))))
            rows.append((f"half {name}, {test_set}: cs/hu B-cubed P / R / F1", prf(bcubed(pred, unread))))
    table("Cross-validated: WMT, held-out story halves (fitted and thresholded without the stories grouped)", rows)

    rows = []
    topics = sorted(set(sets["ecb"].group1))
    rng = np.random.default_rng(0)
    rng.shuffle(topics)
    half = set(topics[: len(topics) // 2])
    ecb = sets["ecb"]
    topic_of = dict(zip(ecb.id1, ecb.group1, strict=True)) | dict(zip(ecb.id2, ecb.group2, strict=True))
    for name, held in (("A", half), ("B", set(topics) - half)):
        def fitted_on(s: str, i: str, held=held) -> bool:
            return (s == "wmt" and i.rsplit("-", 1)[1] not in NOT_READ) or (s == "ecb" and topic_of[i] not in held)

        m, _ = fit_shipped(sets, drop=held_out("ecb", held), keep_article=fitted_on)
        ids = [i for i in dict.fromkeys([*ecb.id1, *ecb.id2]) if topic_of[i] in held]
        pred, order = grouped(ecb, ids, m)
        gold = dict(zip(order, devsets.gold_of("ecb", ecb, order), strict=True))
        rows.append((f"topic half {name} ({len(held)} topics, {len(order)} articles) B-cubed P / R / F1",
                     prf(bcubed(pred, gold))))
    table("Cross-validated: ECB+ (en), held-out topic halves (fitted and thresholded on the other half)", rows)


def main() -> None:
    model = StoryModel.shipped()
    print(f"model: {model.fitted_on} ({model.fitted_at})")
    with tempfile.TemporaryDirectory() as tmp:
        defaults(Path(tmp))
    if "--skip-cv" not in sys.argv:
        cross_validated()


if __name__ == "__main__":
    main()
