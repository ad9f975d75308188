from hypothesis import given
from hypothesis import strategies as st

from storycluster.normalize import content_hash, matching_text, normalize_text, words


def test_persian_yeh_and_kaf_hash_like_arabic():
    # the seed page's tag line is written with Persian ی and ک
    persian = "الحکومة العراقیة الولایات المتحدة"
    arabic = "الحكومة العراقية الولايات المتحدة"
    assert persian != arabic
    assert content_hash(persian) == content_hash(arabic)


def test_tashkeel_tatweel_and_alef_forms_removed():
    assert matching_text("رَئِيسُ الوُزَرَاءِ العِرَاقِيُّ") == matching_text("رئيس الوزراء العراقي")
    assert matching_text("العـــراق") == "العراق"
    assert matching_text("أإآٱ") == "اااا"
    assert matching_text("مستشفى") == "مستشفي"


def test_zero_width_and_bidi_controls_removed_and_spaces_collapsed():
    text = "\u202bالعراق\u202c\u200b  و\u200fسوريا \u2066x\u2069"
    assert matching_text(text) == "العراق وسوريا x"


def test_arabic_indic_digits_become_ascii():
    assert words("قتل ١٥ عنصرا في ۲۰۲۴") == ["قتل", "15", "عنصرا", "في", "2024"]


def test_presentation_forms_fold_under_nfkc():
    assert matching_text("ﻻ") == "لا"


def test_display_text_lines_kept_but_blank_runs_collapsed():
    assert normalize_text("a  b\n\n\n c ") == "a b\nc"


@given(st.text())
def test_normalization_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    m = matching_text(text)
    assert matching_text(m) == m


@given(st.text())
def test_content_hash_never_crashes_and_ignores_case(text):
    assert content_hash(text) == content_hash(text.upper()) or text.upper().casefold() != text.casefold()


def test_arabic_proclitics_are_stripped_for_lexical_terms_only():
    from storycluster.normalize import lexical_terms

    assert lexical_terms("والقوات القوات قوات بالعراق للحكومة") == ["قوات", "قوات", "قوات", "عراق", "حكومة"]
    assert lexical_terms("الى ولد") == ["الي", "ولد"]  # too short to strip (ى is unified to ي)
    assert lexical_terms("The troops") == ["the", "troops"]
    assert words("والقوات") == ["والقوات"]  # shingles and hashes keep the words as written


def test_arabic_rewrites_share_more_terms_after_stripping():
    from storycluster.lexical import document_frequencies, idf_weights, term_vectors, tfidf_matrix

    a = "قالت الحكومة العراقية إن القوات الأمريكية ستغادر البلاد"
    b = "وأكدت حكومة العراق أن قوات أمريكية ستغادر بلاده"
    vecs = term_vectors([a, b])
    m = tfidf_matrix(vecs, idf_weights(document_frequencies(vecs), 2))
    assert (m @ m.T).toarray()[0, 1] > 0.3


def test_turkish_dotted_capital_i_folds_to_one_word():
    """Unicode folds İ to i and a combining dot, which no word pattern reads as a letter: "İstanbul" was the two
    words "i" and "stanbul", and did not match "istanbul" or "ISTANBUL"."""
    from storycluster.lexical.minhash import shingles

    assert words("İstanbul'da İçişleri İZMİR") == ["istanbul", "da", "içişleri", "izmir"]
    assert content_hash("İSTANBUL İÇİN") == content_hash("istanbul için")
    assert shingles(normalize_text("İstanbul İzmir Ankara"), normalized=True) == ["istanbul izmir ankara"]
