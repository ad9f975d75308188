"""The ``storycluster`` command: parse options, call :class:`storycluster.Archive`, print.

Exit codes: 0 ok, 1 runtime error (message on stderr), 2 usage error."""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find duplicate and related news stories across languages.",
                  context_settings={"help_option_names": ["-h", "--help"]})


def _help_type(param: object, ctx: object) -> str | None:
    """The help's type column: nothing for a flag (typer writes <bool>), the metavar of a named argument (typer
    writes <list[Path]> for PATH...), typer's own label otherwise (<path>, <int range>, the choices)."""
    if getattr(param, "is_flag", False):
        return None
    label = typer.core.TyperOption.display_type(param, ctx)  # type: ignore[arg-type]
    return re.sub(r"<list\[(\w+)\]>", lambda m: f"<{m[1].lower()}>...", label) if label else label


typer.core.TyperOption.display_type_rich = _help_type  # type: ignore[method-assign,assignment]
typer.core.TyperArgument.display_type_rich = _help_type  # type: ignore[method-assign,assignment]

def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"storycluster {__version__}")
        raise typer.Exit()


@app.callback()
def _options(ctx: typer.Context,
             version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="Print the version and exit.")] = False,
             store: Annotated[Path | None, typer.Option(
                 "--store", help="Store folder for every command (as each command's own --store, which wins).",
                 show_default=False)] = None) -> None:
    """Find duplicate and related news stories across languages."""
    if store is not None:  # each command's --store reads it as its environment default (parsed after this)
        before = os.environ.get("STORYCLUSTER_STORE")
        os.environ["STORYCLUSTER_STORE"] = str(store)
        ctx.call_on_close(functools.partial(_restore_env, "STORYCLUSTER_STORE", before))


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


DEFAULT_STORE = "./storycluster-data"
StoreOpt = Annotated[Path, typer.Option("--store", envvar="STORYCLUSTER_STORE",
                                        help="Store folder (created by 'add').")]


class Format(StrEnum):
    text = "text"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


