"""Nearest IVF lists (index/assign.py): exact below the two-level size, two-level above it, close to exact."""

from __future__ import annotations

import numpy as np

from storycluster.neighbors import assign
from storycluster.neighbors.assign import ListAssigner, assign_lists, nearest_columns

from .test_vectors import clustered


def exact(x: np.ndarray, c: np.ndarray, m: int) -> np.ndarray:
    return nearest_columns(x @ c.T, m)


def test_small_centroid_sets_are_assigned_exactly():
    x, c = clustered(3000, 32, seed=1), clustered(400, 32, seed=2)
    a = ListAssigner(c)
    assert a.groups is None
    assert np.array_equal(a(x, 3, chunk=700), exact(x, c, 3))


def test_two_level_assignment_is_close_to_exact_and_well_formed():
    rng = np.random.default_rng(3)
    # 1,200 lists around 60 regions, as trained lists of news embeddings lie: two levels apply
    regions = rng.standard_normal((60, 48))
    c = regions[rng.integers(0, 60, 1200)] + 0.5 * rng.standard_normal((1200, 48))
    c = (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)
    x = c[rng.integers(0, 1200, 20_000)] + 0.08 * rng.standard_normal((20_000, 48)).astype(np.float32)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    a = ListAssigner(c)
    assert a.groups is not None and len(a.groups) == 35  # √1200
    assert all(len(ch) for ch in a.children)
    got, want = a(x, 2, chunk=4096), exact(x, c, 2)
    assert (got[:, 0] == want[:, 0]).mean() >= 0.97
    assert (got[:, 1] == want[:, 1]).mean() >= 0.93
    assert (got[:, 0] != got[:, 1]).all()  # a list reached through two groups is not returned twice
    s = np.take_along_axis(x @ c.T, got, 1)
    assert (s[:, 0] >= s[:, 1]).all()  # nearest first
    # chunking and the kept assigner change nothing
    assert np.array_equal(a(x, 2, chunk=20_000), got)
    assert np.array_equal(assign_lists(x, c, 2), got)
    assert len(assign._ASSIGNERS) >= 1


def test_fewer_lists_than_asked():
    c = clustered(20, 16, seed=4)[:1]
    x = clustered(50, 16, seed=5)
    assert assign_lists(x, c, 2).shape == (50, 1)
