"""Readers: JSONL, CSV, Parquet, RSS/Atom feeds, or a folder of .html/.txt files → :class:`Article` or
:class:`Problem`.

Every record read comes out either as an Article or as a Problem naming file, line and field, so
the caller can account for each one (articles read = stored + reported).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .article import FIELDS, Article, normalize_published, published_text, web_url
from .errors import HINT_FIX, Problem
from .language import LANG_HINT, language_tag

DEFAULT_MAX_TEXT_BYTES = 5_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")
#: control characters an id may not hold (it becomes a path segment, a file name, a database key)
_ID_CONTROL = re.compile("[\x00-\x1f\x7f]")
#: the longest id accepted
MAX_ID_CHARS = 512
_TEXT_SUFFIXES = {".html", ".htm", ".txt"}
_DATA_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".rss", ".atom"}
#: RSS and Atom feeds; ``.xml`` only when named, as a folder's ``.xml`` files are often something else (a sitemap)
_FEED_SUFFIXES = {".rss", ".atom", ".xml"}
#: data files that may come gzip-compressed (``archive.jsonl.gz``, ``feed.xml.gz``): read as they are decompressed
_GZIP_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".rss", ".atom", ".xml"}
#: the byte order mark some Windows tools write at the start of a UTF-8 file: not part of the first record
BOM = b"\xef\xbb\xbf"


def _suffix(p: Path) -> tuple[str, bool]:
    """A file's format suffix, and whether it is gzip-compressed (``a.jsonl.gz`` → ``.jsonl``, True)."""
    suffix = p.suffix.lower()
    if suffix == ".gz" and (inner := Path(p.stem).suffix.lower()) in _GZIP_SUFFIXES:
        return inner, True
    return suffix, False

Record = Article | Problem


#: where a record's publication date may be, first found wins (feeds, CMS exports and schema.org use these)
DATE_FIELDS = ("published", "date", "published_at", "publishedAt", "pubDate", "datePublished", "pub_date",
               "publication_date", "dateCreated")
_KNOWN = frozenset((*FIELDS, *DATE_FIELDS))


#: a path that was a web address (``https://x/feed`` as a path: ``https:/x/feed``)
_WEB_ADDRESS = re.compile(r"^(https?):/+(?=[^/])", re.IGNORECASE)

#: the path that names standard input (``storycluster add -``), and the name its problems give
STDIN, STDIN_NAME = "-", "<stdin>"


def read_paths(paths: Iterable[str | Path | tuple[Path, str]], max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
               notices: list[str] | None = None) -> Iterator[Record]:
    """Read every path in turn: a .jsonl/.ndjson/.csv/.parquet file, an RSS/Atom feed, an .html/.txt file, or a
    folder of them; a ``(path, name)`` pair is read as ``path`` and named ``name`` in messages (a copy of
    standard input).
    ``notices``: gets one line per file whose records hold fields storycluster does not read."""
    for path in paths:
        if isinstance(path, tuple):
            yield from read_path(path[0], max_text_bytes, notices, name=path[1])
        else:
            yield from read_path(path, max_text_bytes, notices)


def spool_stdin(stream=None) -> Path:
    """Standard input (or ``stream``, bytes) copied to a temporary file, so that it can be read twice (checked in
    full, then added): ``.json`` (one array of records, or JSON lines), ``.json.gz`` when it is gzipped, ``.xml``
    when it starts with markup (an RSS or Atom feed: ``curl -s URL | storycluster add -``). The caller removes
    the file."""
    import shutil
    import sys
    import tempfile

    source = stream if stream is not None else sys.stdin.buffer
    head = source.read(512)
    suffix = (".json.gz" if head.startswith(b"\x1f\x8b") else ".xml" if head.removeprefix(BOM).lstrip().startswith(b"<")
              else ".json")
    with tempfile.NamedTemporaryFile("wb", prefix="storycluster-stdin-", delete=False, suffix=suffix) as out:
        out.write(head)
        shutil.copyfileobj(source, out, 1 << 20)
    return Path(out.name)