class OnError(StrEnum):
    fail = "fail"
    skip = "skip"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _reader_gone() -> NoReturn:
    """Exit 141, as a program stopped by SIGPIPE does, with no message: standard output goes to /dev/null first,
    so the interpreter's last flush of what was left does not fail again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise typer.Exit(141)


def command(fn: Callable) -> Callable:
    """Register a command whose library errors become one line on stderr and exit code 1 (no traceback)."""
    from .errors import StoryclusterError

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):  # click's own exits are RuntimeErrors too
            raise
        except (StoryclusterError, ValueError) as e:
            _fail(str(e))
        except BrokenPipeError:  # the reader stopped early (`| head`): no message, as a program SIGPIPE stops
            _reader_gone()
        except OSError as e:  # a full disk, a permission, a path gone: the file and the reason, one line
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}")
        except sqlite3.OperationalError as e:  # e.g. "database or disk is full"
            _fail(f"the store database: {e}")
        except RuntimeError as e:  # FAISS reports what it cannot do (write a file, allocate) as RuntimeError
            first = next((x.strip() for x in str(e).splitlines() if x.strip()), type(e).__name__)
            _fail(f"the vector index: {first[:300]}")
        except MemoryError:
            _fail("out of memory; close other programs, or use a machine with more memory for this archive")
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return app.command()(wrapper)


class _CsvCells:
    """A CSV writer on stdout whose text cells cannot run as spreadsheet formulas: a cell from the input (an id, a
    headline, a source) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a plain
    number, is written with a leading apostrophe, as spreadsheets show typed text (``=HYPERLINK(...)`` in a
    headline would otherwise become a link, or run, in the reader's spreadsheet)."""

    def __init__(self) -> None:
        self._w = csv.writer(sys.stdout)

    def writerow(self, row: list) -> None:
        self._w.writerow([_inert(c) if isinstance(c, str) else c for c in row])


def _inert(cell: str) -> str:
    if not cell or cell[0] not in "=+-@\t\r":
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


def _output_target(path: Path) -> Path | None:
    """``--out``: a file that can be written (:func:`_output_file`), or None for ``-``, standard output."""
    return None if str(path) == "-" else _output_file(path)


def _output_file(path: Path) -> Path:
    """An output file path that can be written: not a folder, in a folder that exists (checked before any work)."""
    if path.is_dir():
        _fail(f"--out {path}: is a folder; give a file name, e.g. {path / 'out'}", 2)
    if not path.parent.is_dir():
        _fail(f"--out {path}: the folder {path.parent} does not exist; create it first", 2)
    return path


def _open(store: Path, model: str | None = None, create: bool = False):
    from .archive import Archive

    return Archive(store, model, create=create)


def _dump(obj: object) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def _formats(fmt: Format, command: str, *allowed: Format) -> None:
    """A usage error (exit 2, before any work) for a ``--format`` that ``command``'s output has no form in."""
    if fmt not in allowed:
        _fail(f"--format {fmt.value}: {command} writes {', '.join(f.value for f in allowed[:-1])} or "
              f"{allowed[-1].value}", 2)


def _one(obj: dict, fmt: Format) -> None:
    """One object as JSON: indented (json) or on one line (ndjson)."""
    if fmt is Format.ndjson:
        typer.echo(json.dumps(obj, ensure_ascii=False))
    else:
        _dump(obj)


@command
def add(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH",
                                                help="JSONL, CSV or Parquet files, RSS/Atom feeds, .html/.txt "
                                                     "files, or folders of them; '-': JSON lines (or a JSON array, "
                                                     "or a feed) on standard input.")],
    store: StoreOpt = Path(DEFAULT_STORE),
    model: Annotated[str | None, typer.Option(
        help="Embedding model for a new store: 'use-multilingual-v3' (default, bundled) or a "
             "sentence-transformers name or local path.")] = None,
    model_languages: Annotated[str | None, typer.Option(
        help="Languages the embedding model reads, for a new store, as ISO 639-1 codes ('en,de,fr') or 'all'; "
             "articles in others are grouped on lexical evidence only. Default: the bundled model's 16; every "
             "language for a sentence-transformers --model.")] = None,
    on_error: Annotated[OnError, typer.Option(
        "--on-error", help="fail: stop at the first bad record, store nothing. "
                           "skip: store the rest, report the bad ones.")] = OnError.fail,
    max_text_mb: Annotated[float, typer.Option(help="Largest article text accepted, in MB.")] = 5.0,
    window_days: Annotated[float | None, typer.Option(
        min=0, help="Dated articles further apart than this are never the same story (store setting; "
                    "default 7).")] = None,
    index: Annotated[str | None, typer.Option(
        "--index", help="Vector index: auto (exact under 20,000 articles, then IVF over 8-bit codes), flat, hnsw or ivf "
                        "(store setting; changing it rebuilds the index).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="The report: text (on stderr), json or ndjson "
                                                                "(one line) on stdout.")] = Format.text,
    json_report: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    chunked: Annotated[bool, typer.Option(
        "--chunked", help="Commit every 256 records instead of the whole add at once: a crash keeps what was "
                          "committed (a re-run skips it), but readers may see the add part by part, before its "
                          "grouping. For bulk loads nobody reads meanwhile.")] = False,
) -> None:
    """Add articles to the store; unchanged ones cost nothing, changed ones are re-embedded and regrouped."""
    from .archive import Archive
    from .embed import parse_languages
    from .ingest import STDIN, STDIN_NAME, spool_stdin

    _formats(fmt, "add", Format.text, Format.json, Format.ndjson)
    try:
        languages = parse_languages(model_languages)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    new_store = not store.exists()
    archive = Archive(store, model, create=True, index_type=index, model_languages=languages)
    if index is not None:
        archive.set_index(index)
    if window_days is not None:
        archive.set_thresholds(window_days=window_days)
    headline_words = archive.store.model.short_min_tokens  # for the note on headline-only articles
    progress, task, advance = _progress_bar("reading")

    def on_total(total: int) -> None:
        progress.update(task, total=total)
        if total >= 200:  # long work only
            progress.start()

    failed = True
    spooled = spool_stdin() if any(str(p) == STDIN for p in paths) else None
    inputs = [(spooled, STDIN_NAME) if spooled is not None and str(p) == STDIN else p for p in paths]
    try:
        report = archive.add_paths(inputs, on_error=on_error.value, max_text_bytes=int(max_text_mb * 1e6),
                                   progress=advance, on_total=on_total, atomic=not chunked,
                                   on_stage=lambda stage: progress.update(task, description=stage))
        failed = False
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
        if progress.live.is_started:
            progress.stop()
        empty = failed and new_store and archive.db.count() == 0
        archive.close()
        if empty:  # a first add that failed before storing anything leaves no empty store behind
            import shutil

            shutil.rmtree(store, ignore_errors=True)
    if fmt is not Format.text or json_report:
        _one(report.to_dict(), Format.json if json_report else fmt)
    else:
        stored = report.added + report.updated + report.unchanged
        repeated = f"{report.repeated} repeated, " if report.repeated else ""
        typer.echo(f"read {report.read} record{'s' if report.read != 1 else ''}: {report.added} added, "
                   f"{report.updated} updated, "
                   f"{report.unchanged} unchanged, {repeated}{report.skipped} skipped; {stored} stored "
                   f"({report.embedded} texts embedded, {report.seconds:.1f}s"
                   f"{f', {report.read / report.seconds:.1f} articles/s' if report.seconds > 0 else ''})",
                   err=True)
    for p in report.problems:
        typer.echo(f"skipped: {p.as_skipped()}", err=True)
    for line in report.notices:
        typer.echo(f"note: {line}", err=True)
    if report.refreshed and fmt is Format.text and not json_report:
        n = report.refreshed
        typer.echo(f"note: {n} stored {'article was' if n == 1 else 'articles were'} read again and regrouped: lines of "
                   "their outlet became boilerplate, or this version reads them differently", err=True)
    if report.headline_only:
        n = report.headline_only
        typer.echo(f"note: {n} {'article is' if n == 1 else 'articles are'} headline-only (under "
                   f"{headline_words} words): {'its' if n == 1 else 'their'} same-story verdicts "
                   "rest on a headline, which does not tell stories of one subject apart", err=True)
    if report.not_read:
        langs = ", ".join(f"{lang}: {n}" for lang, n in sorted(report.not_read.items()))
        n = sum(report.not_read.values())
        typer.echo(f"note: {n} {'article' if n == 1 else 'articles'} in languages the embedding model does not read "
                   f"({langs}) {'is' if n == 1 else 'are'} grouped on lexical evidence only (copies)", err=True)


