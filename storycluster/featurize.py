"""Featurize: an article's derived forms, computed here for every path that needs them (``add``, a query text,
the Ray pipeline, the PostgreSQL backend), so that they are the same everywhere.

* :func:`prepare_article`: the matching text (body without its source's boilerplate lines, headline not repeated,
  normalized), the embedder's two inputs (lead and headline), the content hash and the language.
* :func:`lexical_features`: what the lexical evidence reads of prepared texts, in one batch: MinHash signature,
  packed term counts and the numbers the text writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .article import Article
from .boilerplate import line_key, strip_boilerplate, strip_title_affixes
from .language import detect_language
from .lexical import number_codes, signatures, term_vectors
from .normalize import content_hash, normalize_text, text_hash

TITLE_FALLBACK_CHARS = 200  # articles without a headline use the start of the text in its place


@dataclass(slots=True)
class Prepared:
    """An article's derived forms: boilerplate-free matching text, embedder input, hashes, language."""

    content_hash: str
    embed_input: str
    title_input: str
    match_input: str
    lang: str | None

    @property
    def hashes(self) -> tuple[str, str]:
        return text_hash(self.embed_input), text_hash(self.title_input)


@dataclass(slots=True)
class LexicalFeatures:
    """A prepared text's lexical side: MinHash signature (uint32), packed term counts (uint32), number codes (uint64)."""

    signature: np.ndarray
    terms: np.ndarray
    numbers: np.ndarray


def prepare_article(a: Article, boilerplate: set[int], embed_max_chars: int) -> Prepared:
    """Derived forms of an article: body without its outlet's boilerplate lines, title not repeated (and left
    out when it is one of those lines: a label such as "Weather" that the outlet puts on many articles; a site's
    name the outlet puts before or after its headlines, "... - BBC News", is cut off). A body
    made only of the outlet's lines (a disclaimer or "subscribe to read" where the story should be) says nothing
    of the story: the article is read as its headline alone, else (no headline of its own either) as given."""
    body = strip_boilerplate(a.text, boilerplate)
    title = "" if boilerplate and line_key(a.title or "") in boilerplate else \
        normalize_text(strip_title_affixes(a.title, boilerplate) if a.title else a.title)
    if not body and not title:
        body = a.text
    body_n = normalize_text(body)
    if title and a.title and (given := normalize_text(a.title)) != title and body_n.startswith(given):
        body_n = title + body_n[len(given):]  # a body that repeats the headline repeats it without the site's name
    full = body_n if not title or body_n.startswith(title) else f"{title}\n{body_n}" if body_n else title
    lang = a.lang or detect_language(full)
    return Prepared(content_hash=content_hash(full), embed_input=full[:embed_max_chars],
                    title_input=title or full[:TITLE_FALLBACK_CHARS], match_input=full, lang=lang)


def lexical_features(prepared: Sequence[Prepared]) -> list[LexicalFeatures]:
    """Signatures, terms and numbers of prepared articles (signatures and terms are computed as one batch)."""
    texts = [p.match_input for p in prepared]
    sigs = signatures(texts, normalized=True)
    terms = term_vectors(texts)
    return [LexicalFeatures(sig, tv, number_codes(text)) for sig, tv, text in zip(sigs, terms, texts, strict=True)]
