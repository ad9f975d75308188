"""Site boilerplate found by repetition, not by a phrase list.

A body line that appears in at least ``min_count`` articles of the same outlet (its ``source``, else its URL's
host): bylines such as "المسلة – متابعة – وكالات", disclaimers, "إقرأ أيضاً" and "مقالات مشابهة" headings,
share prompts. It is boilerplate for that outlet and is left out of hashing, shingles and embeddings. A
headline counts as one of its article's lines: one that repeats across an outlet's articles ("Weather",
"Corrections", "Live updates", a site's keyword list) is a label, not the story's headline, and the article is
read as if it had none. Digits are masked in the line key so that dated lines ("15 سبتمبر، 2024") count as one
line. Display text is never changed.
"""

from __future__ import annotations

import hashlib
import re

from .normalize import matching_text

MIN_COUNT = 3
_DIGITS = re.compile(r"\d")


def line_key(line: str) -> int | None:
    """A signed 64-bit key of a line's matching form with digits masked; None for blank lines."""
    norm = _DIGITS.sub("0", matching_text(line))
    if not norm:
        return None
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def line_keys(text: str) -> set[int]:
    """The distinct keys of a text's lines."""
    return {k for k in map(line_key, text.split("\n")) if k is not None}


def outlet(source: str | None, url: str | None) -> str | None:
    """Whose boilerplate an article shares: its ``source``, else its URL's host (``host:example.com``, without
    ``www.``), else nobody's (None)."""
    if source:
        return source
    if url:
        from urllib.parse import urlsplit

        try:
            host = (urlsplit(url).hostname or "").removeprefix("www.")
        except ValueError:
            host = ""
        if host:
            return f"host:{host}"
    return None


# what separates a headline from the site's name or rubric that an outlet puts before or after it
# ("... - BBC News", "Reuters | ...", "... – S A N A"); a colon is left alone ("Sudani: no need for troops")
_AFFIX_SEPARATOR = re.compile(r"(\s+(?:[-|–—·»«]|::)\s+)")


def _pieces(title: str) -> list[str]:
    """A headline cut at its separators: parts at even places, the separators between them at odd places."""
    return _AFFIX_SEPARATOR.split(title.strip())


def affix_key(part: str) -> int | None:
    """The key of a headline's first or last part, apart from the keys of whole lines."""
    return line_key(f"title affix: {part}") if part.strip() else None


def title_affix_keys(title: str | None) -> set[int]:
    """The keys of a headline's first and last parts (none for a headline without separators)."""
    pieces = _pieces(title or "")
    if len(pieces) < 3:
        return set()
    return {k for k in (affix_key(pieces[0]), affix_key(pieces[-1])) if k is not None}


def article_line_keys(title: str | None, text: str) -> set[int]:
    """The keys an article counts toward its outlet's boilerplate: its body's lines, its headline, and its
    headline's first and last parts, once each."""
    keys = line_keys(text) | title_affix_keys(title)
    if title and (key := line_key(title)) is not None:
        keys.add(key)
    return keys


def strip_title_affixes(title: str, keys: set[int]) -> str:
    """The headline without a first or last part that is its outlet's boilerplate (a site's name: "... - BBC
    News"); as given when nothing else would be left."""
    pieces = _pieces(title) if keys else []
    if len(pieces) < 3:
        return title
    if affix_key(pieces[-1]) in keys:
        pieces = pieces[:-2]
    if len(pieces) >= 3 and affix_key(pieces[0]) in keys:
        pieces = pieces[2:]
    return "".join(pieces) if pieces and "".join(pieces[::2]).strip() else title


def strip_boilerplate(text: str, keys: set[int]) -> str:
    """The text without its boilerplate lines: empty when it has nothing else (an outlet's disclaimer where the
    body should be; :func:`~.featurize.prepare_article` decides what the article is read as then)."""
    if not keys:
        return text
    kept = [line for line in text.split("\n") if line_key(line) not in keys]
    return "\n".join(kept) if any(line.strip() for line in kept) else ""