@command
def remove(
    ids: Annotated[list[str], typer.Argument(metavar="ID", help="Article ids to remove.")],
    store: StoreOpt = Path(DEFAULT_STORE),
) -> None:
    """Remove articles from the store and regroup."""
    with _open(store) as archive:
        removed, missing = archive.remove(ids)
    typer.echo(f"removed {len(removed)} article(s)", err=True)
    if missing:
        _fail(f"not in the store: {', '.join(missing)}")


@command
def dedup(
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json, ndjson (one group per line) or csv.")]
    = Format.text,
    all_: Annotated[bool, typer.Option("--all", help="Also list singletons (json always has them).")] = False,
    changes_since: Annotated[str | None, typer.Option(
        help="Instead of the groups, what grouping changed since this ISO time (new, joined, left, split, "
             "merged, dissolved, removed), oldest first.")] = None,
    full_regroup: Annotated[bool, typer.Option(
        "--full-regroup", help="First regroup the whole store (adds regroup incrementally; this gives exactly the "
                               "groups of one full grouping of the stored articles).")] = False,
) -> None:
    """Duplicate groups: every stored article once, in a group of 2+ or as a singleton."""
    if full_regroup:
        with _open(store) as archive:
            archive.regroup(full=True)
    if changes_since is not None:
        with _open(store) as archive:
            changes = archive.changes(changes_since)
        if fmt is Format.json:
            _dump({"since": changes_since, "changes": changes})
        elif fmt is Format.ndjson:
            for c in changes:
                typer.echo(json.dumps(c, ensure_ascii=False))
        elif fmt is Format.csv:
            w = _CsvCells()
            w.writerow(["at", "change", "group", "other_groups", "articles"])
            for c in changes:  # lists as JSON (ids may hold commas and spaces)
                w.writerow([c["at"], c["change"], c["group"], json.dumps(c["other_groups"], ensure_ascii=False),
                            json.dumps(c["articles"], ensure_ascii=False)])
        else:
            for c in changes:
                other = f" → {', '.join(c['other_groups'])}" if c["change"] in ("split", "merged") else (
                    f" (from {', '.join(c['other_groups'])})" if c["other_groups"] else "")
                typer.echo(f"{c['at']}  {c['change']:<9} {c['group']}{other}: {', '.join(c['articles'])}")
            if not changes:
                typer.echo(f"no group changed since {changes_since}", err=True)
        return
    with _open(store) as archive:
        result = archive.dedup()
    if fmt is Format.json:
        _dump(result)
    elif fmt is Format.ndjson:
        for g in result["groups"]:
            typer.echo(json.dumps(g, ensure_ascii=False))
        if all_:
            for s in result["singletons"]:
                typer.echo(json.dumps({"group": None, "representative": s, "size": 1,
                                       "members": [{"id": s}]}, ensure_ascii=False))
    elif fmt is Format.csv:
        w = _CsvCells()
        w.writerow(["group", "id", "representative", "score", "tier", "via", "duplicate_of", "source", "published",
                    "title"])
        for g in result["groups"]:
            for m in g["members"]:
                w.writerow([g["group"], m["id"], m["id"] == g["representative"], m["score"], m["tier"], m["via"],
                            m["duplicate_of"] or "", m["source"] or "", m["published"] or "", m["title"]])
        if all_:
            for s in result["singletons"]:
                w.writerow(["", s, True, "", "", "", "", "", "", ""])
    else:
        groups = result["groups"]
        n_grouped = sum(g["size"] for g in groups)
        typer.echo(f"{len(groups)} groups ({n_grouped} articles), {len(result['singletons'])} singletons\n")
        for g in groups:
            typer.echo(f"group {g['group']} · {g['size']} articles")
            for m in g["members"]:
                mark = "*" if m["id"] == g["representative"] else " "
                copy = f" (copy of {m['duplicate_of']})" if m.get("duplicate_of") else (
                    " (via the group)" if m.get("via") == "group" else "")
                typer.echo(f"  {mark} {m['tier']:<10} {m['score']:.2f}  {m['id']}{copy}  {_meta(m)}")
                typer.echo(f"      {m['title']}")
            typer.echo("")
        if all_:
            typer.echo("singletons: " + ", ".join(result["singletons"]))


_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def _isolated(text: str) -> str:
    """Right-to-left text between Unicode isolation marks (FSI … PDI), so that a bidi terminal does not reorder
    the dates and punctuation around it."""
    return f"\u2068{text}\u2069" if _RTL.search(text) else text


def _meta(item: dict) -> str:
    parts = [_isolated(p) for p in (item.get("source"), item.get("published"), item.get("lang")) if p]
    return f"[{' · '.join(parts)}]" if parts else ""