def read_path(path: str | Path, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
              notices: list[str] | None = None, name: str | None = None) -> Iterator[Record]:
    """Read one path; the format follows from the suffix (or folder). ``name``: the path's name in messages."""
    p = Path(path)
    if p.is_dir():
        yield from _read_folder(p, max_text_bytes, notices)
        return
    where = name or str(p)
    suffix, gzipped = _suffix(p)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the reader below
    except OSError as e:
        if _WEB_ADDRESS.match(where):  # a path collapses "https://" to "https:/"
            url = _WEB_ADDRESS.sub(lambda m: m.group(1) + "://", where, count=1)
            yield Problem(url, None, None, "a web address: storycluster reads files and fetches nothing",
                          f"download it first, e.g. curl -s '{url}' | storycluster add -")
        else:
            yield Problem(where, None, None, f"cannot read: {e.strerror or e}", "check the path and permissions")
        return
    with fh:
        if gzipped:
            import gzip

            with gzip.open(fh) as unzipped:
                rows = (_read_feed(unzipped, where, notices) if suffix in _FEED_SUFFIXES
                        else _read_data(unzipped, where, suffix))
                yield from _unzipped(_validated(rows, where, max_text_bytes, notices), where)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            yield from _validated(_read_data(fh, where, suffix), where, max_text_bytes, notices)
        elif suffix == ".parquet":
            unknown: dict[str, int] = {}  # filled from the file's schema: its columns are not read at all
            yield from _validated(_read_parquet(fh, where, unknown), where, max_text_bytes, notices, unknown)
        elif suffix in (".csv", ".tsv"):
            yield from _validated(_read_csv(fh, where, "\t" if suffix == ".tsv" else ","), where, max_text_bytes, notices)
        elif suffix in _FEED_SUFFIXES:
            yield from _validated(_read_feed(fh, where, notices), where, max_text_bytes, notices)
        elif suffix in _TEXT_SUFFIXES:
            yield from _validated(_read_text_file(fh.read(), p, p.stem), where, max_text_bytes)
        else:
            yield Problem(where, None, None, f"unknown file type '{suffix or '(none)'}'",
                          "use .jsonl, .csv, .parquet, an RSS or Atom feed (.rss, .atom, .xml), .html, .txt (JSONL, "
                          "CSV and feeds also as .gz) or a folder of them")


def _read_feed(fh, path: str, notices: list[str] | None) -> Iterator[tuple[int, dict | Problem]]:
    """The items of an RSS or Atom feed (a decompressed one too: read when the first is asked for)."""
    from .feeds import read_feed

    yield from read_feed(fh.read(), path, notices)


def _read_data(fh, path: str, suffix: str) -> Iterator[tuple[int, dict | Problem]]:
    """Records of a JSONL or CSV/TSV stream (a decompressed one)."""
    if suffix in (".csv", ".tsv"):
        return _read_csv(fh, path, "\t" if suffix == ".tsv" else ",")
    if suffix == ".json":
        return _read_json(fh, path)
    return _read_jsonl(fh, path)


def _read_json(fh, path: str) -> Iterator[tuple[int, dict | Problem]]:
    """A .json file: one array of records (each numbered by its place in the array, from 1, where a line
    number would be), one record written over several lines, or JSON lines."""
    if not fh.peek(64)[:64].removeprefix(BOM).lstrip().startswith(b"["):
        first = fh.readline()
        if _one_json_line(first):
            yield from _read_jsonl(itertools.chain([first], fh), path)
            return
        obj = _whole_json(first + fh.read(), path)  # "{" alone, or an object cut across lines: one record
        if isinstance(obj, Problem):
            yield 0, obj
        elif not isinstance(obj, dict):
            yield 0, Problem(path, None, None, f"expected a JSON object or array, got {type(obj).__name__}", HINT_FIX)
        else:
            yield 1, _wrapped_list(obj, path, None) or obj
        return
    rows = _whole_json(fh.read(), path)
    if isinstance(rows, Problem):
        yield 0, rows
        return
    for n, row in enumerate(rows, start=1):
        yield n, row if isinstance(row, dict) else Problem(path, n, None, f"record {n} of the array: expected a JSON "
                                                                          f"object, got {type(row).__name__}", HINT_FIX)


def _whole_json(raw: bytes, path: str) -> Any:
    """A whole .json file's value, or the Problem that stops it being read."""
    text = _decode(raw.removeprefix(BOM), path, None)
    if isinstance(text, Problem):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return Problem(path, e.lineno, None, _json_error(e),
                       "a .json file holds one array of article objects, one article object, or one object per line")
    except RecursionError:
        return Problem(path, None, None, "JSON nested too deeply to read", HINT_FIX)


