"""Evaluation against human labels: B-cubed and pairwise precision/recall/F1, adjusted Rand index for
groups; Pearson, Spearman and ROC AUC for rated pairs. Pure Python, checked against hand-computed cases."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, NotFoundError, Problem

if TYPE_CHECKING:
    from .results import Dedup, ScoredPair


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def bcubed(predicted: Mapping[Any, object], gold: Mapping[Any, object]) -> dict[str, float]:
    """B-cubed precision, recall and F1 (Bagga & Baldwin 1998) over the items present in both mappings.

    For each item: precision = share of its predicted cluster that shares its gold label, recall = share
    of its gold cluster that shares its predicted cluster; both averaged over items."""
    items = [i for i in gold if i in predicted]
    if not items:
        raise ValueError("no item is in both the prediction and the gold labels; check the ids")
    pred_size = Counter(predicted[i] for i in items)
    gold_size = Counter(gold[i] for i in items)
    both = Counter((predicted[i], gold[i]) for i in items)
    p = sum(both[(predicted[i], gold[i])] / pred_size[predicted[i]] for i in items) / len(items)
    r = sum(both[(predicted[i], gold[i])] / gold_size[gold[i]] for i in items) / len(items)
    return {"precision": p, "recall": r, "f1": _f1(p, r)}


def pairwise(predicted: Mapping[Any, object], gold: Mapping[Any, object]) -> dict[str, float]:
    """Precision, recall and F1 over same-cluster pairs."""
    items = [i for i in gold if i in predicted]

    def pairs(sizes: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in sizes.values())

    tp = pairs(Counter((predicted[i], gold[i]) for i in items))
    pp = pairs(Counter(predicted[i] for i in items))
    gp = pairs(Counter(gold[i] for i in items))
    p = tp / pp if pp else 1.0
    r = tp / gp if gp else 1.0
    return {"precision": p, "recall": r, "f1": _f1(p, r)}


def adjusted_rand_index(predicted: Mapping[Any, object], gold: Mapping[Any, object]) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) over the items in both mappings."""
    items = [i for i in gold if i in predicted]
    n = len(items)

    def c2(x: int) -> float:
        return x * (x - 1) / 2

    index = sum(c2(v) for v in Counter((predicted[i], gold[i]) for i in items).values())
    a = sum(c2(v) for v in Counter(predicted[i] for i in items).values())
    b = sum(c2(v) for v in Counter(gold[i] for i in items).values())
    expected = a * b / c2(n) if n > 1 else 0.0
    top = (a + b) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def _ranks(x: Sequence[float]) -> list[float]:
    """1-based ranks, ties get their average rank."""
    order = sorted(range(len(x)), key=lambda k: x[k])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    if n < 2:
        return float("nan")
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(_ranks(x), _ranks(y))


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative."""
    pos = sum(1 for p in positive if p)
    neg = len(positive) - pos
    if not pos or not neg:
        return float("nan")
    r = _ranks(scores)
    return (sum(rk for rk, p in zip(r, positive, strict=True) if p) - pos * (pos + 1) / 2) / (pos * neg)


def evaluate_store(dedup_result: Dedup | None, gold: Mapping[str, str] | None,
                   scored_pairs: list[ScoredPair] | None = None, lower_is_similar: bool = False,
                   split: float | None = None) -> dict:
    """Score a store's groups (``dedup_result``, as :meth:`Archive.dedup` gives it) against gold labels (both
    None: no groups scored), and, with ``scored_pairs`` (:meth:`Archive.score_pairs` of rated pairs), the pair
    similarity against the ratings; with ``split``, also ROC AUC and the share of pairs on each side of it that
    get a same-story tier (``same_story`` or ``duplicate``: None for a side without pairs)."""
    out: dict = {}
    if dedup_result is not None and gold is not None:
        out |= _groups_scored(dedup_result, gold)
        if gold and not out["evaluated"]:
            raise NotFoundError(f"no gold article ({len(gold)} in the file) is in the store (e.g. "
                                f"{out['missing_from_store'][0]!r}); add them with 'storycluster add' first")
    if scored_pairs:
        ok = [(p["similarity"], h, p["tier"]) for p in scored_pairs
              if p["similarity"] is not None and (h := p["human"]) is not None]
        if not ok:
            first = scored_pairs[0]
            raise NotFoundError(f"no rated pair ({len(scored_pairs)} in the file) has both articles in the store (e.g. "
                                f"{first['id1']!r} and {first['id2']!r}); add them with 'storycluster add' first")
        human = [-h if lower_is_similar else h for _, h, _ in ok]
        ours = [s for s, _, _ in ok]
        out["pairs"] = {"n": len(scored_pairs), "scored": len(ok), "not_in_store": len(scored_pairs) - len(ok),
                        "pearson": _defined(pearson(ours, human)), "spearman": _defined(spearman(ours, human))}
        if split is not None:
            positive = [h <= split if lower_is_similar else h >= split for _, h, _ in ok]
            same = [t in ("same_story", "duplicate") for _, _, t in ok]

            def share(side: bool) -> float | None:
                called = [s for s, pos in zip(same, positive, strict=True) if pos is side]
                return sum(called) / len(called) if called else None

            out["pairs"] |= {"split": split, "positives": sum(positive), "roc_auc": _defined(roc_auc(ours, positive)),
                             "same_story_positives": share(True), "same_story_negatives": share(False)}
    return out


def _defined(x: float) -> float | None:
    """None for a measure the pairs leave undefined (NaN: too few pairs, one rating for all, one side empty), so
    that JSON output says null instead of the invalid NaN."""
    return None if math.isnan(x) else x


def _groups_scored(dedup_result: Dedup, gold: Mapping[str, str]) -> dict:
    predicted = {m["id"]: g["group"] for g in dedup_result["groups"] for m in g["members"]}
    predicted.update({s: f"\x00{s}" for s in dedup_result["singletons"]})
    missing = sorted(i for i in gold if i not in predicted)
    present = {i: v for i, v in gold.items() if i in predicted}
    out: dict = {"gold_items": len(gold), "evaluated": len(present), "missing_from_store": missing[:20],
                 "n_missing": len(missing)}
    if present:
        groups = {predicted[i] for i in present}
        gold_sizes = Counter(present.values())
        out |= {"bcubed": bcubed(predicted, present), "pairwise": pairwise(predicted, present),
                "adjusted_rand_index": adjusted_rand_index(predicted, present),
                "groups": sum(1 for g in groups if not g.startswith("\x00")),
                "singletons": sum(1 for g in groups if g.startswith("\x00")),
                "gold_groups": sum(1 for n in gold_sizes.values() if n > 1),
                "gold_singletons": sum(1 for n in gold_sizes.values() if n == 1)}
    return out


def _jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; unreadable files and bad lines raise InputError."""
    try:
        fh = open(path, encoding="utf-8-sig")  # noqa: SIM115 - closed below (-sig: a leading byte order mark)
    except OSError as e:
        raise InputError(Problem(str(path), None, None, f"cannot read: {e.strerror or e}", "check the path")) from None
    with fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(Problem(str(path), lineno, None, f"invalid JSON ({e.msg})")) from None
                if not isinstance(row, dict):
                    raise InputError(Problem(str(path), lineno, None, "expected a JSON object"))
                yield lineno, row
        except UnicodeDecodeError as e:
            raise InputError(Problem(str(path), None, None, f"not valid UTF-8 ({e.reason})",
                                     "re-encode the file as UTF-8")) from None


