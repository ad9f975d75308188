"""Text normalization, Arabic first.

Two forms are derived from the display text, which is always kept as given:

* :func:`normalize_text` (for the embedder): NFKC, no tashkeel or tatweel, one form of alef and
  yeh, Persian yeh/kaf mapped to Arabic, Arabic-Indic digits to ASCII, no zero-width or bidi
  control characters, whitespace collapsed inside lines. Case is kept.
* :func:`matching_text` (for hashing and shingles): the above, case-folded (Turkish İ to i), on one line.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Harakat, superscript alef, Quranic marks (U+0610-U+061A, U+064B-U+065F, U+0670, U+06D6-U+06ED) and tatweel.
_TASHKEEL = "".join(chr(c) for c in [*range(0x0610, 0x061B), *range(0x064B, 0x0660), 0x0670,
                                     *range(0x06D6, 0x06EE), 0x0640])
# Zero-width and bidi controls: ZWSP..RLM, LRE..RLO, LRI..PDI, word joiner, BOM, Arabic letter mark, soft hyphen.
_CONTROLS = "".join(chr(c) for c in [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                     0x2060, 0xFEFF, 0x061C, 0x00AD])
_LETTERS = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",  # alef with hamza above/below, madda, wasla
    "ى": "ي",  # alef maksura
    "ی": "ي",  # Persian yeh (U+06CC)
    "ک": "ك",  # Persian kaf (U+06A9)
    "ۀ": "ه",  # heh with yeh above
}
_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}
_TABLE = str.maketrans({**dict.fromkeys(_TASHKEEL + _CONTROLS, None), **_LETTERS, **_DIGITS})
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
#: a word: a run of letters, digits or underscores (any script)
WORD = re.compile(r"\w+")


_DIGIT_TABLE = str.maketrans(_DIGITS)


def ascii_digits(text: str) -> str:
    """Arabic-Indic and Eastern Arabic-Indic digits as ASCII digits; nothing else changed."""
    return text.translate(_DIGIT_TABLE)


def normalize_text(text: str) -> str:
    """Normalize for embedding: NFKC, Arabic letter unification, controls removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_TABLE)
    # NFKC can re-compose alef+hamza sequences; translate once more so the result is a fixed point.
    text = unicodedata.normalize("NFKC", text).translate(_TABLE)
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(line for line in lines if line)).strip()


def fold_case(text: str) -> str:
    """Case-folded, with Turkish capital dotted I (İ) folded to i: Unicode folds it to i and a combining dot,
    which no word pattern reads as a letter, so "İstanbul" became the words "i" and "stanbul"."""
    return text.casefold().replace("i\u0307", "i")


def matching_text(text: str) -> str:
    """Normalize for hashing and shingles: :func:`normalize_text`, case-folded (:func:`fold_case`), one line."""
    return " ".join(fold_case(normalize_text(text)).split())


def words(text: str) -> list[str]:
    """Word tokens of the matching form (Unicode-aware, punctuation dropped)."""
    return WORD.findall(matching_text(text))


def content_hash(text: str) -> str:
    """Hex SHA-256 of the word tokens: equal for texts that differ only in tashkeel, letter forms, case,
    punctuation or spacing."""
    return hashlib.sha256(" ".join(words(text)).encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """Hex SHA-256 of a string as given (cache keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_ARABIC = re.compile(r"[\u0600-\u06FF]")
_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")


def light_stem(token: str) -> str:
    """Strip one Arabic proclitic (wa-/bi-/ka-/fa- + al-, li-l-, al-, or a bare wa-) when at least three letters
    remain, so that القوات, والقوات and قوات meet in lexical evidence. Other scripts pass unchanged."""
    if len(token) < 4 or not _ARABIC.match(token):
        return token
    for prefix in _PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            return token[len(prefix):]
    if token.startswith("و") and len(token) >= 5:
        return token[1:]
    return token


def lexical_terms(text: str) -> list[str]:
    """Word tokens of the matching form with Arabic proclitics stripped: the terms TF-IDF counts."""
    return [light_stem(w) for w in words(text)]
