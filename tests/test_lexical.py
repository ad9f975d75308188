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


def test_tfidf_matches_scikit_learn_and_rare_terms_drop_common_vocabulary():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from storycluster.lexical import document_frequencies, idf_weights, term_vectors, tfidf_matrix

    texts = ["the cat sat on the mat", "the cat sat", "dogs bark at the cat", "a parade in Oslo today"]
    vecs = term_vectors(texts)
    df = document_frequencies(vecs)
    ours = tfidf_matrix(vecs, idf_weights(df, len(texts)))
    ref = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b").fit_transform([t.lower() for t in texts])
    assert np.allclose((ours @ ours.T).toarray(), (ref @ ref.T).toarray())
    # "the" and "cat" are in 3 of 4 texts: with rare terms only (at most 2 texts here) they no longer count
    rare = tfidf_matrix(vecs, idf_weights(df, len(texts), max_df=0.02))
    gram = (rare @ rare.T).toarray()
    assert gram[0, 1] > 0 and gram[0, 2] == 0.0 and gram[1, 2] == 0.0
