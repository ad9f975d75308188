"""Language identification with py3langid, whose model ships inside its wheel (no download)."""

from __future__ import annotations

from functools import cache


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


RTL_LANGS = frozenset({"ar", "fa", "he", "ur", "ps", "ku", "yi", "dv", "sd", "ug"})


def direction(lang: str | None) -> str:
    """``rtl`` for right-to-left languages (Arabic, Persian, Hebrew, Urdu, ...), else ``ltr``."""
    return "rtl" if (lang or "").split("-")[0].lower() in RTL_LANGS else "ltr"
