"""RSS and Atom feeds → records (the fields a JSONL line has), one per item, with the line its item starts on.

A feed is what a newsroom or an aggregator has first: a channel of items, each with a guid, a link, a title, a
description (often HTML) and a date. feedparser reads every RSS and Atom version, in the encoding the file
declares, and never fetches anything (it is given bytes, and external entities are not resolved).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from urllib.parse import urljoin

from .article import normalize_published, web_url
from .errors import Problem
from .language import language_tag

#: where an item or entry starts (``<item>``, ``<entry xml:lang="fr">``, ``<rss:item>``): its line in messages
_ITEM_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")
#: elements whose end is a line break in the text (paragraphs stay lines: boilerplate is found per line)
_BLOCKS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "section", "article",
           "figcaption", "pre", "ul", "ol", "table", "hr")
FEED_HINT = "give an RSS or Atom feed file, or the articles as .jsonl/.csv"


def read_feed(raw: bytes, path: str, notices: list[str] | None = None) -> Iterator[tuple[int, dict | Problem]]:
    """Each item of the feed ``raw`` as ``(line, record)``: ``id`` (the guid or Atom id, else the link),
    ``title``, ``text`` (the full content if the item has it, else its description, as text; the title when it
    has neither), ``url`` (the link), ``source`` (the item's own ``<source>``, else the channel's title),
    ``published`` (the item's date, else its update date) and ``lang`` (the item's ``xml:lang``, else the
    channel's ``<language>``). A file that holds no feed is one problem; a feed that is not well-formed XML but
    still yields items is read, with a notice saying so."""
    import feedparser

    parsed = feedparser.parse(io.BytesIO(raw), sanitize_html=True, resolve_relative_uris=True)
    entries = parsed.get("entries") or []
    if not entries:
        why = (f"not an RSS or Atom feed ({_reason(raw, parsed)})" if not parsed.get("version") and parsed.get("bozo")
               else "not an RSS or Atom feed" if not parsed.get("version") else "a feed with no items")
        yield 1, Problem(path, None, None, why, FEED_HINT)
        return
    if parsed.get("bozo") and notices is not None:
        items = "its 1 item was" if len(entries) == 1 else f"its {len(entries)} items were"
        notices.append(f"{path}: not well-formed XML ({_reason(raw, parsed)}); {items} read leniently: check them")
    channel = parsed.get("feed") or {}
    starts = _item_lines(raw)
    if len(starts) != len(entries):  # items the pattern does not see: number them instead
        starts = list(range(1, len(entries) + 1))
    unread: dict[str, int] = {}  # languages that are no language tag → items
    for line, entry in zip(starts, entries, strict=True):
        if not (entry.get("id") or entry.get("link")):
            yield line, Problem(path, line, "guid", "the item has no guid, id or link",
                                "storycluster takes one of them as the article's id")
            continue
        record = _record(entry, channel)
        if record["lang"] is not None and not _is_language(record["lang"]):
            unread[record["lang"]] = unread.get(record["lang"], 0) + 1
            record["lang"] = None  # detected from the text, as for an item that names none
        yield line, record
    if unread and notices is not None:
        named = ", ".join(f"{value[:40]!r} ({n} item{'s' if n != 1 else ''})" for value, n in sorted(unread.items()))
        notices.append(f"{path}: language not read, not a language tag: {named}; those items' languages are "
                       "detected from their text")


def _item_lines(raw: bytes) -> list[int]:
    """The line each item starts on, counting the line breaks between one start and the next (one pass)."""
    lines, line, at = [], 1, 0
    for m in _ITEM_START.finditer(raw):
        line += raw.count(b"\n", at, m.start())
        at = m.start()
        lines.append(line)
    return lines


def _is_language(value: str) -> bool:
    """Whether a feed's language (RSS ``<language>``, ``xml:lang``) is a language tag storycluster reads. A feed's
    reader cannot mend its channel, so one that is not ("English") is detected instead, with a notice, rather
    than making every item a bad record as a JSONL ``lang`` would."""
    try:
        language_tag(value)
    except ValueError:
        return False
    return True


def _reason(raw: bytes, parsed) -> str:
    """Why the file is not well-formed XML, in one line ("line 2, column 0: syntax error"), as expat reads the
    file itself: feedparser's own position counts in the document it rewrote (a declaration added in front)."""
    from xml.parsers import expat

    try:
        expat.ParserCreate().Parse(raw, True)  # no handlers: external entities are not loaded
    except expat.ExpatError as e:
        return f"line {e.lineno}, column {e.offset}: {expat.errors.messages[e.code]}"
    error = parsed.get("bozo_exception")
    if error is None:
        return "unreadable"
    text = error.getMessage() if hasattr(error, "getMessage") else str(error)
    return (text.strip() or type(error).__name__).splitlines()[0][:200]


def _record(entry, channel) -> dict:
    title = _text(entry.get("title"), entry.get("title_detail"))
    content = next((c for c in entry.get("content") or [] if (c.get("value") or "").strip()), None)
    body = (_text(content.get("value"), content) if content is not None
            else _text(entry.get("summary"), entry.get("summary_detail")))
    source = entry.get("source") or {}
    link = entry.get("link")
    if entry.get("guidislink") and not web_url(link):  # an RSS guid read as a permalink, and it is none
        link = None
    elif link and not web_url(link) and (home := web_url(channel.get("link"))):  # a link relative to the site
        link = urljoin(home, link)
    detail = content or entry.get("summary_detail") or entry.get("title_detail") or {}
    return {"id": entry.get("id") or entry.get("link"), "title": title, "text": body or title,
            "url": link, "source": (source.get("title") or channel.get("title") or "").strip() or None,
            "published": _date(entry), "lang": detail.get("language") or channel.get("language")}


def _date(entry) -> str | None:
    """The item's date as written when storycluster reads it (ISO-8601, RFC 2822), else as feedparser read it
    (in UTC); as written when neither can, so that the record names the date it could not read."""
    for key in ("published", "updated"):
        given = entry.get(key)
        if not given:
            continue
        try:
            return normalize_published(given)
        except ValueError:
            when = entry.get(f"{key}_parsed")
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", when) if when else given
    return None


def _text(value: str | None, detail) -> str:
    """A feed field as plain text: HTML (what feedparser says the field holds) with its paragraphs as lines."""
    if not value:
        return ""
    if "html" not in ((detail or {}).get("type") or "text/html"):
        return value.strip()
    return html_fragment_text(value)


def html_fragment_text(markup: str) -> str:
    """The text of an HTML fragment (a feed item's description): scripts and styles dropped, each paragraph, list
    item or line break a line of its own, spaces within a line collapsed."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(markup.split())
    for dropped in root.xpath("//script|//style"):
        dropped.drop_tree()
    for element in root.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().split("\n"))
    return "\n".join(line for line in lines if line)