def _one_json_line(line: bytes) -> bool:
    """Whether a file's first line is a whole JSON value, as JSON lines start (or is blank, or not an object)."""
    text = line.removeprefix(BOM).strip()
    if not text.startswith(b"{"):
        return True
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _wrapped_list(obj: dict, path: str, line: int | None) -> Problem | None:
    """The problem with an object that holds a list of records under a key (an API's ``{"articles": [...]}``)
    instead of being one, else None."""
    if {"id", "text"} & obj.keys():
        return None
    key = next((k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)), None)
    if key is None:
        return None
    n = len(obj[key])
    return Problem(path, line, None, f"an object that holds a list of {n} object{'s' if n != 1 else ''} under "
                                     f"'{key}', not an article",
                   f"pipe the list itself, e.g. ... | jq -c '.{key}[]' | storycluster add -" if path == STDIN_NAME
                   else f"give the list itself, e.g. jq -c '.{key}[]' {Path(path).name} > articles.jsonl")


def _json_error(e: json.JSONDecodeError) -> str:
    return f"invalid JSON ({e.msg.removesuffix(' at')} at column {e.colno})"


def _unzipped(records: Iterator[Record], path: str) -> Iterator[Record]:
    """``records`` as read so far, then a problem if the compressed stream is damaged or cut short."""
    import zlib

    try:
        yield from records
    except (OSError, EOFError, zlib.error) as e:
        yield Problem(path, None, None, f"not a readable gzip file ({e})", "check the file, e.g. gzip -t")


def _decode(raw: bytes, path: str, line: int | None) -> str | Problem:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Problem(path, line, None, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})",
                       "re-encode the file as UTF-8, e.g. iconv -f cp1256 -t utf-8")


#: a charset an HTML page declares in a <meta> tag, within its first 1,024 bytes (as browsers look for it)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([a-z0-9_.:-]+)", re.IGNORECASE)
#: labels browsers read as another encoding (WHATWG): Latin-1 and ASCII as windows-1252; a UTF-16 label in a
#: <meta> that could be read as ASCII is not true, the page is UTF-8
_CHARSET_AS = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252",
               "us-ascii": "cp1252", "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8"}