@command
def related(
    article_id: Annotated[str | None, typer.Argument(metavar="ID", help="A stored article's id.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Find articles related to this text.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Find articles related to this file's text.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many entries.")] = 10,
    since: Annotated[str | None, typer.Option(help="Only articles published at or after this ISO date.")] = None,
    max_age_days: Annotated[float | None, typer.Option(min=0, help="Only articles published in the last N days.")]
    = None,
    past_only: Annotated[bool, typer.Option("--past-only", help="Nothing published after the article.")] = False,
    lang: Annotated[str | None, typer.Option(help="Only articles in this language (e.g. ar).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Article ids never to show (repeat or a,b).")] = None,
    exclude_source: Annotated[list[str] | None, typer.Option(help="Sources never to show (repeat or a,b).")]
    = None,
    per_source: Annotated[int | None, typer.Option(min=1, help="At most N entries per source.")] = None,
    diversity: Annotated[float, typer.Option(min=0.0, max=1.0, help="0 = by relevance; up to 1 = varied (MMR).")]
    = 0.0,
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json, ndjson (an entry a line) or csv.")]
    = Format.text,
) -> None:
    """Related articles; copies of one story collapse into one entry that lists the others."""
    from .ranking import RelatedOptions, parse_list

    try:
        options = RelatedOptions(since=since, max_age_days=max_age_days, past_only=past_only, lang=lang,
                                 exclude_ids=parse_list(exclude), exclude_sources=parse_list(exclude_source),
                                 per_source=per_source, diversity=diversity)
        options.earliest()
    except ValueError as e:
        _fail(str(e), 2)
    given = [x is not None for x in (article_id, text, file)]
    if sum(given) != 1:
        typer.echo("Error: give exactly one of ID, --text or --file", err=True)
        raise typer.Exit(2)
    if file is not None:
        try:
            text = file.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except OSError as e:
            _fail(f"--file {file}: cannot read: {e.strerror or e} (check the path)")
        except UnicodeDecodeError as e:
            _fail(f"--file {file}: not UTF-8 text ({e.reason} at byte {e.start}; save it as UTF-8)")
    if text is not None and not text.strip():
        _fail(f"{'--file ' + str(file) if file is not None else '--text'}: the text is empty; give an article's text", 2)
    with _open(store) as archive:
        title = ""
        if text is not None:
            title = text.strip().split("\n", 1)[0][:300]
        result = archive.related(article_id, text=text, title=title, k=k, options=options)
        query = archive.article(article_id) if article_id else None
    if fmt is Format.json:
        _dump(result)
        return
    if "note" in result and fmt is not Format.text:  # the entries alone on standard output
        typer.echo(f"note: {result['note']}", err=True)
    if fmt is Format.ndjson:
        for item in result["related"]:
            typer.echo(json.dumps(item, ensure_ascii=False))
        return
    if fmt is Format.csv:
        w = _CsvCells()
        w.writerow(["rank", "id", "score", "tier", "via", "group", "also_in", "source", "published", "lang", "title"])
        for n, item in enumerate(result["related"], start=1):
            w.writerow([n, item["id"], item["score"], item["tier"], item.get("via", "pair"), item["group"] or "",
                        json.dumps([o["id"] for o in item["also_in"]], ensure_ascii=False),  # ids may hold spaces
                        item["source"] or "", item["published"] or "",
                        item["lang"] or "", item["title"]])
        return
    if query:
        from .article import headline

        typer.echo(f"related to {query['id']}: {headline(query['title'], query['text'])}\n")
    for n, item in enumerate(result["related"], start=1):
        via = " (via its group)" if item.get("via") == "group" else ""
        typer.echo(f"{n:>2}. {item['score']:.2f} {item['tier']:<10} {item['id']}{via}  {_meta(item)}")
        typer.echo(f"    {item['title']}")
        if item["also_in"]:
            others = ", ".join(f"{o['id']} ({o['source']})" if o["source"] else o["id"] for o in item["also_in"])
            typer.echo(f"    also in {len(item['also_in'])} more: {others}")
    if not result["related"]:
        typer.echo("nothing related found")
    if "note" in result:
        typer.echo(f"note: {result['note']}")


