"""Writing articles into a store: add, update and remove, in chunks that each commit whole, with the per-source
line counts that find boilerplate (articles of a source whose boilerplate changed are re-derived), then a
regrouping and the index saved."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice

import numpy as np

from .article import Article
from .boilerplate import MIN_COUNT, article_line_keys, line_keys, outlet
from .errors import InputError, Problem
from .featurize import Prepared, lexical_features, prepare_article
from .ingest import Record
from .language import reads
from .lexical import n_tokens, number_codes
from .parallel import cores
from .regroup import RegroupReport, now, regroup
from .related import stored as stored_lists
from .store.database import DERIVATION, StoredArticle
from .store.store import Store
from .store.vector_index import VectorIndex

Progress = Callable[[int], None]
#: records per transaction: each chunk commits whole (its articles, vectors and line counts)
CHUNK = 256


@dataclass(slots=True)
class AddReport:
    """What an add did. ``read == added + updated + unchanged + repeated + skipped`` (``skipped``: one per
    problem)."""

    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    #: records that repeat one read earlier in the same input, field for field (stored once)
    repeated: int = 0
    refreshed: int = 0  # stored articles whose text changed meaning because boilerplate was found
    embedded: int = 0  # texts sent to the model (cache misses)
    #: added or updated articles in a language the embedding model does not read, by language
    not_read: dict[str, int] = field(default_factory=dict)
    #: added or updated articles too short for more than a headline's evidence (under the model's
    #: ``short_min_tokens`` words once boilerplate is cut): their verdicts come from the headline regime
    headline_only: int = 0
    #: one line per input file with fields that were not read (ingest.read_paths)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Records not stored because of a problem (``--on-error skip``): read = added + updated + unchanged +
        repeated + skipped."""
        return len(self.problems)

    def to_dict(self) -> dict:
        """JSON-ready: each problem with its file, line, field, message and hint (and the one-line text)."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        d["skipped"] = self.skipped
        d["problems"] = [{"path": p.path, "line": p.line, "field": p.field, "message": p.message, "hint": p.hint,
                          "text": str(p)} for p in self.problems]
        return d


#: index vectors of prepared articles (the embedder behind it loads on first use), counting cache misses in a report
Embed = Callable[[list[Prepared], "AddReport | None"], np.ndarray]


@dataclass(slots=True)
class Upgrade:
    """Stored articles that rules newer than their store's may derive differently: of the ``bodies`` outlets,
    those whose body is only boilerplate; the articles at ``rows``."""

    bodies: set[str] = field(default_factory=set)
    rows: list[int] = field(default_factory=list)


class BuildStopped(Exception):
    """A related lists' build stopped when asked (:meth:`Writer.build_lists`); the lists stay pending. Not a
    :class:`~.errors.StoryclusterError`, which the build reads as a worker process that stopped."""


class Writer:
    """Adds and removes articles of one store (the caller's :class:`Store`), embedding with ``embed``.
    ``on_stage``: told what the write is doing ("adding", "grouping"), for a progress display."""

    def __init__(self, store: Store, embed: Embed, on_stage: Callable[[str], None] | None = None) -> None:
        self.store, self.db, self.embed = store, store.db, embed
        self.stage = on_stage or (lambda name: None)
        self.last_regroup: RegroupReport | None = None

    def prepare(self, a: Article, boilerplate: set[int]) -> Prepared:
        return prepare_article(a, boilerplate, self.store.config.embed_max_chars)

    def add(self, records: Iterable[Record], on_error: str = "fail", progress: Progress | None = None,
            atomic: bool = True, lists: bool = True) -> AddReport:
        """Add or update articles; problems raise in ``fail`` mode and are collected in ``skip`` mode. A list is
        checked in full before anything is written, a stream up to the bad record.

        ``atomic``: the whole call is one transaction, its regrouping included, so readers see all of it, already
        grouped, or none of it (a crash leaves nothing). Otherwise each chunk of :data:`CHUNK` records commits on
        its own (a crash keeps the chunks committed, and a re-run skips them) and the regrouping follows.

        ``lists``: also build the related lists a full regrouping of a large store left pending, before returning
        (else the caller runs :meth:`build_lists` when it likes; answers are computed until then)."""
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if on_error == "fail" and isinstance(records, list | tuple):
            check_records(records, fail=True)
        report = AddReport()
        start = time.perf_counter()
        seen = InputIds()
        changed = False
        store = self.store
        self.stage("adding")
        with store.write_lock():
            index = store.index
            it = iter(records)
            try:
                with self.db.transaction() if atomic else contextlib.nullcontext():
                    while chunk := list(islice(it, CHUNK)):
                        with self.db.transaction():
                            if self._add_chunk(chunk, report, on_error, seen, index):
                                changed = True
                                store.bump_generation()
                        store.index_holds_commit()  # the in-memory index holds this chunk's vectors
                        if progress is not None:
                            progress(len(chunk))
                    if changed or self.db.get_meta("groups_generation") != str(self.db.generation):
                        self.stage("grouping")
                        self.last_regroup = regroup(self.store)
            except BaseException:
                store.forget_index()  # it may hold vectors of rolled-back chunks
                raise
            if changed or self.store.config.index_generation != self.db.generation:
                store.save_index()
            if lists:
                self._build_lists()
        report.seconds = time.perf_counter() - start
        return report

    def regroup(self, full: bool = False) -> None:
        """Regroup and save the index (the caller holds the write lock). A new generation, in the regrouping's
        transaction: its groups and related lists can differ from the last ones without any article changing
        (new thresholds, a calibrated model), and what reads the generation (ETags, ``recommend``'s incremental
        export) must see that."""
        with self.db.transaction():
            self.store.index  # noqa: B018 - loaded at the generation it was saved at (or as a caller just rebuilt it)
            self.store.bump_generation()
            self.store.index_holds_commit()  # a regrouping changes no vector: not rebuilt from the database
            self.last_regroup = regroup(self.store, full=full)
        self.store.save_index()
        self._build_lists()

    def build_lists(self, stop: Callable[[], bool] | None = None) -> int:
        """The related lists that a full regrouping of a large store left pending (or a build that stopped), under
        the write lock; returns how many were built. ``stop``: asked as each part of lists is kept aside; when it
        says so, the build stops there with :class:`BuildStopped` and the lists stay pending (the next write, or
        call, builds them)."""
        with self.store.write_lock():
            return self._build_lists(stop)

    def _build_lists(self, stop: Callable[[], bool] | None = None) -> int:
        """A large store's related lists, after the full regrouping that left them pending committed (the caller
        holds the write lock; see :func:`~.related.stored.build`); also those of a build that stopped."""
        if not stored_lists.due(self.store):
            return 0
        self.stage("related lists")

        def asked(_: int) -> None:
            if stop is not None and stop():
                raise BuildStopped("the related lists' build was stopped; they stay pending until the next write")

        n = stored_lists.build(self.store, workers=cores(), progress=asked if stop is not None else None)
        if self.last_regroup is not None:
            self.last_regroup = replace(self.last_regroup, lists=n)
        return n

    def _add_chunk(self, chunk: list[Record], report: AddReport, on_error: str, seen: InputIds,
                   index: VectorIndex) -> bool:
        articles: list[Article] = []
        for rec in chunk:
            report.read += 1
            verdict = rec if isinstance(rec, Problem) else seen.check(rec)
            if isinstance(verdict, Problem):
                if on_error == "fail":
                    raise InputError(verdict)
                report.problems.append(verdict)
            elif not verdict:
                report.repeated += 1
            elif isinstance(rec, Article):
                articles.append(rec)
        existing = self.db.record_hashes([a.id for a in articles])
        todo = []
        for a in articles:
            rh = a.record_hash()
            if a.id in existing and existing[a.id][1] == rh:
                report.unchanged += 1
            else:
                todo.append((a, rh, a.id in existing))
        if not todo:
            return False
        flipped: dict[str, set[int]] = {}
        upgrade = self._derivation_upgrade(flipped)
        outlets = [outlet(a.source, a.url) for a, _, _ in todo]
        for (a, _, is_update), of in zip(todo, outlets, strict=True):
            if is_update:
                old = self.db.article(a.id)
                if old is not None and (was := outlet(old.source, old.url)):
                    self._count_lines(was, old.title, old.text, -1, flipped)
            if of:
                self._count_lines(of, a.title, a.text, +1, flipped)
        boiler = {o: self.db.boilerplate_keys(o, MIN_COUNT) for o in set(outlets) if o}
        prepared = [self.prepare(a, boiler.get(o or "", set())) for (a, _, _), o in zip(todo, outlets, strict=True)]
        vectors = self.embed(prepared, report)
        rowids = []
        languages = self.store.languages
        short = self.store.model.short_min_tokens
        for (a, rh, is_update), p, lex in zip(todo, prepared, lexical_features(prepared), strict=True):
            rowids.append(self.db.upsert_article({
                "id": a.id, "title": a.title, "text": a.text, "url": a.url, "source": a.source,
                "published": a.published, "published_ts": a.published_ts, "lang": p.lang, "record_hash": rh,
                "content_hash": p.content_hash, "embed_hash": p.hashes[0], "title_hash": p.hashes[1],
                "signature": lex.signature.tobytes(), "terms": lex.terms.tobytes(),
                "numbers": lex.numbers.tobytes()}))
            if is_update:
                report.updated += 1
            else:
                report.added += 1
            if p.lang is not None and not reads(languages, p.lang):
                report.not_read[p.lang] = report.not_read.get(p.lang, 0) + 1
            elif n_tokens(lex.terms) < short:
                report.headline_only += 1
        index.add(np.asarray(rowids, dtype=np.int64), vectors)
        self.db.mark_pending(rowids)
        self._refresh_outlets(flipped, {a.id for a, _, _ in todo}, report, index, upgrade)
        return True

    def remove(self, ids: Iterable[str], lists: bool = True) -> tuple[list[str], list[str]]:
        """Remove articles, and regroup, in one transaction (readers see the store before or after, whole);
        returns (removed ids, ids that were not in the store). ``lists``: as for :meth:`add`."""
        removed: list[str] = []
        missing: list[str] = []
        report = AddReport()
        store, db = self.store, self.db
        with store.write_lock():
            index = store.index
            try:
                with db.transaction():  # the deletes and their regrouping, seen together
                    flipped: dict[str, set[int]] = {}
                    upgrade = self._derivation_upgrade(flipped)
                    rows = []
                    for article_id in ids:
                        old = db.delete_article(article_id)
                        if old is None:
                            missing.append(article_id)
                            continue
                        removed.append(article_id)
                        rows.append(old.rowid)
                        if was := outlet(old.source, old.url):
                            self._count_lines(was, old.title, old.text, -1, flipped)
                    # group → its members removed here, logged as "removed" (membership rows stay until the regrouping)
                    left: dict[str, list[str]] = {}
                    id_of = dict(zip(rows, removed, strict=True))
                    for row, gid in db.groups_of(rows).items():
                        left.setdefault(gid, []).append(id_of[row])
                    index.remove(np.asarray(rows, dtype=np.int64))
                    # the groups they leave are looked at again (their membership rows go at the regrouping)
                    db.mark_pending(db.group_peers(rows) | set(rows))  # removed rows too: lists naming them change
                    self._refresh_outlets(flipped, set(), report, index, upgrade)
                    if removed:
                        db.prune_embeddings()
                        store.bump_generation()
                        db.add_changes(now(), db.generation, [("removed", gid, [], sorted(members))
                                                              for gid, members in sorted(left.items())])
                        store.index_holds_commit()
                        self.last_regroup = regroup(store)
            except BaseException:
                store.forget_index()
                raise
            if removed:
                store.save_index()
            if lists:
                self._build_lists()
        return removed, missing

    def fill_numbers(self) -> None:
        """A store from before numbers were kept: derive each article's numbers from its stored text (with its
        source's boilerplate lines left out, as when it was added), once: the database marks a store that got
        the column late (looking for missing rows would scan the whole table at every open)."""
        if self.db.get_meta("numbers_missing") != "1":
            return
        with self.store.write_lock():
            rows = self.db.without_numbers()
            outlets = [outlet(src, url) for _, _, _, src, url, _ in rows]
            boiler = {o: self.db.boilerplate_keys(o, MIN_COUNT) for o in set(outlets) if o}
            codes = [(r, number_codes(self.prepare(Article(str(r), title, text, lang=lang),
                                                   boiler.get(o or "", set())).match_input).tobytes())
                     for (r, title, text, _, _, lang), o in zip(rows, outlets, strict=True)]
            self.db.begin()
            self.db.set_numbers(codes)
            self.db.commit()

    def _count_lines(self, of: str, title: str | None, text: str, delta: int, flipped: dict[str, set[int]]) -> None:
        """Count an article's lines (its headline among them) toward its outlet's boilerplate (``delta``: +1 for
        an article stored, -1 for one removed); ``flipped`` gets the keys that crossed the threshold."""
        self._bump(of, article_line_keys(title, text), delta, flipped)

    def _bump(self, of: str, keys: Iterable[int], delta: int, flipped: dict[str, set[int]]) -> None:
        crossing = MIN_COUNT if delta > 0 else MIN_COUNT - 1
        for key, n in self.db.bump_lines(of, keys, delta):
            if n == crossing:
                flipped.setdefault(of, set()).add(key)

    def _derivation_upgrade(self, flipped: dict[str, set[int]]) -> Upgrade:
        """A store whose articles were derived by earlier rules (``DERIVATION`` in its meta), in the transaction
        of its next add or removal, once: its outlets' lines are counted again by the current rules (their keys,
        what counts: headlines and their first and last parts, articles known only by their URL's host), the
        lines whose boilerplate standing changed go to ``flipped``, and the articles the current rules may derive
        differently are returned, for :meth:`_refresh_outlets` to re-derive and regroup. Nothing after that."""
        if self.db.get_meta("derivation") == str(DERIVATION):
            return Upgrade()
        before = self.db.all_boilerplate_keys(MIN_COUNT)
        self.db.clear_line_counts()
        counts: Counter[tuple[str, int]] = Counter()
        for n, (source, url, title, text) in enumerate(self.db.outlet_rows(), start=1):
            if of := outlet(source, url):
                counts.update((of, key) for key in article_line_keys(title, text))
            if n % 20_000 == 0:  # a million articles' lines would not fit in memory at once
                self.db.add_line_counts((of, key, c) for (of, key), c in counts.items())
                counts.clear()
        self.db.add_line_counts((of, key, c) for (of, key), c in counts.items())
        after = self.db.all_boilerplate_keys(MIN_COUNT)
        for of in set(before) | set(after):
            if changed := before.get(of, set()) ^ after.get(of, set()):
                flipped.setdefault(of, set()).update(changed)
        self.db.set_meta("derivation", str(DERIVATION))
        # 1 → 2: a body of boilerplate only is read as the headline; Turkish İ folds to i (its lines' keys too)
        return Upgrade(bodies=set(after), rows=self.db.rows_containing("İ"))

    def _refresh_outlets(self, flipped: dict[str, set[int]], skip: set[str], report: AddReport,
                         index: VectorIndex, upgrade: Upgrade | None = None) -> None:
        """Re-derive stored articles of outlets whose boilerplate lines changed (``flipped``: outlet → the lines
        that crossed the threshold), and those an ``upgrade`` names (of its outlets, the articles whose body is
        only boilerplate; its rows)."""
        upgrade = upgrade or Upgrade()
        for of in sorted(set(flipped) | upgrade.bodies):
            keys = flipped.get(of, set())
            boiler = self.db.boilerplate_keys(of, MIN_COUNT)
            self._rederive([old for old in self._articles_of(of) if old.id not in skip and (
                article_line_keys(old.title, old.text) & keys
                or of in upgrade.bodies and line_keys(old.text) <= boiler)], report, index)
        for start in range(0, len(upgrade.rows), 1000):
            rows = self.db.articles_by_rowid(upgrade.rows[start:start + 1000], with_text=True)
            self._rederive([old for old in rows.values() if old.id not in skip], report, index)

    def _rederive(self, articles: list[StoredArticle], report: AddReport, index: VectorIndex) -> None:
        """Derive stored articles again (each with its outlet's boilerplate); store, embed and mark for regrouping
        those whose forms changed."""
        boiler: dict[str | None, set[int]] = {}
        stale: list[tuple[StoredArticle, Prepared]] = []
        for old in articles:
            of = outlet(old.source, old.url)
            if of not in boiler:
                boiler[of] = self.db.boilerplate_keys(of, MIN_COUNT) if of else set()
            p = self.prepare(Article(old.id, old.title, old.text, lang=old.lang), boiler[of])
            if p.content_hash != old.content_hash or p.hashes != (old.embed_hash, old.title_hash):
                stale.append((old, p))
        if not stale:
            return
        vectors = self.embed([p for _, p in stale], report)
        for (old, p), lex in zip(stale, lexical_features([p for _, p in stale]), strict=True):
            self.db.update_content(old.rowid, p.content_hash, *p.hashes, lex.signature.tobytes(),
                                   lex.terms.tobytes(), lex.numbers.tobytes())
        index.add(np.asarray([old.rowid for old, _ in stale], dtype=np.int64), vectors)
        self.db.mark_pending(old.rowid for old, _ in stale)
        report.refreshed += len(stale)

    def _articles_of(self, of: str) -> Iterator[StoredArticle]:
        """The stored articles of an outlet (a source, or ``host:NAME`` for those without one)."""
        if not of.startswith("host:"):
            yield from self.db.iter_articles(of)
            return
        for a in self.db.iter_without_source(of.removeprefix("host:")):
            if outlet(None, a.url) == of:
                yield a


def check_records(records: Iterable[Record], fail: bool, show: int = 20) -> int:
    """Count the records; with ``fail``, raise InputError naming every problem and repeated id with other fields
    (the first ``show`` of them) once the whole input is read."""
    total = 0
    ids = InputIds()
    problems: list[Problem] = []
    n_problems = 0
    for rec in records:
        total += 1
        if fail:
            problem = rec if isinstance(rec, Problem) else ids.check(rec)
            if isinstance(problem, Problem):
                n_problems += 1
                if len(problems) < show:
                    problems.append(problem)
    if problems:
        raise InputError(problems[0], problems[1:], n_problems)
    return total


class InputIds:
    """The ids one input has given so far. The same id again with the same fields is the same article listed
    twice (in two section feeds of one site, in exports of overlapping days): stored once and counted as a
    repeat. With other fields it is a problem: which of the two is the article?"""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, str]] = {}  # id → (where it was first read, its record hash)

    def check(self, a: Article) -> Problem | bool:
        """True when ``a``'s id is new to this input; False when ``a`` repeats the record first read with it,
        field for field; a problem when it has other fields."""
        origin = a.origin or "<input>"
        digest = a.record_hash()
        first = self._first.get(a.id)
        if first is None:
            self._first[a.id] = (origin, digest)
            return True
        if first[1] == digest:
            return False
        path, _, line = origin.rpartition(":")
        return Problem(path or origin, int(line) if line.isdigit() else None, "id",
                       f"duplicate id '{a.id}' (first at {first[0]})",
                       "ids must be unique across the input (a record repeated field for field is stored once)")
