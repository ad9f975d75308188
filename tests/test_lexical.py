import numpy as np

from storycluster.lexical import EMPTY, candidate_pairs, jaccard, shingles, signatures


def test_shingles_of_short_text_is_the_whole_text():
    assert shingles("Iraq PM") == ["iraq pm"]
    assert shingles("") == []


def test_signatures_estimate_jaccard():
    base = " ".join(f"w{i}" for i in range(200))
    edited = base.replace("w100", "changed")
    other = " ".join(f"x{i}" for i in range(200))
    s = signatures([base, edited, other, ""])
    assert jaccard(s[0], s[1]) > 0.9
    assert jaccard(s[0], s[2]) < 0.05
    assert (s[3] == EMPTY).all() and jaccard(s[3], s[3]) == 0.0


def test_band_candidates_find_near_duplicates_only():
    texts = [" ".join(f"w{i}" for i in range(100)), " ".join(f"w{i}" for i in range(100)) + " extra",
             " ".join(f"z{i}" for i in range(100)), ""]
    pairs = candidate_pairs(signatures(texts))
    assert pairs.tolist() == [[0, 1]]
    assert candidate_pairs(np.zeros((1, 128), dtype=np.uint32)).shape == (0, 2)