@command
def compare(
    id1: Annotated[str, typer.Argument(metavar="ID1", help="First article id.")],
    id2: Annotated[str, typer.Argument(metavar="ID2", help="Second article id.")],
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="json (default), ndjson (one line) or text.")]
    = Format.json,
) -> None:
    """Similarity, tier and evidence for two stored articles (JSON unless --format says otherwise)."""
    _formats(fmt, "compare", Format.json, Format.ndjson, Format.text)
    with _open(store) as archive:
        r = archive.compare(id1, id2)
    if fmt is not Format.text:
        _one(r, fmt)
        return
    typer.echo(f"{r['id1']}  {r['id2']}  similarity {r['similarity']:.3f}  {r['tier']}")
    for name, value in r["evidence"].items():
        typer.echo(f"  {name:<18} {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
    if r.get("note"):
        typer.echo(f"note: {r['note']}")


@command
def eval(  # noqa: A001 - the command's name
    gold: Annotated[Path | None, typer.Argument(metavar="[GOLD.jsonl]",
                                                help="JSONL with 'id' and a label field, e.g. ECB+ articles.jsonl "
                                                     "(optional with --pairs).")] = None,
    label: Annotated[str, typer.Option(help="The gold label field.")] = "cluster_id",
    pairs: Annotated[Path | None, typer.Option(help="JSONL of rated pairs: id1, id2, score.")] = None,
    lower_is_similar: Annotated[bool, typer.Option(help="In --pairs, a lower score means more similar.")] = False,
    split: Annotated[float | None, typer.Option(help="In --pairs, human scores at or past this are positives "
                                                       "(for ROC AUC).")] = None,
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json or ndjson (one line).")] = Format.text,
) -> None:
    """Score the groups against gold labels (B-cubed, pairwise, ARI) and rated pairs (Pearson, ROC AUC, same_story)."""
    from .evaluate import read_labels, read_pairs

    _formats(fmt, "eval", Format.text, Format.json, Format.ndjson)
    if gold is None and pairs is None:
        _fail("eval needs GOLD.jsonl (labelled articles), --pairs rated.jsonl (rated pairs), or both", 2)
    labels = read_labels(gold, label) if gold is not None else None
    rated = read_pairs(pairs) if pairs else None
    with _open(store) as archive:
        r = archive.evaluate(labels, rated, lower_is_similar=lower_is_similar, split=split)
    if fmt is not Format.text:
        _one(r, fmt)
        return
    if "gold_items" in r:
        typer.echo(f"gold items   {r['gold_items']} ({r['evaluated']} in the store, {r['n_missing']} missing)")
    if "bcubed" in r:
        for name in ("bcubed", "pairwise"):
            m = r[name]
            typer.echo(f"{name:<12} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}")
        typer.echo(f"ARI          {r['adjusted_rand_index']:.3f}")
        typer.echo(f"groups       {r['groups']} + {r['singletons']} singletons "
                   f"(gold {r['gold_groups']} + {r['gold_singletons']})")
    if "pairs" in r:
        p = r["pairs"]
        typer.echo(f"pairs        {p['scored']} of {p['n']} scored; Pearson {_num(p['pearson'])}  "
                   f"Spearman {_num(p['spearman'])}" + (f"  ROC AUC {_num(p['roc_auc'])} (split {p['split']}, "
                                                        f"{p['positives']} positives)" if "roc_auc" in p else ""))
        if "same_story_positives" in p:
            typer.echo(f"same_story   on {_share(p['same_story_positives'])} of the positives, "
                       f"{_share(p['same_story_negatives'])} of the others")
        if p["pearson"] is None or p.get("roc_auc", 0.0) is None:
            typer.echo("note: '-' is a measure these pairs leave undefined: Pearson and Spearman need two scored "
                       "pairs with different ratings and different similarities, ROC AUC pairs on both sides of "
                       "--split")


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@command
def calibrate(
    gold: Annotated[Path, typer.Argument(metavar="GOLD.jsonl",
                                         help="JSONL with 'id' and a label field for articles in the store.")],
    label: Annotated[str, typer.Option(help="The gold label field.")] = "cluster_id",
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text (a summary), json (with every weight) or "
                                                                "ndjson (one line).")] = Format.text,
) -> None:
    """Refit the same-story model on your own labelled articles; saved in the store, used from then on."""
    from .evaluate import read_labels

    _formats(fmt, "calibrate", Format.text, Format.json, Format.ndjson)
    labels = read_labels(gold, label)
    with _open(store) as archive:
        r = archive.calibrate(labels, fitted_on=f"{gold.name} ({label})")
    if fmt is not Format.text:
        _one(r, fmt)
        return
    typer.echo(f"fitted on {r['labelled']} labelled articles of {gold.name} ({label}); regimes fitted: "
               f"{', '.join(r['regimes_fitted']) or 'none'}")
    f1 = r["in_sample"]
    typer.echo(f"group threshold {r['group_threshold']:.2f}, floor {r['group_floor']:.2f}"
               + (f"; B-cubed F1 on the labelled articles {f1['f1']:.3f} (in sample)" if f1 else ""))
    typer.echo(f"saved to {r['model']}: used from now on (weights: --format json; check with 'storycluster eval')")


