"""Shared fixtures: the seed archive built once with the real bundled model, and a fast hashing
embedder for unit tests of store logic (never the only test of a feature)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from storycluster import Archive
from storycluster.embed import Embedder
from storycluster.normalize import words

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds" / "articles.jsonl"


def _ecb() -> Path:
    """ECB+ (not in the repository: its news texts are the outlets'): $STORYCLUSTER_ECB, else ../shared/data/ecbplus
    beside the checkout, else the workspace's /work/shared."""
    candidates = [os.environ.get("STORYCLUSTER_ECB", ""), ROOT.parent / "shared" / "data" / "ecbplus" / "articles.jsonl",
                  "/work/shared/data/ecbplus/articles.jsonl"]
    return next((Path(c) for c in candidates if c and Path(c).exists()), Path(candidates[1]))


ECB = _ecb()
SUDANI_HEADLINES = ["similar-03", "similar-04", "similar-05", "similar-07"]


class HashEmbedder(Embedder):
    """Bag of hashed words: deterministic, instant, shares vectors for shared words. Counts its calls."""

    model_id = "test-hash-64"
    dim = 64

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in words(t):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big")
                out[i, h % self.dim] += 1.0 if h & 1 else -1.0
        out[:, 0] += 0.01  # never all zero
        return out


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def seed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built from seeds/ with the real USE-m3 model, real FAISS and real SQLite (read-only use)."""
    path = tmp_path_factory.mktemp("seed") / "store"
    with Archive(path) as archive:
        report = archive.add_paths([SEEDS])
    assert report.problems == [] and report.added == sum(1 for _ in SEEDS.open())
    return path


@pytest.fixture
def seed_store_copy(seed_store: Path, tmp_path: Path) -> Path:
    """A private copy of the seed store for tests that write."""
    dest = tmp_path / "store"
    shutil.copytree(seed_store, dest)
    return dest


@pytest.fixture(scope="session")
def seed_rows() -> list[dict]:
    return [json.loads(line) for line in SEEDS.open(encoding="utf-8")]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="Chromium not installed (CI installs it)")


@pytest.fixture
def browser_page(tmp_path):
    """A page in Debian's headless Chromium driven by Playwright, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CI must install Debian's chromium (apt-get install chromium)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=CHROMIUM_FLAGS,
                                                       viewport={"width": 1000, "height": 1400})
        try:
            yield context.new_page()
        finally:
            context.close()


def ivf_articles(rng, sources: bool = False) -> list:
    """1,500 articles, 6 of each of 250 stories, for tests under an IVF index (38 lists, 16 probed): headlines
    drawn from 40 words shared across stories, bodies from their own story's words (``sources``: three outlets
    in turn)."""
    from storycluster import Article

    shared = [f"h{i}" for i in range(40)]
    arts = []
    for story in range(250):
        vocab = [f"s{story}w{i}" for i in range(25)]
        arts += [Article(f"a{story:03d}-{n}", " ".join(rng.sample(shared, 5)), " ".join(rng.choices(vocab, k=50)),
                         lang="en", source=f"outlet{n % 3}.example" if sources else None) for n in range(6)]
    return arts
