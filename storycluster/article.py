"""The Article record that flows through every stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .normalize import ascii_digits, text_hash

FIELDS = ("id", "title", "text", "url", "source", "published", "lang")


@dataclass(slots=True)
class Article:
    """A news article as read from the input; ``title``/``text`` are kept as given for display."""

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    published: str | None = None  # ISO-8601 as given, validated by the readers
    lang: str | None = None
    #: Where the record came from ("file:line"), for messages; not part of the article.
    origin: str | None = field(default=None, compare=False, repr=False)
    #: :meth:`record_hash`, once computed (the readers, the writer's repeat check and its change check ask for it)
    _digest: str | None = field(default=None, init=False, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in FIELDS}

    def record_hash(self) -> str:
        """Hash of the record as given (every field): an unchanged record is skipped by ``add``, and one an
        input repeats field for field is stored once."""
        if self._digest is None:
            import json

            self._digest = text_hash(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False))
        return self._digest

    @property
    def published_ts(self) -> float | None:
        """POSIX timestamp of ``published`` (naive times are taken as UTC), or None."""
        return parse_published(self.published)


def parse_published(value: str | None) -> float | None:
    """Parse an ISO-8601 date or datetime; raise ValueError on anything else."""
    if value is None or value == "":
        return None
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def normalize_published(value: str | None) -> str | None:
    """A date as given when it is ISO-8601; an RFC 2822 date (RSS ``pubDate``: "Tue, 10 Jun 2003 04:00:00 GMT")
    or a Unix time written as nine digits or more (a CSV's, see :func:`published_text`) as ISO-8601; either
    written in Arabic-Indic digits ("٢٠٢٤-٠٩-١٥") with ASCII digits; raise ValueError on anything else."""
    if value is None or not value.strip():
        return None
    value = ascii_digits(value)
    try:
        parse_published(value)
        return value
    except ValueError:
        pass
    if _UNIX_TEXT.fullmatch(value.strip()):  # a CSV's Unix time: no ISO-8601 date is nine digits or more alone
        return published_text(float(value) if "." in value else int(value))
    from email.utils import parsedate_to_datetime

    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        dt = None
    if dt is None:
        raise ValueError(f"not a date: {value!r}")
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


#: Unix time written as text (nine digits or more: 1726389000, 1726389000123, 1726389000.5)
_UNIX_TEXT = re.compile(r"-?[0-9]{9,}(?:\.[0-9]+)?")

#: a Unix time at or above this is in milliseconds (in seconds it would be after the year 5000)
UNIX_MS_FROM = 100_000_000_000


def published_text(value: object) -> str:
    """A date given as something other than text, as ISO-8601 text: a ``datetime`` or ``date`` (a Parquet
    timestamp or date column) as it is, a number as Unix time in seconds, or in milliseconds from
    ``UNIX_MS_FROM`` on (pandas' ``to_json`` writes dates as milliseconds). Raise ValueError for a number no date
    has, and TypeError for any other type."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= UNIX_MS_FROM else value
        try:
            return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} is not a Unix time in seconds or milliseconds") from None
    raise TypeError(type(value).__name__)


#: the longest URL stored (browsers and servers commonly stop at about 8 KB; longer ones are not addresses)
MAX_URL_CHARS = 4096


def web_url(value: str | None) -> str | None:
    """``value`` as a link target when it is an absolute ``http``/``https`` URL with a host (surrounding spaces
    dropped), else None. Anything else (``javascript:``, ``data:``, ``vbscript:``, relative paths, control
    characters or spaces inside) must never become a link: a feed's URL is untrusted text."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def headline(title: str | None, text: str | None, limit: int = 120) -> str:
    """What to show as an article's headline: the title, else the first line of the text with four or
    more words (skips date lines), cut at ``limit`` characters on a word boundary."""
    if title and title.strip():
        return title.strip()
    lines = [x.strip() for x in (text or "").split("\n") if len(x.split()) >= 4]
    first = lines[0] if lines else (text or "").strip()
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"