@command
def score_pairs(
    pairs: Annotated[Path, typer.Argument(metavar="PAIRS.jsonl",
                                          help="JSONL with id1 and id2 per line (score optional).")],
    store: StoreOpt = Path(DEFAULT_STORE),
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json (one list), ndjson (one pair a line) "
                                                                "or csv (with the evidence's columns).")]
    = Format.text,
) -> None:
    """Similarity in [0, 1], tier and evidence for each pair of stored articles."""
    from .evaluate import read_id_pairs

    with _open(store) as archive:
        scored = archive.score_pairs(read_id_pairs(pairs))
    if fmt is Format.json:
        _dump([_pair_object(p) for p in scored])
        return
    w = _CsvCells() if fmt is Format.csv else None
    if w is not None:  # the evidence's columns: its keys, as compare shows them (every scored pair has the same)
        columns = next((list(p["evidence"]) for p in scored if p.get("evidence")), [])
        w.writerow(["id1", "id2", "similarity", "tier", "error", "note", *columns])
    for p in scored:
        if fmt is Format.ndjson:
            typer.echo(json.dumps(_pair_object(p), ensure_ascii=False))
        elif w is not None:
            evidence = p.get("evidence") or {}
            w.writerow([p["id1"], p["id2"], "" if p["similarity"] is None else p["similarity"], p["tier"] or "",
                        p.get("error") or "", p.get("note") or "", *(_cell(evidence.get(c)) for c in columns)])
        elif p["similarity"] is None:
            typer.echo(f"{p['id1']}\t{p['id2']}\t-\t{p['error']}")
        else:  # a note (a headline pair, a language the model does not read) as a fifth column
            note = f"\t{p['note']}" if p.get("note") else ""
            typer.echo(f"{p['id1']}\t{p['id2']}\t{p['similarity']:.3f}\t{p['tier']}{note}")


def _pair_object(p: dict) -> dict:
    return {k: v for k, v in p.items() if v is not None or k in ("similarity", "tier")}


