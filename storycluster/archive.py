"""The Archive: a store folder of articles that can be added to, deduplicated and asked for related
articles. The CLI, and later the server and the distributed pipeline, call this class."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np

from .article import Article
from .boilerplate import MIN_COUNT, line_keys
from .cluster import ArticleFacts, PairEvidence, StoryModel, Thresholds, build_groups, cluster_labels
from .cluster.graph import IndexedVectors, PairScorer, grouping_scorer, index_vectors, split_index_vectors
from .cluster.groups import group_changes, group_record
from .cluster.model import MODEL_FILE
from .cluster.scoring import pair_logits, semantic_similarity, similarity_from, tiers, topical
from .embed import Embedder, get_embedder, model_id_for
from .embed import model_languages as languages_read
from .errors import InputError, NotFoundError, Problem, StoreError
from .featurize import Prepared, lexical_features, prepare_article, record_hash
from .ingest import DEFAULT_MAX_TEXT_BYTES, Record, read_paths
from .language import reads
from .lexical import (
    N_FEATURES,
    band_partners,
    document_frequencies,
    idf_weights,
    n_tokens,
    number_codes,
    number_text,
    tfidf_cosines,
    tfidf_matrix,
    unpack,
)
from .ranking import RelatedOptions, select
from .store import Database, StoreConfig, VectorIndex, WriteLock
from .store.database import GroupingData, StoredArticle
from .store.folder import DATABASE, INDEX, atomic_write_text, file_checksum
from .store.vector_index import choose_index, sample_ids

Progress = Callable[[int], None]
CHUNK = 256


@dataclass(slots=True)
class AddReport:
    """What an add did. ``read == added + updated + unchanged + len(problems)``."""

    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    refreshed: int = 0  # stored articles whose text changed meaning because boilerplate was found
    embedded: int = 0  # texts sent to the model (cache misses)
    #: added or updated articles in a language the embedding model does not read, by language
    not_read: dict[str, int] = field(default_factory=dict)
    #: one line per input file with fields that were not read (ingest.read_paths)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: each problem with its file, line, field, message and hint (and the one-line text)."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        d["skipped"] = len(self.problems)
        d["problems"] = [{"path": p.path, "line": p.line, "field": p.field, "message": p.message, "hint": p.hint,
                          "text": str(p)} for p in self.problems]
        return d


@dataclass(slots=True)
class Query:
    """What scoring needs of an article that may not be stored."""

    vector: np.ndarray  # index vector (lead and headline halves)
    signature: np.ndarray
    terms: np.ndarray
    content_hash: str
    lang: str | None
    published: float | None = None
    numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


class Archive:
    """A store folder (``config.json``, ``store.sqlite``, ``index.faiss``).

    >>> archive = Archive("storycluster-data")              # doctest: +SKIP
    >>> archive.add_paths(["seeds/articles.jsonl"])          # doctest: +SKIP
    >>> archive.dedup()["groups"][0]["members"]              # doctest: +SKIP
    >>> archive.related("seed-main", k=5)                    # doctest: +SKIP
    """

    def __init__(self, path: str | Path, model: str | None = None, *, create: bool = True,
                 embedder: Embedder | None = None, thresholds: Thresholds | None = None,
                 index_type: str | None = None, model_languages: list[str] | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: is a file, not a store folder; give --store a folder (a new one is "
                             "created)")
        config = StoreConfig.read(self.path) if self.path.is_dir() else None
        wanted = embedder.model_id if embedder is not None else (model_id_for(model) if model else None)
        if index_type is not None:
            choose_index(index_type, 0)  # a clear error for an unknown kind
        if config is None:
            if not create:
                raise StoreError(f"{self.path}: no store here; create one with 'storycluster add FILE' "
                                 "or point --store / STORYCLUSTER_STORE at an existing store")
            self._embedder = embedder or get_embedder(model)
            self.path.mkdir(parents=True, exist_ok=True)
            t = thresholds or Thresholds()
            config = StoreConfig(model_id=self._embedder.model_id, dim=self._embedder.dim, thresholds=t.to_dict(),
                                 index_dim=2 * self._embedder.dim, index_type=index_type or "auto",
                                 model_languages=model_languages)
            config.write(self.path)
        else:
            if wanted is not None and wanted != config.model_id:
                raise StoreError(f"{self.path}: this store was built with model '{config.model_id}', not "
                                 f"'{wanted}'; use --model {config.model_id} or a new --store")
            self._embedder = embedder
        self.config = config
        self.thresholds = thresholds or Thresholds.from_dict(config.thresholds)
        #: languages the embedding model reads (None: all); articles in others get lexical evidence only
        self.languages = languages_read(config.model_id, config.model_languages)
        model_path = self.path / MODEL_FILE
        self.model = StoryModel.load(model_path) if model_path.exists() else StoryModel.shipped()
        database = self.path / DATABASE
        if config.index_generation > 0 and (not database.exists() or database.stat().st_size == 0):
            # config.json says articles were stored: an empty database is a lost one, not an empty store
            raise StoreError(f"{database}: {'missing' if not database.exists() else 'empty (0 bytes)'}, but "
                             f"config.json says the store holds generation {config.index_generation}; restore "
                             "store.sqlite from a backup, or remove the folder and add the articles again")
        # a store on a read-only volume is read as it is (readers work; a write says the lock cannot be taken)
        self.read_only = not os.access(self.path, os.W_OK) or (database.exists() and not os.access(database, os.W_OK))
        self.db = Database(database, readonly=self.read_only and database.exists())
        self._index: VectorIndex | None = None
        self._index_generation = -1
        #: why the saved index.faiss was not used and was rebuilt from the database (None: it was, or none needed)
        self.index_rebuilt: str | None = None
        self._on_stage: Callable[[str], None] | None = None  # add's progress display, while it runs
        self._index_checked = False  # whether _ensure_groups looked for a saved index left behind by a crash
        self._fill_numbers()

    def _write_lock(self) -> WriteLock:
        """The store's write lock; a read-only store (a read-only volume) says so instead of failing half-way."""
        if self.read_only:
            raise StoreError(f"{self.path}: the store is read-only here (no write permission on the folder or on "
                             f"{DATABASE}); it can be read, not changed")
        return WriteLock(self.path)

    def _fill_numbers(self) -> None:
        """A store from before numbers were kept: derive each article's numbers from its stored text (with its
        source's boilerplate lines left out, as when it was added), once: the database marks a store that got
        the column late (looking for missing rows would scan the whole table at every open)."""
        if self.db.get_meta("numbers_missing") != "1":
            return
        with self._write_lock():
            rows = self.db.without_numbers()
            boiler = {src: self.db.boilerplate_keys(src, MIN_COUNT) for src in {r[3] for r in rows if r[3]}}
            codes = [(r, number_codes(self.prepare(Article(str(r), title, text, lang=lang),
                                                   boiler.get(src or "", set())).match_input).tobytes())
                     for r, title, text, src, lang in rows]
            self.db.begin()
            self.db.set_numbers(codes)
            self.db.commit()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._stage("loading the model")
            self._embedder = get_embedder(self.config.model_id)
            self._stage("adding")
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, loaded from disk when it matches the database, else rebuilt from stored vectors."""
        gen = self.db.generation
        if self._index is None or self._index_generation != gen:
            self.config = StoreConfig.read(self.path) or self.config
            path = self.path / INDEX
            saved = path.exists() and self.config.index_generation == gen
            self._index = self._load_index(path) if saved else self._rebuild_index()
            self._index_generation = gen
        return self._index

    def _load_index(self, path: Path) -> VectorIndex:
        """The saved index when it is whole and matches the database (checksum as written, one vector per stored
        article, the store's dimension); otherwise the index is rebuilt from the stored embeddings (it is derived
        data) and ``index_rebuilt`` says why (``stats`` shows it; the next write saves the rebuilt one)."""
        if self.config.index_checksum and file_checksum(path) != self.config.index_checksum:
            return self._rebuild_index(f"{path.name} changed since it was written (checksum)")
        try:
            index = VectorIndex.load(path)
        except Exception as e:  # noqa: BLE001 - FAISS raises RuntimeError on a truncated or foreign file
            return self._rebuild_index(f"{path.name} could not be read ({str(e).strip().splitlines()[0][:120]})")
        if index.dim != self.config.index_dim or len(index) != self.db.count():
            return self._rebuild_index(f"{path.name} holds {len(index)} vectors of {index.dim} dimensions for "
                                       f"{self.db.count()} articles of {self.config.index_dim}")
        return index

    def _rebuild_index(self, reason: str | None = None, chunk: int = 50_000) -> VectorIndex:
        """The index from the stored embeddings, read in chunks (an IVF is trained on a sample first);
        ``reason``: why a saved one was not used."""
        self.index_rebuilt = reason
        rowids = self.db.rowids()
        index = VectorIndex(self.config.index_dim, choose_index(self.config.index_type, len(rowids)))
        if index.index_type == "ivf" and len(rowids):
            index.train(self.vectors(sample_ids(rowids, len(rowids)), exact=True), len(rowids))
        for start in range(0, len(rowids), chunk):
            part = rowids[start:start + chunk]
            index.add(part, self.vectors(part, exact=True))
        return index

    def _save_index(self) -> None:
        gen = self.db.generation
        index = self.index
        kind = choose_index(self.config.index_type, len(index))
        if kind != index.index_type or index.needs_rebuild():  # grew past the ANN size, or tombstones/IVF lists
            self._index = index = index.compacted(kind)
        index.save(self.path / INDEX)
        self.config.index_generation = gen
        self.config.index_checksum = file_checksum(self.path / INDEX)
        self.config.write(self.path)
        self.index_rebuilt = None

    # -- writing -------------------------------------------------------------------------------
    def add_paths(self, paths: Iterable[str | Path], on_error: str = "fail",
                  max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES, progress: Progress | None = None,
                  on_total: Callable[[int], None] | None = None,
                  on_stage: Callable[[str], None] | None = None) -> AddReport:
        """Read files or folders and add their articles. In ``fail`` mode the input is checked in full
        first, so a bad record stops the add before anything is written."""
        paths = [Path(p) for p in paths]
        total = _check_records(read_paths(paths, max_text_bytes), fail=on_error == "fail")
        if on_total is not None:
            on_total(total)
        notices: list[str] = []
        report = self.add(read_paths(paths, max_text_bytes, notices), on_error=on_error, progress=progress,
                          on_stage=on_stage)
        report.notices = notices
        return report

    def add(self, records: Iterable[Record], on_error: str = "fail", progress: Progress | None = None,
            on_stage: Callable[[str], None] | None = None) -> AddReport:
        """Add or update articles. Unchanged articles cost nothing; changed ones are re-embedded (unless
        their normalized text was seen before) and regrouped. Problems raise in ``fail`` mode and are
        collected in the report in ``skip`` mode. Work is committed in chunks of 256: in ``fail`` mode a
        list is checked in full before anything is written, a stream up to the bad record. ``on_stage``: told
        what the add is doing ("adding", "loading the model", "grouping"), for a progress display."""
        self._on_stage = on_stage
        try:
            return self._add(records, on_error, progress)
        finally:
            self._on_stage = None

    def _stage(self, name: str) -> None:
        if self._on_stage is not None:
            self._on_stage(name)

    def _add(self, records: Iterable[Record], on_error: str, progress: Progress | None) -> AddReport:
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if on_error == "fail" and isinstance(records, list | tuple):
            _check_records(records, fail=True)
        report = AddReport()
        start = time.perf_counter()
        seen: dict[str, str] = {}
        changed = False
        self._stage("adding")
        with self._write_lock():
            index = self.index
            it = iter(records)
            while chunk := list(islice(it, CHUNK)):
                self.db.begin()
                try:
                    if self._add_chunk(chunk, report, on_error, seen, index):
                        changed = True
                        self._bump_generation()
                    self.db.commit()
                    self._index_generation = self.db.generation  # the in-memory index holds this chunk
                except BaseException:
                    self.db.rollback()
                    self._index = None  # the in-memory index may hold rolled-back vectors
                    raise
                if progress is not None:
                    progress(len(chunk))
            if changed or self.db.get_meta("groups_generation") != str(self.db.generation):
                self._stage("grouping")
                self._regroup()
                self._save_index()
        report.seconds = time.perf_counter() - start
        return report

    def _add_chunk(self, chunk: list[Record], report: AddReport, on_error: str, seen: dict[str, str],
                   index: VectorIndex) -> bool:
        articles: list[Article] = []
        for rec in chunk:
            report.read += 1
            problem = rec if isinstance(rec, Problem) else _duplicate_problem(rec, seen)
            if problem is not None:
                if on_error == "fail":
                    raise InputError(problem)
                report.problems.append(problem)
            else:
                articles.append(rec)
        existing = self.db.record_hashes([a.id for a in articles])
        todo = []
        for a in articles:
            rh = record_hash(a)
            if a.id in existing and existing[a.id][1] == rh:
                report.unchanged += 1
            else:
                todo.append((a, rh, a.id in existing))
        if not todo:
            return False
        flipped: dict[str, set[int]] = {}
        for a, _, is_update in todo:
            if is_update:
                old = self.db.article(a.id)
                if old is not None and old.source:
                    self._count_lines(old.source, old.text, -1, flipped)
            if a.source:
                self._count_lines(a.source, a.text, +1, flipped)
        boiler = {src: self.db.boilerplate_keys(src, MIN_COUNT) for src in {a.source for a, _, _ in todo if a.source}}
        prepared = [self.prepare(a, boiler.get(a.source or "", set())) for a, _, _ in todo]
        vectors = self._embed(prepared, report)
        rowids = []
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
            if not reads(self.languages, p.lang):
                report.not_read[p.lang] = report.not_read.get(p.lang, 0) + 1
        index.add(np.asarray(rowids, dtype=np.int64), vectors)
        self.db.mark_pending(rowids)
        self._refresh_sources(flipped, {a.id for a, _, _ in todo}, report, index)
        return True

    def _count_lines(self, source: str, text: str, delta: int, flipped: dict[str, set[int]]) -> None:
        crossing = MIN_COUNT if delta > 0 else MIN_COUNT - 1
        for key, n in self.db.bump_lines(source, line_keys(text), delta):
            if n == crossing:
                flipped.setdefault(source, set()).add(key)

    def _refresh_sources(self, flipped: dict[str, set[int]], skip: set[str], report: AddReport,
                         index: VectorIndex) -> None:
        """Re-derive stored articles of sources whose boilerplate lines changed."""
        for source, keys in sorted(flipped.items()):
            boiler = self.db.boilerplate_keys(source, MIN_COUNT)
            stale: list[tuple[StoredArticle, Prepared]] = []
            for old in self.db.iter_articles(source):
                if old.id in skip or not (line_keys(old.text) & keys):
                    continue
                p = self.prepare(Article(old.id, old.title, old.text, lang=old.lang), boiler)
                if p.content_hash != old.content_hash or p.hashes != (old.embed_hash, old.title_hash):
                    stale.append((old, p))
            if not stale:
                continue
            vectors = self._embed([p for _, p in stale], report)
            for (old, p), lex in zip(stale, lexical_features([p for _, p in stale]), strict=True):
                self.db.update_content(old.rowid, p.content_hash, *p.hashes, lex.signature.tobytes(),
                                       lex.terms.tobytes(), lex.numbers.tobytes())
            index.add(np.asarray([old.rowid for old, _ in stale], dtype=np.int64), vectors)
            self.db.mark_pending(old.rowid for old, _ in stale)
            report.refreshed += len(stale)

    def _embed(self, prepared: list[Prepared], report: AddReport | None = None, cache: bool = True) -> np.ndarray:
        """Index vectors (lead and headline views combined) of prepared articles."""
        before = self.embedder.n_embedded
        n = len(prepared)
        both = self.embedder.embed([p.embed_input for p in prepared] + [p.title_input for p in prepared],
                                   cache=self.db if cache else None)
        if report is not None:
            report.embedded += self.embedder.n_embedded - before
        return index_vectors(both[:n], both[n:], self.thresholds.title_weight)

    def set_thresholds(self, **changes: float) -> bool:
        """Change store settings (e.g. ``window_days``); regroups when one changed. Returns whether it did.
        ``title_weight`` is fixed when the store is created (the index vectors are built with it)."""
        if "title_weight" in changes and changes["title_weight"] != self.thresholds.title_weight:
            raise ValueError("title_weight is fixed for a store (its index is built with it); use a new --store")
        new = replace(self.thresholds, **changes)
        if new == self.thresholds:
            return False
        with self._write_lock():
            self.thresholds = new
            self.config.thresholds = new.to_dict()
            self.config.write(self.path)
            self._regroup(full=True)
            self._save_index()
        return True

    def set_index(self, index_type: str) -> bool:
        """Change the store's index setting (``auto``, ``flat``, ``hnsw``, ``ivf``) and rebuild the index now.
        Returns whether the setting changed."""
        choose_index(index_type, 0)
        if index_type == self.config.index_type:
            return False
        with self._write_lock():
            self.config.index_type = index_type
            self.config.write(self.path)
            self._save_index()
        return True

    def _bump_generation(self) -> None:
        self.db.set_meta("generation", str(self.db.generation + 1))

    def remove(self, ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """Remove articles; returns (removed ids, ids that were not in the store)."""
        removed, missing = [], []
        report = AddReport()
        with self._write_lock():
            index = self.index
            self.db.begin()
            try:
                flipped: dict[str, set[int]] = {}
                rows = []
                for article_id in ids:
                    old = self.db.delete_article(article_id)
                    if old is None:
                        missing.append(article_id)
                        continue
                    removed.append(article_id)
                    rows.append(old.rowid)
                    if old.source:
                        self._count_lines(old.source, old.text, -1, flipped)
                # group → its members removed here, logged as "removed" (membership rows stay until the regrouping)
                left: dict[str, list[str]] = {}
                id_of = dict(zip(rows, removed, strict=True))
                for row, gid in self.db.groups_of(rows).items():
                    left.setdefault(gid, []).append(id_of[row])
                index.remove(np.asarray(rows, dtype=np.int64))
                # the groups they leave are looked at again (their membership rows go at the regrouping)
                self.db.mark_pending(self.db.group_peers(rows) - set(rows))
                self._refresh_sources(flipped, set(), report, index)
                if removed:
                    self.db.prune_embeddings()
                    self._bump_generation()
                    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    self.db.add_changes(at, self.db.generation, [("removed", gid, [], sorted(members))
                                                                  for gid, members in sorted(left.items())])
                self.db.commit()
                self._index_generation = self.db.generation
            except BaseException:
                self.db.rollback()
                self._index = None
                raise
            if removed:
                self._regroup()
                self._save_index()
        return removed, missing

    def prepare(self, a: Article, boilerplate: set[int]) -> Prepared:
        return prepare_article(a, boilerplate, self.config.embed_max_chars)

    # -- grouping -------------------------------------------------------------------------------
    def _regroup(self, full: bool = False) -> None:
        """Recompute groups. Incremental unless ``full`` (or there are no groups yet, or most articles
        changed): only the articles touched since the last grouping (``pending_regroup``), their candidate
        neighbours and every member of the groups those belong to are clustered again; other groups stay as
        they are. Group ids carry over by largest overlap, and what changed is logged (``group_changes``).

        An incremental regrouping reads only those articles' rows (and every article's signature, to find
        them) once the store keeps its term document frequencies up to date on every write (from its first
        full regrouping on); a full one reads every article."""
        # an IVF store groups with the index's 8-bit vectors: no float32 copy of every embedding in memory
        from_index = self.index.index_type == "ivf"
        previous = self.db.group_of()
        live = None if full or not previous else self.db.term_df()
        if live is not None:
            stored, sigs = self.db.signatures()
            pending, previous = self._pending_in(stored, previous)
            if len(pending) <= len(stored) // 2:
                rows = self._touched_rows(stored, sigs, pending, previous)
                del sigs
                data = self.db.all_for_grouping(self.config.model_id, vectors=not from_index, rowids=rows.tolist())
                scorer, _ = self._grouping_scorer(data, *live)
                facts = {r: ArticleFacts(i, ts, n) for r, i, ts, n in self.db.facts(rows.tolist())}
                self._write_groups(data.rowids, scorer, False, facts, previous, len(stored), None)
                return
        data = self.db.all_for_grouping(self.config.model_id, vectors=not from_index)
        facts = {r: ArticleFacts(i, ts, n) for r, i, ts, n in self.db.facts()}
        scorer, df = self._grouping_scorer(data)
        stored = data.rowids
        del data  # the term lists: the scorer holds what it needs (a million articles' lists are gigabytes)
        pending, previous = self._pending_in(stored, previous)
        if full or not previous or len(pending) > len(stored) // 2:
            self._write_groups(stored, scorer, True, facts, previous, len(stored), df)
        else:
            rows = self._touched_rows(stored, scorer.sigs, pending, previous)
            sub = scorer.subset(np.searchsorted(stored, rows))
            self._write_groups(rows, sub, False, facts, previous, len(stored), df)

    def _pending_in(self, stored: np.ndarray, previous: dict[int, str]) -> tuple[np.ndarray, dict[int, str]]:
        """The rows marked for regrouping and the previous group of each row, among ``stored`` (ascending)."""
        pending = np.array(sorted(self.db.pending()), dtype=np.int64)
        grouped = np.fromiter(previous, dtype=np.int64, count=len(previous))
        alive = set(grouped[np.isin(grouped, stored)].tolist())
        return pending[np.isin(pending, stored)], {r: g for r, g in previous.items() if r in alive}

    def _write_groups(self, rows: np.ndarray, scorer: PairScorer, whole: bool, facts: dict[int, ArticleFacts],
                      previous: dict[int, str], n_articles: int, df: np.ndarray | None) -> None:
        """Cluster ``rows`` (the scorer's rows; ``whole``: every article of the store), build their groups and
        write them with the changes; ``df``: document frequencies read from every article, to store."""
        # the store's index holds exactly the rows of a whole regrouping: its lists give the graph
        labels = (cluster_labels(scorer, index=self.index if whole else None, rowids=rows) if len(rows)
                  else np.zeros(0, dtype=np.int64))
        before = {int(r): previous[int(r)] for r in rows if int(r) in previous}
        old_ids = set(before.values())
        reserved = set(previous.values()) - old_ids
        groups = build_groups(rows, labels, scorer, facts, before, reserved)
        after = {r: g.group_id for g in groups for r, *_ in g.members}
        changes = group_changes(before, after, {r: f.id for r, f in facts.items()})
        self.db.begin()
        try:
            if whole:
                self.db.replace_groups((g.group_id, g.representative, g.members) for g in groups)
            else:
                self.db.replace_some_groups(old_ids, rows.tolist(), ((g.group_id, g.representative, g.members)
                                                                     for g in groups))
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.db.add_changes(at, self.db.generation, changes)
            self.db.clear_pending()
            if df is not None:
                self.db.set_term_df(df, n_articles)
            self.db.set_meta("groups_generation", str(self.db.generation))
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        self.last_regroup = {"articles": n_articles, "reclustered": int(len(rows)), "changes": len(changes)}

    def _touched_rows(self, stored: np.ndarray, sigs: np.ndarray, pending: np.ndarray, previous: dict[int, str],
                      k: int = 20) -> np.ndarray:
        """Row ids to cluster again (sorted): the touched ones (``pending``), their candidate neighbours (top-k
        vectors above the related floor, MinHash band collisions) and all members of the groups any of those
        is in. ``stored``: every row id, ascending; ``sigs``: their signatures."""
        near = set(pending.tolist())
        if len(pending):  # the store's index already holds these vectors under their row ids
            index = self.index
            scores, found = index.search(index.vectors_of(pending), k + 1)
            hit = found[(scores >= self.thresholds.related) & (found >= 0)]
            near.update(hit[np.isin(hit, stored)].tolist())
            near.update(stored[band_partners(sigs, np.searchsorted(stored, pending))].tolist())
        touched_groups = {previous[r] for r in near if r in previous}
        near.update(r for r, g in previous.items() if g in touched_groups)
        return np.array(sorted(near), dtype=np.int64)

    def _grouping_scorer(self, data: GroupingData, df: np.ndarray | None = None,
                         n_docs: int | None = None) -> tuple[PairScorer, np.ndarray]:
        """A PairScorer over the articles of ``data``, and the term document frequencies it used (``df``
        and ``n_docs``: the archive's, when ``data`` holds only some of its articles). ``data.terms`` is spent
        (its arrays become the TF-IDF matrix); the callers use only the rest of ``data`` afterwards."""
        lead, title = data.lead, data.title
        if len(data.rowids) and lead.size == 0:  # vectors left in the index (an IVF store)
            w = self.thresholds.title_weight
            lead = IndexedVectors(self.index, data.rowids, "lead", w)
            title = IndexedVectors(self.index, data.rowids, "title", w)
        return grouping_scorer(lead, title, data.sigs, data.content_hashes, data.terms, data.langs,
                               data.published, self.thresholds, self.model, data.numbers, df, n_docs,
                               consume_terms=True, languages=self.languages)

    def _ensure_groups(self) -> None:
        """Regroup when the groups are older than the articles (an add that stopped before grouping), and save
        the index when the saved one is missing or older than the database (an add stopped between its two
        writes): once, not a rebuild at every open. While another process is writing, readers use what it last
        committed instead of waiting; inside :meth:`reading` nothing is written."""
        if self.db.conn.in_transaction:
            return
        stale_groups = self.db.get_meta("groups_generation") != str(self.db.generation)
        if stale_groups or self._index_stale():
            try:
                with self._write_lock():
                    if stale_groups:
                        self._regroup()
                    self._save_index()
            except StoreError:
                return

    def _index_stale(self) -> bool:
        """The saved index is missing or older than the database: checked at this instance's first read only (an
        add killed between its two writes is found at the next open; the per-request path reads no file)."""
        if self._index_checked:
            return False
        self._index_checked = True
        return self.config.index_generation != self.db.generation or not (self.path / INDEX).exists()

    # -- reading --------------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Archive]:
        """One consistent snapshot for several reads (a read transaction): a writer committing meanwhile,
        in this process or another, is not seen half-way. Groups are not recomputed inside."""
        if self.db.conn.in_transaction:
            yield self
            return
        self._ensure_groups()
        self.db.conn.execute("BEGIN DEFERRED")
        try:
            _ = self.db.generation  # the first read fixes the snapshot
            yield self
        finally:
            self.db.rollback()

    def dedup(self) -> dict:
        """Every article exactly once: in a group of 2+ (representative first) or as a singleton."""
        self._ensure_groups()
        raw = self.db.groups()
        groups = [self._group_dict(*g) for g in raw]
        grouped = {r for _, _, members in raw for r, *_ in members}
        singletons = sorted(i for r, i, _, _ in self.db.facts() if r not in grouped)
        return {"groups": groups, "singletons": singletons}

    def changes(self, since: str) -> list[dict]:
        """What regroupings changed since ``since`` (an ISO date or time, UTC), oldest first: each
        ``{at, generation, change, group, other_groups, articles}`` (see :func:`cluster.groups.group_changes`)."""
        try:
            t = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--changes-since: {since!r} is not an ISO date or time (e.g. 2024-05-01T12:00:00Z)") from None
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        self._ensure_groups()
        return self.db.changes_since(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    def groups(self, limit: int = 100, offset: int = 0) -> dict:
        """A page of groups (largest first, as ``dedup``), and how many there are."""
        self._ensure_groups()
        everything = self.db.groups()
        page = [self._group_dict(*g) for g in everything[offset:offset + limit]]
        return {"total": len(everything), "offset": offset, "groups": page}

    def group(self, group_id: str) -> dict:
        """One group by id."""
        self._ensure_groups()
        found = self.db.group(group_id)
        if found is None:
            raise NotFoundError(f"no group with id '{group_id}' in {self.path}; list them with 'storycluster dedup'")
        return self._group_dict(group_id, *found)

    def _group_dict(self, gid: str, rep: int, members: list[tuple[int, float, str, int | None]]) -> dict:
        arts = self.db.articles_by_rowid([r for r, *_ in members] + [d for *_, d in members if d])
        return group_record(gid, rep, members, arts)

    def related(self, article_id: str | None = None, *, text: str | None = None, title: str = "",
                lang: str | None = None, k: int = 10, options: RelatedOptions | None = None,
                alternates: bool = False) -> dict:
        """Top-k related articles for a stored article or for a text that is not stored.

        Never the article itself; articles of one group collapse into one entry (the best-scoring
        member that passes ``options``) whose ``also_in`` lists the group's other members that pass.
        ``alternates``: each entry also lists the group's other scored candidates (``{id, score, tier}``,
        best first), so that a filter applied later can fall back on them (the PostgreSQL export)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        opts = options or RelatedOptions()
        earliest = opts.earliest()
        self._ensure_groups()
        index = self.index
        query_ts = None
        if article_id is not None:
            q = self.db.article(article_id)
            if q is None:
                raise NotFoundError(f"no article with id '{article_id}' in {self.path}; "
                                    "list ids with 'storycluster dedup --all'")
            qvec = self.vectors([q.rowid])[0]
            query = Query(qvec, np.frombuffer(q.signature, np.uint32), np.frombuffer(q.terms, np.uint32),
                          q.content_hash, q.lang, q.published_ts, q.number_codes())
            exclude, query_ts = q.rowid, q.published_ts
            qgroup = self.db.groups_of([q.rowid]).get(q.rowid)
        else:
            if not (text or "").strip():
                raise ValueError("give an article id or a non-empty text")
            p = self.prepare(Article("<query>", title, text or "", lang=lang), set())
            qvec = self._embed([p], cache=False)[0]
            (lex,) = lexical_features([p])
            query = Query(qvec, lex.signature, lex.terms, p.content_hash, p.lang, numbers=lex.numbers)
            exclude, qgroup = -1, None

        def allowed(a: StoredArticle) -> bool:
            return opts.allows(a.id, a.source, a.lang, a.published_ts, query_ts, earliest)

        t = self.thresholds
        own = [m for m, *_ in self.db.group_members(qgroup)] if qgroup else []
        wanted = 3 * k if opts.shapes_list else k
        fetch = 2 * k + 16
        via_group: set[int] = set()  # same_story only as a member of the query's group (probability under 0.5)
        while True:
            scores, rows = index.search(qvec[None, :], fetch)
            cands = np.array(list(dict.fromkeys(int(r) for r in [*rows[0], *own] if r >= 0 and r != exclude)),
                             dtype=np.int64)
            arts = self.db.articles_by_rowid(cands.tolist())
            keep = np.array([allowed(arts[r]) for r in cands.tolist()], dtype=bool)
            cands = cands[keep] if cands.size else cands
            gof = self.db.groups_of(cands.tolist())
            sims, tier_of, prob_of = self._score_many(query, cands, arts)
            entries: dict[str, tuple[float, str, int]] = {}
            others: dict[str, list[tuple[float, str, int]]] = {}
            for r, sim, tier, prob in zip(cands.tolist(), sims.tolist(), tier_of.tolist(), prob_of.tolist(),
                                          strict=True):
                gid = gof.get(r)
                in_own = qgroup is not None and gid == qgroup
                if sim < t.related and not in_own:
                    continue
                tier = "same_story" if tier in ("duplicate", "same_story") or in_own else "related"
                if tier == "same_story" and prob < 0.5:
                    via_group.add(r)
                key = gid or f"\x00{r}"
                others.setdefault(key, []).append((sim, tier, r))
                if key not in entries or sim > entries[key][0]:
                    entries[key] = (sim, tier, r)
            # stop when enough entries are found, the index is exhausted, or the ranking has fallen below the
            # related threshold (what lies further down can only be related through its headline alone)
            if len(entries) >= wanted or fetch >= len(index) or scores[0, -1] < t.related:
                break
            fetch *= 4
        ranked = sorted(entries.items(), key=lambda kv: (-kv[1][0], arts[kv[1][2]].id))
        if opts.shapes_list:
            rows_ranked = np.array([r for _, (_, _, r) in ranked], dtype=np.int64)
            vecs = self.vectors(rows_ranked) if opts.diversity > 0 and len(rows_ranked) else None
            picks = select([s for _, (s, _, _) in ranked], [arts[r].source for _, (_, _, r) in ranked], vecs, k,
                           opts.per_source, opts.diversity)
            best = [ranked[p] for p in picks]
        else:
            best = ranked[:k]
        items = []
        for key, (sim, tier, r) in best:
            a = arts[r]
            also: list[dict] = []
            gid = None if key.startswith("\x00") else key
            if gid is not None:
                members = self.db.group_members(gid)
                others_art = self.db.articles_by_rowid(m for m, *_ in members)
                also = [{"id": o.id, "source": o.source, "url": o.url}
                        for m, *_ in members if m not in (r, exclude) and allowed(o := others_art[m])]
            items.append({"id": a.id, "score": round(sim, 4), "tier": tier,
                          **({"via": "group"} if r in via_group else {}), "also_in": also, "title": a.title,
                          "source": a.source, "url": a.url, "published": a.published, "lang": a.lang, "group": gid})
            if alternates:
                # the group's members in also_in order (shown one included), for a later filter's fallback
                items[-1]["members"] = [others_art[m].id for m, *_ in members if m != exclude] if gid else []
                items[-1]["alternates"] = [{"id": arts[o].id, "score": round(s, 4), "tier": ot,
                                            **({"via": "group"} if o in via_group else {})}
                                           for s, ot, o in sorted(others[key], key=lambda x: (-x[0], arts[x[2]].id))
                                           if o != r]
        return {"query": article_id, "related": items}

    def vectors(self, rowids, exact: bool = False) -> np.ndarray:
        """Index-layout vectors ([lead, headline] weighted) of stored articles, from the index: exact for the
        flat and HNSW kinds, 8-bit codes (inner products within about ±0.002) for IVF, which ``related``
        accepts for speed (reading float32 embeddings from SQLite cost 14 ms per query at a million
        articles). ``exact``: from the stored float32 embeddings whatever the index (``compare``)."""
        if exact:
            lead, title = self.db.vectors_by_rowid([int(r) for r in rowids], self.config.model_id)
            return index_vectors(lead, title, self.thresholds.title_weight)
        return self.index.vectors_of(np.asarray(rowids, dtype=np.int64))

    def _score_many(self, query: Query, rows: np.ndarray,
                    arts: dict[int, StoredArticle]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Topical similarity (the ranking score), tier and same-story probability of a query against many
        stored articles at once."""
        if rows.size == 0:
            return np.zeros(0), np.zeros(0, dtype=str), np.zeros(0)
        scorer = self._local_scorer(rows.tolist(), arts, query, terms=False)
        terms = [np.frombuffer(arts[r].terms, np.uint32) for r in rows.tolist()]
        idf, rare_idf = self._idf()
        tfidf, rare = tfidf_cosines(query.terms, terms, idf, rare_idf)
        f = scorer.features(np.zeros(len(rows), dtype=np.int64), np.arange(1, len(rows) + 1), tfidf=tfidf, rare=rare)
        t, m = self.thresholds, self.model
        topic = topical(semantic_similarity(f["lead"], f["title"], t.title_weight), f["tfidf"], f["unreadable"])
        z = pair_logits(**f, t=t, m=m)
        return (topic, tiers(z, topic, f["jaccard"], f["same_content"], t, m),
                similarity_from(z, f["jaccard"], f["same_content"], t))

    def _local_scorer(self, rows: list[int], arts: dict[int, StoredArticle], query: Query | None = None,
                      exact: bool = False, terms: bool = True) -> PairScorer:
        """A PairScorer over some stored articles (after ``query``, when given), with the store's term
        statistics; vectors from the index (``exact``: from the stored float32 embeddings, see :meth:`vectors`).
        ``terms=False``: no TF-IDF matrices (the caller gives those cosines to ``features``)."""
        v = self.vectors(rows, exact=exact)
        sigs = [np.frombuffer(arts[r].signature, np.uint32) for r in rows]
        term_rows = [np.frombuffer(arts[r].terms, np.uint32) for r in rows]
        hashes = [arts[r].content_hash for r in rows]
        langs = [arts[r].lang for r in rows]
        published = [arts[r].published_ts for r in rows]
        numbers = [arts[r].number_codes() for r in rows]
        if query is not None:
            v = np.vstack([query.vector[None, :], v])
            sigs, term_rows, numbers = [query.signature, *sigs], [query.terms, *term_rows], [query.numbers, *numbers]
            hashes, langs, published = [query.content_hash, *hashes], [query.lang, *langs], [query.published, *published]
        lead, title = split_index_vectors(v, self.thresholds.title_weight)
        idf, rare_idf = self._idf()
        tfidf, rare = (tfidf_matrix(term_rows, idf), tfidf_matrix(term_rows, rare_idf)) if terms else (None, None)
        return PairScorer(lead, title, np.vstack(sigs), hashes, tfidf, rare,
                          [n_tokens(t) for t in term_rows], langs, self.thresholds, self.model,
                          np.array([np.nan if p is None else p for p in published], dtype=np.float64), numbers,
                          self.languages)

    def _idf(self) -> tuple[np.ndarray, np.ndarray]:
        """IDF weights (all terms, rare terms) from the document frequencies of the last grouping; cached."""
        gen = self.db.get_meta("groups_generation")
        if getattr(self, "_idf_generation", None) != gen:
            blob = self.db.get_blob("term_df")
            if blob is None:
                df = document_frequencies(
                    [np.frombuffer(t, np.uint32) for (t,) in self.db.conn.execute("SELECT terms FROM articles")])
                n = self.db.count()
            else:
                terms, counts = unpack(np.frombuffer(blob, dtype=np.uint32))
                df = np.zeros(N_FEATURES, dtype=np.int32)
                df[terms] = counts
                n = int(self.db.get_meta("term_df_docs", "0") or 0)
            self._idf_cache = (idf_weights(df, n), idf_weights(df, n, self.model.rare_df))
            self._idf_generation = gen
        return self._idf_cache

    def compare(self, id1: str, id2: str) -> dict:
        """Similarity, tier and the evidence behind them for two stored articles."""
        self._ensure_groups()
        a, b = (self.db.article(i) for i in (id1, id2))
        for i, x in ((id1, a), (id2, b)):
            if x is None:
                raise NotFoundError(f"no article with id '{i}' in {self.path}")
        scorer = self._local_scorer([a.rowid, b.rowid], {a.rowid: a, b.rowid: b}, exact=True)
        f = scorer.features(np.array([0]), np.array([1]))
        ev = PairEvidence(lead_cosine=float(f["lead"][0]), title_cosine=float(f["title"][0]),
                          jaccard=float(f["jaccard"][0]), tfidf_cosine=float(f["tfidf"][0]),
                          rare_cosine=float(f["rare"][0]),
                          years_jaccard=float(f["years_jaccard"][0]), years_conflict=bool(f["years_conflict"][0]),
                          numbers_jaccard=float(f["numbers_jaccard"][0]),
                          numbers_conflict=bool(f["numbers_conflict"][0]),
                          shared_numbers=tuple(number_text(int(c)) for c in np.intersect1d(
                              a.number_codes(), b.number_codes())),
                          min_tokens=int(f["min_tokens"][0]), cross_lingual=bool(f["cross_lingual"][0]),
                          unreadable=bool(f["unreadable"][0]),
                          same_content=bool(f["same_content"][0]),
                          date_gap_days=None if np.isnan(f["date_gap"][0]) else float(f["date_gap"][0]))
        t, m = self.thresholds, self.model
        out = {"id1": id1, "id2": id2, "similarity": round(ev.similarity(t, m), 4), "tier": ev.tier(t, m),
               "evidence": ev.to_dict(t, m)}
        if ev.unreadable:
            langs = sorted({x.lang for x in (a, b) if not reads(self.languages, x.lang)})
            out["note"] = (f"the embedding model ({self.config.model_id}) does not read {', '.join(langs)}: "
                           "no semantic verdict, lexical evidence only")
        return out

    def evaluate(self, gold: dict[str, str], pairs: list[tuple[str, str, float]] | None = None,
                 lower_is_similar: bool = False, split: float | None = None) -> dict:
        """Score the current groups against gold labels (and the pair similarity against rated pairs)."""
        from .evaluate import adjusted_rand_index, bcubed, pairwise, pearson, roc_auc, spearman

        result = self.dedup()
        predicted = {m["id"]: g["group"] for g in result["groups"] for m in g["members"]}
        predicted.update({s: f"\x00{s}" for s in result["singletons"]})
        missing = sorted(i for i in gold if i not in predicted)
        present = {i: v for i, v in gold.items() if i in predicted}
        out: dict = {"gold_items": len(gold), "evaluated": len(present), "missing_from_store": missing[:20],
                     "n_missing": len(missing)}
        if present:
            groups = {predicted[i] for i in present}
            gold_sizes = Counter(present.values())
            out |= {"bcubed": bcubed(predicted, present), "pairwise": pairwise(predicted, present),
                    "adjusted_rand_index": adjusted_rand_index(predicted, present),
                    "groups": sum(1 for g in groups if not g.startswith("\x00")),
                    "singletons": sum(1 for g in groups if g.startswith("\x00")),
                    "gold_groups": sum(1 for n in gold_sizes.values() if n > 1),
                    "gold_singletons": sum(1 for n in gold_sizes.values() if n == 1)}
        if pairs:
            scored = self.score_pairs(pairs)
            ok = [(p["similarity"], p["human"]) for p in scored if p["similarity"] is not None]
            human = [-h if lower_is_similar else h for _, h in ok]
            ours = [s for s, _ in ok]
            out["pairs"] = {"n": len(pairs), "scored": len(ok), "not_in_store": len(pairs) - len(ok),
                            "pearson": pearson(ours, human), "spearman": spearman(ours, human)}
            if split is not None:
                positive = [h <= split if lower_is_similar else h >= split for _, h in ok]
                out["pairs"] |= {"split": split, "positives": sum(positive), "roc_auc": roc_auc(ours, positive)}
        return out

    def calibrate(self, gold: dict[str, str], fitted_on: str = "") -> dict:
        """Refit the same-story model on this store's labelled articles, save it in the store, regroup."""
        from .calibrate import fit_story_model
        from .cluster.model import MODEL_FILE

        with self._write_lock():
            data = self.db.all_for_grouping(self.config.model_id)
            ids = {r: i for r, i, _, _ in self.db.facts()}
            labels = [gold.get(ids[int(r)]) for r in data.rowids]
            scorer, _ = self._grouping_scorer(data)
            model = fit_story_model(scorer, labels, fitted_on or "user labels")
            atomic_write_text(self.path / MODEL_FILE, model.to_json())
            self.model = model
            self._idf_generation = None
            self._regroup(full=True)
            self._save_index()
        return {"model": str(self.path / MODEL_FILE), "labelled": sum(x is not None for x in labels),
                "group_threshold": model.group_threshold, "group_floor": model.group_floor,
                "regimes_fitted": model.metrics.get("regimes_fitted", []),
                "regimes": {name: {"coef": dict(zip(model.features, r.coef, strict=True)), "intercept": r.intercept}
                            for name, r in model.regimes.items()},
                "in_sample": model.metrics.get("bcubed_in_sample")}

    def score_pairs(self, pairs: Iterable[tuple[str, str, float | None]]) -> list[dict]:
        """Similarity and tier for each (id1, id2[, human score]); unknown ids give similarity None."""
        out = []
        for id1, id2, human in pairs:
            try:
                c = self.compare(id1, id2)
            except NotFoundError as e:
                out.append({"id1": id1, "id2": id2, "similarity": None, "tier": None, "human": human,
                            "error": str(e)})
                continue
            out.append({**c, "human": human})
        return out

    def article(self, article_id: str) -> dict:
        a = self.db.article(article_id)
        if a is None:
            raise NotFoundError(f"no article with id '{article_id}' in {self.path}")
        return {**a.to_public(), "text": a.text}

    def stats(self) -> dict:
        """Counts, model, index and sizes on disk."""
        self._ensure_groups()
        c = self.db.conn
        n = self.db.count()
        grouped = c.execute("SELECT count(*) FROM group_members").fetchone()[0]
        langs = dict(c.execute("SELECT coalesce(lang, 'unknown'), count(*) FROM articles GROUP BY 1 ORDER BY 2 DESC"))
        files = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        return {
            "store": str(self.path), "format_version": self.config.format_version,
            "articles": n, "groups": c.execute("SELECT count(*) FROM groups").fetchone()[0],
            "articles_in_groups": grouped, "singletons": n - grouped,
            "sources": c.execute("SELECT count(DISTINCT source) FROM articles").fetchone()[0],
            "languages": langs, "model": self.config.model_id, "dim": self.config.dim,
            "model_languages": None if self.languages is None else sorted(self.languages),
            "not_read": {lang: n for lang, n in langs.items() if lang != "unknown" and not reads(self.languages, lang)},
            "index": {"setting": self.config.index_type, "type": self.index.index_type, "metric": self.config.metric,
                      "vectors": len(self.index), "tombstones": self.index.tombstones,
                      "rebuilt": self.index_rebuilt},
            "cached_embeddings": c.execute("SELECT count(*) FROM embeddings").fetchone()[0],
            "thresholds": self.thresholds.to_dict(),
            "bytes_on_disk": sum(files.values()), "files": files,
        }


def _check_records(records: Iterable[Record], fail: bool, show: int = 20) -> int:
    """Count the records; with ``fail``, raise InputError naming every problem and repeated id (the first
    ``show`` of them) once the whole input is read."""
    total = 0
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    n_problems = 0
    for rec in records:
        total += 1
        if fail:
            problem = rec if isinstance(rec, Problem) else _duplicate_problem(rec, seen)
            if problem is not None:
                n_problems += 1
                if len(problems) < show:
                    problems.append(problem)
    if problems:
        raise InputError(problems[0], problems[1:], n_problems)
    return total


def _duplicate_problem(a: Article, seen: dict[str, str]) -> Problem | None:
    origin = a.origin or "<input>"
    if a.id in seen:
        path, _, line = origin.rpartition(":")
        return Problem(path or origin, int(line) if line.isdigit() else None, "id",
                       f"duplicate id '{a.id}' (first at {seen[a.id]})", "ids must be unique across the input")
    seen[a.id] = origin
    return None
