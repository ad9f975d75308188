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


def test_packed_terms_and_chunked_tfidf_equal_the_per_text_forms():
    """PackedTerms (a whole archive's term lists in flat arrays) gives back each text's packed vector, its word
    count and the same document frequencies; the chunked float32 TF-IDF build equals a direct computation,
    with renumbered columns (few rows) and hashed ones (many rows), across chunk boundaries."""
    from storycluster.lexical import (
        PackedTerms,
        document_frequencies,
        idf_weights,
        n_tokens,
        term_vectors,
        tfidf_matrices,
        unpack,
    )

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, rng.integers(0, 40))) for _ in range(5000)] + ["", "w1 w1 w1"]
    vectors = term_vectors(texts)
    packed = PackedTerms.of(vectors)
    assert len(packed) == len(vectors) and all(np.array_equal(packed[r], vectors[r]) for r in range(len(vectors)))
    assert packed.n_tokens().tolist() == [n_tokens(v) for v in vectors]
    df = document_frequencies(packed)
    assert np.array_equal(df, document_frequencies(vectors))
    idf = idf_weights(df, len(texts))
    for rows in (vectors[:50], vectors):  # renumbered columns / hashed ids (over RENUMBER_MAX rows)
        full, rare = tfidf_matrices(rows, [idf, idf_weights(df, len(texts), 0.02)], chunk=1000)
        for r in (0, 7, len(rows) - 1):
            t, c = unpack(rows[r])
            w = (1 + np.log(c.astype(np.float64))) * idf[t]
            expect = np.sort(w / np.linalg.norm(w)) if len(w) else np.zeros(0)
            assert np.allclose(np.sort(full[r].data), expect, atol=1e-6)
        norms = np.asarray(full.multiply(full).sum(axis=1)).ravel()
        assert np.allclose(norms[packed.lengths()[:len(rows)] > 0], 1.0, atol=1e-5)
        assert rare.nnz < full.nnz


def test_band_partners_are_the_seeds_partners_in_candidate_pairs():
    """The incremental regrouping's shortcut finds exactly the rows that candidate_pairs pairs with a seed
    (signatures over a tiny alphabet, so bands collide often; an empty signature has no band)."""
    from storycluster.lexical import EMPTY, band_partners, candidate_pairs

    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 5, (2000, 128)).astype(np.uint32)
    sigs[5] = EMPTY
    seeds = np.array([0, 5, 17, 1999])
    pairs = candidate_pairs(sigs)
    expect = set(pairs[np.isin(pairs[:, 0], seeds) | np.isin(pairs[:, 1], seeds)].ravel().tolist())
    assert len(expect) > 100
    assert set(band_partners(sigs, seeds).tolist()) == expect


def test_tfidf_built_in_place_of_the_packed_terms_equals_the_copy():
    """``consume``: the first matrix takes over the packed arrays (no copy of a whole archive's term lists) and
    equals the matrices built beside them; a weighting that drops terms, or a few renumbered rows, copies."""
    from storycluster.lexical import PackedTerms, document_frequencies, idf_weights, term_vectors, tfidf_matrices

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choice(words, rng.integers(0, 30))) for _ in range(6000)] + [""]
    vectors = term_vectors(texts)
    df = document_frequencies(vectors)
    idfs = [idf_weights(df, len(texts)), idf_weights(df, len(texts), 0.02)]
    want = tfidf_matrices(vectors, idfs, chunk=700)
    spent = PackedTerms.of(vectors)
    got = tfidf_matrices(spent, idfs, chunk=700, consume=True)
    assert np.shares_memory(got[0].data, spent.counts) and np.shares_memory(got[0].indices, spent.terms)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and (a != b).nnz == 0
    # the rare-terms weighting first: it drops entries, so nothing is taken over
    kept = PackedTerms.of(vectors)
    got = tfidf_matrices(kept, idfs[::-1], chunk=700, consume=True)
    assert not np.shares_memory(got[0].data, kept.counts) and (got[0] != want[1]).nnz == 0
    assert all(np.array_equal(kept[r], vectors[r]) for r in (0, 5, len(vectors) - 1))


def test_band_keys_do_not_depend_on_the_row_chunks():
    from storycluster.lexical import band_keys

    sigs = np.random.default_rng(2).integers(0, 2**32 - 1, (1000, 128), dtype=np.uint32)
    sigs[5] = EMPTY
    keys = band_keys(sigs)
    assert np.array_equal(band_keys(sigs, chunk=77), keys) and keys.shape == (1000, 32)
    assert (keys[5] == 0).all() and (np.delete(keys, 5, axis=0) != 0).all()
    assert band_keys(sigs[:0]).shape == (0, 32)


def test_packed_numbers_give_the_same_matrices_as_per_text_arrays():
    import numpy as np

    from storycluster.lexical import PackedNumbers, number_codes, number_matrices

    texts = ["in 2013 the 33 year old", "", "2013 and 15 and 2024", "no numbers here", "15"]
    per_text = [number_codes(t) for t in texts]
    blobs = [c.tobytes() or None for c in per_text]
    # read in two chunks, as a store's read does, then joined
    packed = PackedNumbers.concat([PackedNumbers.from_blobs(blobs[:2]), PackedNumbers.from_blobs(blobs[2:])])
    assert len(packed) == len(texts)
    for r, codes in enumerate(per_text):
        assert packed[r].tolist() == codes.tolist()
    for ours, want in zip(number_matrices(packed), number_matrices(per_text), strict=True):
        assert (ours @ ours.T).toarray().tolist() == (want @ want.T).toarray().tolist()
    years, others = number_matrices(packed)
    assert (years @ years.T).toarray()[0, 2] == 1  # 2013 shared
    assert (others @ others.T).toarray()[2, 4] == 1  # 15 shared
    assert len(PackedNumbers.concat([], 3)) == 3 and np.diff(PackedNumbers.concat([], 3).offsets).sum() == 0