def _cell(value: object) -> object:
    """A CSV cell: lists as JSON, None as empty."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value


@command
def stats(store: StoreOpt = Path(DEFAULT_STORE),
          fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json or ndjson (one line).")]
          = Format.text) -> None:
    """Counts, model, index type and sizes on disk."""
    _formats(fmt, "stats", Format.text, Format.json, Format.ndjson)
    with _open(store) as archive:
        s = archive.stats()
    if fmt is not Format.text:
        _one(s, fmt)
        return
    typer.echo(f"store        {s['store']} (format {s['format_version']})")
    typer.echo(f"articles     {s['articles']} ({s['articles_in_groups']} in {s['groups']} groups, "
               f"{s['singletons']} singletons) from {s['sources']} sources")
    typer.echo(f"languages    {', '.join(f'{k}: {v}' for k, v in s['languages'].items()) or '(no articles)'}")
    typer.echo(f"model        {s['model']} ({s['dim']}-d; {s['cached_embeddings']} cached embeddings)")
    if s["not_read"]:
        typer.echo(f"not read     {', '.join(f'{k}: {v}' for k, v in s['not_read'].items())} (a language the model "
                   "does not read: lexical evidence only)")
    tomb = f", {s['index']['tombstones']} tombstones" if s["index"]["tombstones"] else ""
    typer.echo(f"index        {s['index']['type']} (setting {s['index']['setting']}) {s['index']['metric']}, "
               f"{s['index']['vectors']} vectors{tomb}")
    if s["index"]["rebuilt"]:
        typer.echo(f"             rebuilt from the database: {s['index']['rebuilt']}; the next write saves it")
    lists = s["related_lists"]
    typer.echo(f"related      {lists['stored']} stored lists" + (
        " (current)" if lists["current"] else
        " (being built after a full regrouping, or the build stopped and the next write builds them: answers "
        "computed until then)" if lists["pending"] else
        f" (not current: answers computed; kept up to {lists['max_articles']:,} articles)"))
    typer.echo(f"on disk      {_size(s['bytes_on_disk'])}: "
               + ", ".join(f"{k} {_size(v)}" for k, v in s["files"].items()))


@command
def recommend(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write: one {id, related} per article; "
                                                          "'-': standard output (every list, nothing kept for "
                                                          "the next run).")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Entries per article.")] = 10,
    full: Annotated[bool, typer.Option("--full", help="Recompute every list, not only those whose "
                                                       "neighbourhood changed.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes writing a large store's lists "
                                                                  "(computing them when the store keeps none "
                                                                  "current); 0: one per core.")] = 0,
    store: StoreOpt = Path(DEFAULT_STORE),
) -> None:
    """The related list of every article, for static sites and CMS imports; incremental on later runs."""
    from .recommend import recommend as run_recommend

    target = _output_target(out)
    progress, task, advance = _progress_bar("related lists")
    with _open(store) as archive:
        total = archive.db.count()
        progress.update(task, total=total)
        if total >= 50_000:  # long work only
            progress.start()
        try:
            report = run_recommend(archive, sys.stdout if target is None else target, k=k, full=full,
                                   progress=advance, workers=workers or None)
        finally:
            if progress.live.is_started:
                progress.stop()
    if target is None:
        typer.echo(f"{report.articles} lists written to standard output ({report.seconds:.1f} s)", err=True)
        return
    typer.echo(f"{report.articles} articles written to {out}: {report.recomputed} lists computed, "
               f"{report.reused} reused, {report.removed} removed since the last run ({report.seconds:.1f} s)", err=True)


@command
def dedup_dist(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH",
                                                help="JSONL, CSV or Parquet files, RSS/Atom feeds (local or "
                                                     "shared storage), or folders of .html/.txt files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: groups.jsonl, dedup.json, problems.jsonl, "
                                                          "embeddings/*.parquet, manifest.json.")],
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to run on: 'auto' (the cluster this machine joined with 'ray start') or HOST:PORT. "
             "Default: a local Ray on this machine.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Embedding actors (each loads the model once).")] = 2,
    actor_cpus: Annotated[float, typer.Option(help="CPUs reserved per embedding actor (fractions allowed).")] = 0.5,
    actor_gpus: Annotated[float, typer.Option(help="GPUs per embedding actor, for a sentence-transformers --model.")]
    = 0.0,
    model: Annotated[str | None, typer.Option(help="Embedding model, as for 'add'.")] = None,
    on_error: Annotated[OnError, typer.Option(
        "--on-error", help="fail: stop before embedding when any record is bad. skip: go on, report them.")]
    = OnError.fail,
    max_text_mb: Annotated[float, typer.Option(help="Largest article text accepted, in MB.")] = 5.0,
) -> None:
    """Deduplicate files on a Ray cluster (Ray Data): the same stages, groups and output schema as 'add' + 'dedup'
    on one machine, for archives larger than one machine. Needs the 'dist' extra (ray[data])."""
    from .errors import HINT_FIX

    try:
        from .dist.ray_engine import dedup_distributed, init_ray
    except ImportError as e:
        _fail(f"dedup-dist needs Ray Data ({e.name} is missing): pip install 'storycluster[dist]'")
    init_ray(address, num_cpus=None)
    report = dedup_distributed(paths, out, model=model, workers=workers, actor_cpus=actor_cpus, actor_gpus=actor_gpus,
                               on_error=on_error.value, max_text_bytes=int(max_text_mb * 1e6))
    for p in report.problems:
        typer.echo(f"skipped: {p.replace(f' ({HINT_FIX})', '')}", err=True)  # problems as text: ray_engine
    for line in report.notices:
        typer.echo(f"note: {line}", err=True)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    repeated = f"{report.repeated} repeated, " if report.repeated else ""
    typer.echo(f"read {report.read} records: {report.articles} articles, {repeated}{len(report.problems)} skipped; "
               f"{report.groups} groups ({report.grouped} articles), {report.singletons} singletons → {out}\n"
               f"stages: {stages}", err=True)


@command
def export_pg(
    dsn: Annotated[str, typer.Argument(metavar="DSN",
                                       help="PostgreSQL connection string, e.g. postgresql://user@127.0.0.1/news.")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Entries per related list.")] = 10,
    store: StoreOpt = Path(DEFAULT_STORE),
) -> None:
    """Write articles, embeddings (pgvector) and the related table to PostgreSQL, for 'serve --backend pg'."""
    from .server.pg import export_pg as run_export

    with _open(store) as archive:
        counts = run_export(archive, dsn, k=k)
    typer.echo(f"exported {counts['articles']} articles, {counts['groups']} groups and {counts['related']} related "
               "entries (tables sc_*)", err=True)


@command
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write; '-': standard output.")]
    = Path("report.html"),
    max_groups: Annotated[int, typer.Option(min=1, help="List at most this many groups (largest first).")] = 500,
    store: StoreOpt = Path(DEFAULT_STORE),
) -> None:
    """A self-contained HTML report for editors: groups, sources, dates, charts (opens without network)."""
    import time

    from .report import build_report
    from .store.folder import atomic_write_text

    target = _output_target(out)
    start = time.perf_counter()
    with _open(store) as archive:
        html = build_report(archive, max_groups=max_groups)
    if target is None:
        sys.stdout.write(html)
        sys.stdout.flush()
    else:
        atomic_write_text(target, html)
    typer.echo(f"wrote {'standard output' if target is None else target} ({_size(len(html.encode()))}) in "
               f"{time.perf_counter() - start:.1f} s", err=True)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class BackendKind(StrEnum):
    store = "store"
    pg = "pg"


@command
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    token_env: Annotated[str | None, typer.Option(help="Env variable holding the bearer token that writes need.")]
    = None,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Origin allowed to call the API from a browser "
                                                                  "(repeat; '*' for any).")] = None,
    backend: Annotated[BackendKind, typer.Option(help="store (this folder) or pg (PostgreSQL, read only).")]
    = BackendKind.store,
    dsn: Annotated[str | None, typer.Option(help="PostgreSQL connection string for --backend pg.")] = None,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body accepted.")] = 10.0,
    allowed_host: Annotated[list[str] | None, typer.Option(
        help="Host name the server answers for (repeat; the names a reverse proxy forwards). Default: the loopback "
             "names and --host; any name when --host is 0.0.0.0 or ::.")] = None,
    request_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds an answer may take before the client gets 503 (Retry-After).")] = 30.0,
    rate_limit: Annotated[int, typer.Option(
        min=0, help="POST requests (posted texts, batches) one client address may make a minute; 0: no limit "
                    "(behind a reverse proxy, limit there).")] = 60,
    allow_anonymous_writes: Annotated[bool, typer.Option(
        "--allow-anonymous-writes", help="Accept writes without a token (loopback --host only).")] = False,
    threads: Annotated[int | None, typer.Option(
        min=1, max=64, help="Threads answering reads (writes have their own). Default: one while the store's "
                            "related lists are current (fastest there), else one per core (computed answers and "
                            "PostgreSQL wait outside Python), looked at again after each write.")] = None,
    cache_mb: Annotated[float | None, typer.Option(
        min=0, help="Memory for rendered answers, reused until the data changes (0: none). Default: 64 for a "
                    "store; 0 for --backend pg (its tables may be exported again under a running server).")] = None,
    store: StoreOpt = Path(DEFAULT_STORE),
) -> None:
    """HTTP API: related lists, groups, adds and deletes, an article page and /widget.js (routes at /docs).
    Read-only unless --token-env names the bearer token that writes need."""
    import os

    from .memory import limit_malloc_arenas

    limit_malloc_arenas(2)  # before the request threads start: resident memory levels off (bench/serve_load.py)

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            _fail(f"--token-env {token_env}: that environment variable is empty or not set", 2)
    loopback = host in LOOPBACK_HOSTS
    if allow_anonymous_writes and not loopback:
        _fail(f"--allow-anonymous-writes is for a loopback server only, not --host {host}; use --token-env", 2)
    wildcard = host in ("0.0.0.0", "::", "")
    hosts = allowed_host or (None if wildcard else sorted({*LOOPBACK_HOSTS, host}))
    if hosts is None:
        typer.echo(f"warning: --host {host} answers any Host header; name the public host with --allowed-host",
                   err=True)
    if backend is BackendKind.pg:
        if not dsn:
            _fail("--backend pg needs --dsn (e.g. postgresql://user@127.0.0.1/news)", 2)
        from .server.pg import PgBackend

        source: PgBackend | StoreBackend = PgBackend(dsn)
    else:
        from .server import StoreBackend

        _read_threads(store)  # opens the store first (a clear error when there is none) and warns as it finds it
        source = StoreBackend(store)
    import uvicorn

    from .server import create_app

    app_ = create_app(source, token=token, cors_origins=cors_origin or None, max_body_bytes=int(max_body_mb * 1e6),
                      anonymous_writes=allow_anonymous_writes, allowed_hosts=hosts, post_per_minute=rate_limit,
                      request_seconds=request_timeout, read_threads=threads,
                      cache_mb=_cache_mb(cache_mb, backend))
    writes = "writes with the bearer token" if token else ("anonymous writes" if allow_anonymous_writes else "read-only")
    typer.echo(f"serving {'PostgreSQL' if backend is BackendKind.pg else store} on http://{host}:{port} "
               f"({writes}; routes at /docs)", err=True)
    import faiss

    # one FAISS thread per request (an OpenMP team per request oversubscribes the cores when requests run side by
    # side, and the tail latency grows several-fold when another process is busy; docs/performance.md)
    faiss.omp_set_num_threads(1)
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        source.close()


def _cache_mb(given: float | None, backend: BackendKind) -> float:
    """``serve``'s memory for rendered answers: as given, else 64 MB for a store and none for PostgreSQL (whose
    tables an export may replace under a running server, unseen by its generation)."""
    if given is not None:
        return given
    return 0.0 if backend is BackendKind.pg else 64.0


def _read_threads(store: Path | None) -> int:
    """``serve``'s read threads when not given: one for a store whose related lists are current (answers are then
    Python under the GIL), else one per core (computed answers and PostgreSQL's wait outside Python). Warns when
    a store that should keep lists has none current (written by an older version): every answer is computed."""
    from .parallel import cores
    from .related.stored import answers_stored, due

    if store is not None:
        with _open(store) as a:
            n = a.db.count()
            if n > a.config.related_lists_max:  # lists go at the next write, if not gone yet
                return cores()
            if answers_stored(a.store, n):
                return 1
            if due(a.store):
                typer.echo(f"warning: {store}'s related lists are being built after a full regrouping (or their "
                           "build stopped; the next write builds them): answers are computed until they are "
                           "current", err=True)
            elif n:
                typer.echo(f"warning: {store}'s stored related lists are not current (an older version wrote them, "
                           "or related_lists_max was raised): "
                           "every answer is computed, several times slower, until the next write; rebuild them now "
                           f"with 'storycluster dedup --full-regroup --store {store}'", err=True)
    return cores()


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _progress_bar(description: str):
    """A progress bar on stderr, gone when done (start it for long work only), its task, and the callable that
    advances it by n articles (with their rate)."""
    from datetime import timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # the time left at the average rate so far: work that arrives in large parts misleads a recent-window one
    progress = Progress(TextColumn("{task.description:<17}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]} articles/s, {task.fields[left]} left"),
                        transient=True, console=_stderr_console())
    task = progress.add_task(description, total=None, rate="-", left="-")

    def advance(n: int) -> None:
        progress.advance(task, n)
        t = progress.tasks[0]
        if t.elapsed and t.completed:
            rate = t.completed / t.elapsed
            left = "-" if t.total is None else str(timedelta(seconds=int((t.total - t.completed) / rate)))
            progress.update(task, rate=f"{rate:.1f}", left=left)

    return progress, task, advance


def main() -> None:
    """Console entry point. Large batches run without numpy's huge-page requests (see
    :func:`~storycluster.memory.numpy_huge_pages`) unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise."""
    import os

    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        from .memory import numpy_huge_pages

        numpy_huge_pages(False)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
