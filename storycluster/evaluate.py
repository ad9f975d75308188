"""Clustering metrics against gold labels: B-cubed and pairwise precision/recall/F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def bcubed(predicted: Mapping[str, object], gold: Mapping[str, object]) -> dict[str, float]:
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


def pairwise(predicted: Mapping[str, object], gold: Mapping[str, object]) -> dict[str, float]:
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
