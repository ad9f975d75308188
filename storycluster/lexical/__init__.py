"""Lexical evidence, one module per subject: near-copies by MinHash (:mod:`.minhash`), word overlap by TF-IDF
(:mod:`.tfidf`) and the numbers a text writes (:mod:`.numbers`)."""

from .minhash import (
    BANDS,
    EMPTY,
    NUM_PERM,
    band_keys,
    band_partners,
    candidate_pairs,
    jaccard,
    shared_key_pairs,
    shingles,
    signatures,
)
from .numbers import YEAR_CODES, PackedNumbers, is_year, number_codes, number_matrices, number_text
from .tfidf import (
    N_FEATURES,
    PackedTerms,
    document_frequencies,
    idf_weights,
    n_tokens,
    rows_csr,
    term_vectors,
    tfidf_cosines,
    tfidf_matrices,
    tfidf_matrix,
    unpack,
)

__all__ = ["BANDS", "EMPTY", "N_FEATURES", "NUM_PERM", "YEAR_CODES", "PackedNumbers", "PackedTerms", "band_keys",
           "band_partners",
           "candidate_pairs", "document_frequencies", "idf_weights", "is_year", "jaccard", "n_tokens",
           "number_codes", "number_matrices", "number_text", "rows_csr", "shared_key_pairs", "shingles",
           "signatures", "term_vectors", "tfidf_cosines", "tfidf_matrices", "tfidf_matrix", "unpack"]