def read_labels(path: str | Path, label: str = "cluster_id") -> dict[str, str]:
    """``id`` → label from a JSONL gold file; a line without either is an error naming file and line."""
    out: dict[str, str] = {}
    for lineno, row in _jsonl_objects(path):
        for field in ("id", label):
            if row.get(field) is None:
                raise InputError(Problem(str(path), lineno, field, "missing",
                                         f"every gold line needs 'id' and '{label}' (choose the field with --label)"))
        out[str(row["id"])] = str(row[label])
    if not out:
        raise InputError(Problem(str(path), None, None, "no gold lines (the file is empty)",
                                 f"one JSON object per line with 'id' and '{label}'"))
    return out


def read_id_pairs(path: str | Path, need_score: bool = False) -> list[tuple[str, str, float | None]]:
    """(id1, id2, score or None) from a JSONL file of pairs; ``need_score`` makes the score required."""
    want = ('one JSON object per line with id1, id2 and a numeric score, e.g. {"id1": "a", "id2": "b", "score": 1.5}'
            if need_score else 'one JSON object per line with id1 and id2, e.g. {"id1": "a", "id2": "b"}')
    out = []
    for lineno, row in _jsonl_objects(path):
        for field in ("id1", "id2", *(("score",) if need_score else ())):
            if row.get(field) is None:
                raise InputError(Problem(str(path), lineno, field, "missing", want))
        score = row.get("score")
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                score = None
            if score is None or not math.isfinite(score) or isinstance(row["score"], bool):
                raise InputError(Problem(str(path), lineno, "score", f"not a number: {json.dumps(row['score'])[:80]}",
                                         want))
        out.append((str(row["id1"]), str(row["id2"]), score))
    if not out:
        raise InputError(Problem(str(path), None, None, "no pairs (the file is empty)", want))
    return out


def read_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """(id1, id2, score) from a JSONL file of human-rated pairs."""
    return [(a, b, float(s)) for a, b, s in read_id_pairs(path, need_score=True) if s is not None]
