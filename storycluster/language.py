"""Language identification with py3langid, whose model ships inside its wheel (no download)."""

from __future__ import annotations

from functools import cache, lru_cache


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # model is an .npz, not a pickle

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when the text is too short to tell."""
    sample = text[:2000].strip()
    if len(sample) < 8:
        return None
    lang, prob = _identifier().classify(sample)
    return lang if prob >= 0.5 else None


#: tags that say the language is not known, or not one: treated as absent (the text's language is detected)
_NO_LANGUAGE = frozenset({"und", "mul", "zxx", "mis"})
#: what to do about a ``lang`` that is not a language tag
LANG_HINT = "use a code such as en, ar, fr or eng, or leave it out to have the language detected"
#: a language filter's: left out, a list takes every language
FILTER_HINT = "use a code such as en, ar, fr or eng, or leave it out for every language"


@lru_cache(maxsize=4096)  # a feed's records repeat a few values
def language_tag(value: str | None) -> str | None:
    """A ``lang`` as given (``en``, ``EN``, ``en_US``, ``eng``, ``ara``, ``zh-Hant-TW``, ``cmn``) as a lowercase
    BCP 47 tag with the shortest language code (``en``, ``en-us``, ``ar``, ``zh-hant-tw``, ``zh``); None for an
    empty value or one that names no language (``und``). A value that is not a language tag ("English") is a
    ValueError: read as a language the model does not know, it would cost the article its semantic verdict."""
    import langcodes

    text = (value or "").strip()
    if not text:
        return None
    try:
        tag = langcodes.standardize_tag(text, macro=True)
    except (langcodes.LanguageTagError, ValueError):
        tag = None
    if tag is None or not langcodes.tag_is_valid(tag):
        raise ValueError(f"{text[:40]!r} is not a language tag")
    return None if base_code(tag) in _NO_LANGUAGE else tag.lower()


def lang_option(value: str | None, hint: str = LANG_HINT) -> str | None:
    """A ``lang`` given with a request (a text query's language, or with ``hint=FILTER_HINT`` a filter) as
    :func:`language_tag` reads a record's; an error names the option and says what to do."""
    try:
        return language_tag(value)
    except ValueError as e:
        raise ValueError(f"lang: {e} ({hint})") from None


def base_code(lang: str | None) -> str | None:
    """``zh-TW`` → ``zh``; None or empty → None."""
    return (lang or "").split("-")[0].split("_")[0].strip().lower() or None


@lru_cache(maxsize=1024)
def macrolanguage(code: str | None) -> str | None:
    """The ISO 639 macrolanguage a language code belongs to (``arz`` Egyptian and ``ary`` Moroccan Arabic →
    ``ar``, ``yue`` → ``zh``, ``pes`` → ``fa``), else the code itself; the detector gives such codes for
    dialectal text, and so may a record's ``lang``."""
    if not code:
        return code
    from langcodes.data_dicts import MACROLANGUAGES  # ISO 639-3's table, shipped with langcodes

    return MACROLANGUAGES.get(code, code)


def reads(languages: frozenset[str] | None, lang: str | None) -> bool:
    """Whether a model that reads ``languages`` (None: every language) reads text in ``lang``: its code or its
    macrolanguage (a model that reads Arabic reads Egyptian Arabic); a text whose language is unknown (too short
    to tell) counts as read."""
    code = base_code(lang)
    return languages is None or code is None or code in languages or macrolanguage(code) in languages


def in_language(lang: str | None, wanted: str) -> bool:
    """Whether an article in ``lang`` passes a filter on the base code ``wanted``: the same code, or a language
    within it (``arz`` passes ``ar``; ``ar`` does not pass ``arz``)."""
    code = base_code(lang)
    return code == wanted or (code is not None and macrolanguage(code) == wanted)


RTL_LANGS = frozenset({"ar", "fa", "he", "ur", "ps", "ku", "yi", "dv", "sd", "ug"})


def direction(lang: str | None) -> str:
    """``rtl`` for right-to-left languages (Arabic, Persian, Hebrew, Urdu, ...), else ``ltr``."""
    return "rtl" if (lang or "").split("-")[0].lower() in RTL_LANGS else "ltr"