def _decode_html(raw: bytes, path: str) -> str | Problem:
    """An HTML page's text in the encoding it states: a byte order mark (UTF-8, UTF-16), else the charset of its
    <meta> tag (windows-1256, for one, on older Arabic sites), else UTF-8. Never a guess: bytes that are not
    valid in that encoding are a problem to report."""
    import codecs

    for bom, codec in ((BOM, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            return _decoded(raw[len(bom):], codec, path, "its byte order mark says")
    if (m := _META_CHARSET.search(raw[:1024])) is None:
        return _decode(raw, path, None)
    label = m.group(1).decode("ascii").lower()
    try:
        codec = codecs.lookup(_CHARSET_AS.get(label, label)).name
    except LookupError:
        return Problem(path, None, None, f"declares charset '{label}', which is not a known encoding",
                       "correct its <meta charset>, or re-encode the file as UTF-8")
    return _decoded(raw, codec, path, f"its <meta> declares {label}")


def _decoded(raw: bytes, codec: str, path: str, why: str) -> str | Problem:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as e:
        return Problem(path, None, None, f"not valid {codec} ({why}): byte 0x{raw[e.start]:02x} at offset {e.start}",
                       "correct the declared charset, or re-encode the file as UTF-8")


def _read_jsonl(fh: Iterable[bytes], path: str) -> Iterator[tuple[int, dict | Problem]]:
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1:
            raw = raw.removeprefix(BOM)
        if not raw.strip():
            continue
        text = _decode(raw, path, lineno)
        if isinstance(text, Problem):
            yield lineno, text
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield lineno, Problem(path, lineno, None, _json_error(e), HINT_FIX)
            continue
        except RecursionError:
            yield lineno, Problem(path, lineno, None, "JSON nested too deeply to read", HINT_FIX)
            continue
        if not isinstance(obj, dict):
            yield lineno, Problem(path, lineno, None, f"expected a JSON object, got {type(obj).__name__}",
                                  HINT_FIX)
            continue
        yield lineno, _wrapped_list(obj, path, lineno) or obj


def _read_parquet(fh: io.BufferedReader, path: str, unknown: dict[str, int],
                  batch_rows: int = 4096) -> Iterator[tuple[int, dict | Problem]]:
    """Rows of a Parquet file (pyarrow, installed with the ``dist`` extra) with the JSONL fields as columns (a
    date's other names among them); the row number (from 1) stands in for the line. The columns it does not read
    go into ``unknown`` (column → rows), for the file's notice."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        yield 0, Problem(path, None, None, "reading Parquet needs pyarrow", "pip install 'storycluster[dist]'")
        return
    try:
        pf = pq.ParquetFile(fh)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        yield 0, Problem(path, None, None, f"not a readable Parquet file ({e})", "check the file")
        return
    columns = [c for c in pf.schema_arrow.names if c in _KNOWN]
    unknown.update((c, pf.metadata.num_rows) for c in pf.schema_arrow.names if c not in _KNOWN)
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def _read_csv(fh: io.BufferedReader, path: str, delimiter: str) -> Iterator[tuple[int, dict | Problem]]:
    bad_lines: dict[int, Problem] = {}

    def lines() -> Iterator[str]:
        for lineno, raw in enumerate(fh, start=1):
            text = _decode(raw, path, lineno)
            if isinstance(text, Problem):
                bad_lines[lineno] = text
                text = raw.decode("utf-8", errors="replace")
            yield text

    source = lines()
    first = next(source, None)
    if first is None:
        return
    if delimiter == "," and "," not in first:  # a semicolon- or tab-separated export named .csv
        counts = {d: first.count(d) for d in (";", "\t", "|")}
        delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) else delimiter
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))  # long texts: the text limit is checked later
    # strict: a quote left open is an error, not a field that swallows the rest of the file
    reader = csv.reader(itertools.chain([first], source), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        yield 1, Problem(path, 1, None, f"invalid CSV header ({e})", "the first line must name the columns")
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    twice = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in ("id", "text") if c not in header]
    if twice or missing:
        what = (f"the header names {', '.join(repr(h) for h in twice)} twice" if twice
                else f"no {' or '.join(repr(c) for c in missing)} column in the header "
                     f"({', '.join(repr(h) for h in header[:8])})")
        yield 1, Problem(path, 1, None, what, "the first line must name each column once, among them id and text")
        return
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                yield start, Problem(path, start, None, "a quoted field is not closed before the end of the file",
                                     'close the quote; write a quote inside a quoted field twice: ""')
                return
            yield start, Problem(path, start, None, f"invalid CSV ({e})",
                                 'a quoted field ends at its closing quote; write a quote inside it twice: ""')
            start = reader.line_num + 1
            continue
        end = reader.line_num
        bad = next((bad_lines[n] for n in range(start, end + 1) if n in bad_lines), None)
        if bad is not None:
            yield start, bad
        elif len(row) > len(header):
            yield start, Problem(path, start, None, f"{len(row)} columns where the header has {len(header)}",
                                 "quote fields that contain the delimiter")
        elif any(cell.strip() for cell in row):  # short rows: missing trailing columns are empty
            yield start, {k: (v if v != "" else None) for k, v in zip(header, row + [""] * (len(header) - len(row)),
                                                                     strict=True)}
        start = end + 1


def _read_folder(folder: Path, max_text_bytes: int, notices: list[str] | None = None) -> Iterator[Record]:
    """Every .html/.htm/.txt file below ``folder`` (id: its path there, without the extension) and every data file
    (.jsonl, .csv, ...: their own ids). A symbolic link that leads out of the folder is not followed: reported."""
    root = folder.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # symbolic links to folders are not descended into
        here = Path(dirpath)
        found += [here / n for n in dirnames if (here / n).is_symlink()]
        found += [here / n for n in filenames]
    files, data = [], []
    for f in sorted(found):
        if f.is_symlink() and not f.resolve().is_relative_to(root):
            yield Problem(str(f), None, None, "a symbolic link out of the folder; not followed",
                          "copy the file into the folder to add it")
            continue
        if not f.is_file():
            continue
        suffix, _ = _suffix(f)
        if suffix in _TEXT_SUFFIXES:
            files.append(f)
        elif suffix in _DATA_SUFFIXES:  # gzipped too (a.jsonl.gz), but no .xml: a folder's are often sitemaps
            data.append(f)
    if not files and not data:
        yield Problem(str(folder), None, None, "no .html, .htm, .txt, .jsonl, .csv, .parquet, .rss or .atom files "
                      "in this folder", "point at a folder of articles or at a .jsonl/.csv file")
    for f in data:
        yield from read_path(f, max_text_bytes, notices)
    for f in files:
        try:
            raw = f.read_bytes()
        except OSError as e:
            yield Problem(str(f), None, None, f"cannot read: {e.strerror or e}", "check permissions")
            continue
        doc_id = f.relative_to(folder).with_suffix("").as_posix()
        yield from _validated(_read_text_file(raw, f, doc_id), str(f), max_text_bytes)


def _read_text_file(raw: bytes, path: Path, doc_id: str) -> Iterator[tuple[int, dict | Problem]]:
    html = path.suffix.lower() in (".html", ".htm")
    text = _decode_html(raw, str(path)) if html else _decode(raw.removeprefix(BOM), str(path), None)
    if isinstance(text, Problem):
        yield 1, text
        return
    if html:
        yield 1, {"id": doc_id, **html_to_record(text)}
        return
    lines = text.strip().split("\n", 1)
    yield 1, {"id": doc_id, "title": lines[0].strip(), "text": text.strip()}


def html_to_record(html: str) -> dict:
    """Main text and metadata of an HTML page, extracted with trafilatura (boilerplate and menus dropped)."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False, favor_recall=True)
    if doc is None:
        return {"title": None, "text": None}
    d = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    # the page's own address when it states an absolute http(s) one (a relative canonical link says nothing)
    return {"title": d.get("title"), "text": d.get("text"), "url": web_url(d.get("url")), "source": d.get("sitename"),
            "published": d.get("date"), "lang": d.get("language")}


def _validated(rows: Iterator[tuple[int, dict | Problem]], path: str, max_text_bytes: int,
               notices: list[str] | None = None, unknown: dict[str, int] | None = None) -> Iterator[Record]:
    """Each row as an Article or a Problem (a duplicate id too); then the file's notice of fields not read
    (``unknown``: those a reader found without passing them on, counted with those in the rows)."""
    seen: dict[str, tuple[int, str]] = {}  # id → (its first line, its record hash)
    unknown = {} if unknown is None else unknown
    empty = True
    for lineno, row in rows:
        empty = False
        if isinstance(row, Problem):
            yield row
            continue
        count_unknown_fields(row, unknown)
        result = to_article(row, path, lineno, max_text_bytes)
        if isinstance(result, Article):
            digest = result.record_hash()
            first = seen.get(result.id)
            if first is None:
                seen[result.id] = (lineno, digest)
            elif first[1] != digest:  # the same record again is the writer's to count, as a repeat
                result = Problem(path, lineno, "id", f"duplicate id '{result.id}' (first on line {first[0]})",
                                 "ids must be unique within a file (a record repeated field for field is stored once)")
        yield result
    if empty:
        yield Problem(path, None, None, "no records in this file", "check that it is the file you meant")
    if unknown and notices is not None:
        notices.append(fields_not_read(path, unknown))


OBJECTS_HINT = "give each article as its fields (id, title, text, ...) or as a storycluster.Article"


def from_objects(items: Iterable, notices: list[str] | None = None, where: str = "records",
                 hint: str = OBJECTS_HINT) -> Iterator[Record]:
    """Records of a Python iterable: :class:`Article` objects as they are, dicts (the JSONL fields) validated
    as a file's records are, anything else a problem (with ``hint``); ``where[i]`` names the item in messages. The fields no
    record read are named in ``notices`` once the iterable is spent."""
    unknown: dict[str, int] = {}
    for n, item in enumerate(items):
        if isinstance(item, Article | Problem):
            yield item
        elif isinstance(item, Mapping):
            count_unknown_fields(item, unknown)
            yield to_article(dict(item), f"{where}[{n}]")
        else:
            yield Problem(f"{where}[{n}]", None, None,
                          f"expected an article: an object (dict) of its fields, got {type(item).__name__}", hint)
    if unknown and notices is not None:
        notices.append(fields_not_read(where, unknown))


def count_unknown_fields(row: Mapping, unknown: dict[str, int]) -> None:
    """Count the fields of ``row`` that storycluster does not read (into ``unknown``: field → records)."""
    for key in row:
        if key not in _KNOWN:
            unknown[key] = unknown.get(key, 0) + 1


def fields_not_read(where: str, unknown: dict[str, int]) -> str:
    """The notice that names the fields of ``where``'s records that were not read (the first 12)."""
    listed = ", ".join(f"'{k}' ({n} record{'s' if n != 1 else ''})" for k, n in sorted(unknown.items())[:12])
    more = f" and {len(unknown) - 12} more" if len(unknown) > 12 else ""
    return (f"{where}: fields not read: {listed}{more}; storycluster reads {', '.join(FIELDS)} "
            f"(dates also from {', '.join(DATE_FIELDS[1:])})")


def _as_text(field: str, value: object) -> str:
    """A field's value given as something other than text, as its text: an integer id as its digits, a date as
    ISO-8601 (:func:`published_text`: a number is Unix time); TypeError for any other value."""
    if field == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if field == "published":
        return published_text(value)
    raise TypeError(type(value).__name__)


def to_article(row: dict, path: str = "<input>", line: int | None = None,
               max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> Article | Problem:
    """Validate one record (a dict with the JSONL fields) into an Article, or say what is wrong with it."""

    def bad(field: str, message: str, hint: str = HINT_FIX) -> Problem:
        return Problem(path, line, field, message, hint)

    values: dict[str, str | None] = {}
    date_field = next((f for f in DATE_FIELDS if row.get(f) not in (None, "")), "published")
    for field in FIELDS:
        name = date_field if field == "published" else field  # the record's own name for the field
        v = row.get(name)
        if v is not None and not isinstance(v, str):
            try:
                v = _as_text(field, v)
            except ValueError as e:
                return bad(name, str(e), "give ISO-8601 text, e.g. 2024-09-15T08:30:00Z, or a Unix time")
            except TypeError:
                return bad(name, f"expected a string, got {type(v).__name__}")
        lone = _SURROGATE.search(v) if isinstance(v, str) else None  # a JSON "\ud800" escape: not UTF-8 text
        if lone:
            return bad(name, f"holds a lone surrogate escape (\\u{ord(lone.group()):04x}), not text")
        if isinstance(v, str) and "\x00" in v:  # a JSON "\u0000": no text holds one, and databases refuse it
            return bad(name, "holds a NUL character (\\u0000), not text")
        values[field] = v
    if not (values["id"] or "").strip():
        return bad("id", "missing or empty", "every article needs a unique id")
    if control := _ID_CONTROL.search(values["id"] or ""):
        return bad("id", f"holds a control character (\\x{ord(control.group()):02x})",
                   "ids are printable text: they become URL path segments and database keys")
    if len((values["id"] or "").strip()) > MAX_ID_CHARS:
        return bad("id", f"{len((values['id'] or '').strip())} characters, over the {MAX_ID_CHARS}-character limit",
                   "use a shorter id (a URL's path, or a hash of it)")
    text = values["text"] or ""
    if not text.strip():
        others = [k for k, v in row.items() if k not in _KNOWN and isinstance(v, str) and v.strip()]
        named = f"; its other fields: {', '.join(repr(k) for k in others[:6])}" if others else ""
        return bad("text", "missing or empty", f"every article needs its body text in 'text'{named}")
    size = len(text.encode("utf-8"))
    if size > max_text_bytes:
        return bad("text", f"{size / 1e6:.1f} MB, over the {max_text_bytes / 1e6:.1f} MB limit",
                   "split the article, or raise the limit with --max-text-mb")
    try:
        values["published"] = normalize_published(values["published"])
    except ValueError:
        return bad(date_field, f"not an ISO-8601 or RFC 2822 date: {values['published']!r}",
                   "use e.g. 2024-09-15T08:30:00Z")
    url, given = None, values["url"] or ""
    if given.strip():
        url = web_url(given)
        if url is None:
            return bad("url", f"not an http(s) address: {given[:80]!r}",
                       "give an absolute http:// or https:// URL, or leave url out")
    try:
        lang = language_tag(values["lang"])
    except ValueError as e:
        return bad("lang", str(e), LANG_HINT)
    return Article(id=(values["id"] or "").strip(), title=(values["title"] or "").strip(), text=text,
                   url=url, source=(values["source"] or "").strip() or None,
                   published=values["published"], lang=lang,
                   origin=f"{path}:{line}" if line is not None else path)
