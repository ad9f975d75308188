"""The Archive: a store folder of articles that can be added to, deduplicated and asked for related articles.
A facade over the pipeline's modules (:mod:`.writes`, :mod:`.regroup`, :mod:`.queries`, :mod:`.evaluate`,
:mod:`.calibrate`) and the open store (:class:`~storycluster.store.store.Store`); the CLI and the server call it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import queries
from .cluster import StoryModel, Thresholds
from .embed import Embedder, get_embedder, model_id_for
from .featurize import Prepared
from .ingest import DEFAULT_MAX_TEXT_BYTES, Record, from_objects, read_paths
from .ranking import RelatedOptions
from .regroup import RegroupReport, ensure_groups, needs_repair
from .results import Change, Comparison, Dedup, Group, GroupsPage, Related, ScoredPair, Stats
from .store import Database, StoreConfig, VectorIndex
from .store.folder import atomic_write_text
from .store.store import Store
from .store.vector_index import choose_index
from .writes import AddReport, Progress, Writer, check_records

__all__ = ["AddReport", "Archive"]


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
        if index_type is not None:
            choose_index(index_type, 0)  # a clear error for an unknown kind
        self._embedder = embedder

        def new_config() -> StoreConfig:
            e = self._embedder = embedder or get_embedder(model)
            return StoreConfig(model_id=e.model_id, dim=e.dim, thresholds=(thresholds or Thresholds()).to_dict(),
                               index_dim=2 * e.dim, index_type=index_type or "auto", model_languages=model_languages)

        wanted = embedder.model_id if embedder is not None else (model_id_for(model) if model else None)
        self.store = Store(path, new_config if create else None, wanted, thresholds)
        self._on_stage: Callable[[str], None] | None = None  # add's progress display, while it runs
        self._writer = Writer(self.store, self._embed, self._stage)
        self._writer.fill_numbers()

    # -- the store's parts -------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def db(self) -> Database:
        return self.store.db

    @property
    def config(self) -> StoreConfig:
        return self.store.config

    @property
    def thresholds(self) -> Thresholds:
        return self.store.thresholds

    @property
    def model(self) -> StoryModel:
        return self.store.model

    @property
    def languages(self) -> frozenset[str] | None:
        """Languages the embedding model reads (None: all); articles in others get lexical evidence only."""
        return self.store.languages

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    @property
    def index(self) -> VectorIndex:
        return self.store.index

    @property
    def index_rebuilt(self) -> str | None:
        """Why the saved index.faiss was not used and was rebuilt from the database (None: it was)."""
        return self.store.index_rebuilt

    @property
    def last_regroup(self) -> RegroupReport | None:
        """What this instance's last regrouping did."""
        return self._writer.last_regroup

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._stage("loading the model")
            self._embedder = get_embedder(self.config.model_id)
            self._stage("adding")
        return self._embedder

    @embedder.setter
    def embedder(self, embedder: Embedder) -> None:
        """Use an embedder already loaded (the server's readers share one); it must be the store's model."""
        if embedder.model_id != self.config.model_id:
            raise ValueError(f"the store's model is '{self.config.model_id}', not '{embedder.model_id}'")
        self._embedder = embedder

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stage(self, name: str) -> None:
        if self._on_stage is not None:
            self._on_stage(name)

    def _embed(self, prepared: list[Prepared], report: AddReport | None = None, cache: bool = True) -> np.ndarray:
        """Index vectors (lead and headline views combined) of prepared articles."""
        before = self.embedder.n_embedded
        n = len(prepared)
        both = self.embedder.embed([p.embed_input for p in prepared] + [p.title_input for p in prepared],
                                   cache=self.db if cache else None)
        if report is not None:
            report.embedded += self.embedder.n_embedded - before
        return self.store.layout.combine(both[:n], both[n:])

    # -- writing -------------------------------------------------------------------------------
    def add_paths(self, paths: Iterable[str | Path | tuple[Path, str]], on_error: str = "fail",
                  max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES, progress: Progress | None = None,
                  on_total: Callable[[int], None] | None = None,
                  on_stage: Callable[[str], None] | None = None, atomic: bool = True) -> AddReport:
        """Read files or folders and add their articles (see :meth:`add`). In ``fail`` mode the input is checked in
        full first, so a bad record stops the add before anything is written."""
        paths = [p if isinstance(p, tuple) else Path(p) for p in paths]  # (path, name in messages): a copy of stdin
        total = check_records(read_paths(paths, max_text_bytes), fail=on_error == "fail")
        if on_total is not None:
            on_total(total)
        notices: list[str] = []
        report = self.add(read_paths(paths, max_text_bytes, notices), on_error=on_error, progress=progress,
                          on_stage=on_stage, atomic=atomic)
        report.notices[:0] = notices
        return report

    def add(self, records: Iterable[Record | Mapping], on_error: str = "fail", progress: Progress | None = None,
            on_stage: Callable[[str], None] | None = None, atomic: bool = True, lists: bool = True) -> AddReport:
        """Add or update articles: :class:`Article` objects, or dicts with a file record's fields (validated as a
        file's are: a bad one is a problem named ``records[i]``, unknown fields a notice). Unchanged articles cost
        nothing; changed ones are re-embedded (unless their normalized text was seen before) and regrouped.
        Problems raise in ``fail`` mode and are collected in the report in ``skip`` mode; in ``fail`` mode a list
        is checked in full before anything is written, a stream up to the bad record. ``atomic``: one
        transaction, regrouping included, so readers see the whole add, grouped, or nothing of it; else commits
        every 256 records (a crash keeps those). ``on_stage``: told what the add is doing ("adding", "loading
        the model", "grouping"), for a progress display. ``lists``: when the add made a large store regroup in
        full, also build its related lists before returning (about 14 minutes at a million articles); with
        ``False`` they stay pending, answers are computed meanwhile, and :meth:`build_lists` builds them."""
        self._on_stage = on_stage
        notices: list[str] = []
        items = from_objects(records, notices)
        try:
            report = self._writer.add(list(items) if isinstance(records, list | tuple) else items, on_error,
                                      progress, atomic, lists)
        finally:
            self._on_stage = None
        report.notices += notices
        return report

    def remove(self, ids: Iterable[str], lists: bool = True) -> tuple[list[str], list[str]]:
        """Remove articles; returns (removed ids, ids that were not in the store). ``lists``: as for :meth:`add`."""
        return self._writer.remove(ids, lists)

    def build_lists(self, stop: Callable[[], bool] | None = None) -> int:
        """Build the related lists that a full regrouping left pending (see :meth:`add`); returns how many (0
        when none were pending). ``stop``: asked after each part; when it answers true the build ends with
        :class:`~.writes.BuildStopped` and the lists stay pending."""
        return self._writer.build_lists(stop)

    def set_thresholds(self, **changes: float) -> bool:
        """Change store settings (e.g. ``window_days``); regroups when one changed. Returns whether it did.
        ``title_weight`` is fixed when the store is created (the index vectors are built with it)."""
        if "title_weight" in changes and changes["title_weight"] != self.thresholds.title_weight:
            raise ValueError("title_weight is fixed for a store (its index is built with it); use a new --store")
        new = replace(self.thresholds, **changes)
        if new == self.thresholds:
            return False
        with self.store.write_lock():
            self.store.thresholds = new
            self.config.thresholds = new.to_dict()
            self.config.write(self.path)
            self._writer.regroup(full=True)
        return True

    def set_index(self, index_type: str) -> bool:
        """Change the store's index setting (``auto``, ``flat``, ``hnsw``, ``ivf``), rebuild the index and
        regroup now (scores read the index's vectors, 8-bit codes in an IVF index, and the related lists kept in
        the store were computed with the old ones). Returns whether the setting changed."""
        choose_index(index_type, 0)
        if index_type == self.config.index_type:
            return False
        with self.store.write_lock():
            self.config.index_type = index_type
            self.config.write(self.path)
            self.store.rebuild_index()  # of the new kind, which the regrouping reads, then saves
            self._writer.regroup(full=True)
        return True

    def calibrate(self, gold: dict[str, str], fitted_on: str = "") -> dict:
        """Refit the same-story model on this store's labelled articles, save it in the store, regroup."""
        from .calibrate import calibrate_store, calibration_report
        from .cluster.model import MODEL_FILE

        with self.store.write_lock():
            model, labelled = calibrate_store(self.store, gold, fitted_on)
            atomic_write_text(self.path / MODEL_FILE, model.to_json())
            self.store.set_model(model)
            self._writer.regroup(full=True)
        return calibration_report(model, labelled, self.path / MODEL_FILE)

    def regroup(self, full: bool = True) -> RegroupReport:
        """Regroup now; ``full``: the whole store, which gives exactly the groups of one grouping of every stored
        article (incremental regroupings after adds may differ within a bound: :mod:`storycluster.regroup`)."""
        with self.store.write_lock():
            self._writer.regroup(full=full)
        assert self._writer.last_regroup is not None
        return self._writer.last_regroup

    # -- reading --------------------------------------------------------------------------------
    def ensure_groups(self) -> None:
        """Make the groups and the saved index current (after a write that stopped half-way); a no-op when they
        are, or while another process writes (readers then use what it last committed)."""
        ensure_groups(self.store)

    def ready_to_read(self) -> bool:
        """Whether :meth:`reading` would read at once (no repair of a write that stopped half-way first)."""
        return self.db.in_transaction or not needs_repair(self.store)

    @contextmanager
    def reading(self, repair: bool = True) -> Iterator[Archive]:
        """One consistent snapshot for several reads (a read transaction): a writer committing meanwhile,
        in this process or another, is not seen half-way. Groups are not recomputed inside. ``repair=False``:
        the caller found nothing to repair (:meth:`ready_to_read`), so none is looked for."""
        if self.db.in_transaction:
            yield self
            return
        if repair:
            self.ensure_groups()
        self.db.begin_read()
        try:
            yield self
        finally:
            self.db.rollback()

    def dedup(self) -> Dedup:
        """Every article exactly once: in a group of 2+ (representative first) or as a singleton."""
        self.ensure_groups()
        return queries.dedup(self.store)

    def changes(self, since: str) -> list[Change]:
        """What regroupings changed since ``since`` (an ISO date or time, UTC), oldest first: each
        ``{at, generation, change, group, other_groups, articles}`` (see :func:`cluster.groups.group_changes`)."""
        self.ensure_groups()
        return queries.changes(self.store, since)

    def groups(self, limit: int = 100, offset: int = 0) -> GroupsPage:
        """A page of groups (largest first, as ``dedup``), and how many there are."""
        self.ensure_groups()
        return queries.groups_page(self.store, limit, offset)

    def group(self, group_id: str) -> Group:
        """One group by id."""
        self.ensure_groups()
        return queries.group(self.store, group_id)

    def related(self, article_id: str | None = None, *, text: str | None = None, title: str = "",
                lang: str | None = None, k: int = 10, options: RelatedOptions | None = None) -> Related:
        """Top-k related articles for a stored article or for a text that is not stored. Never the article
        itself; articles of one group collapse into one entry (the best-scoring member that passes ``options``)
        whose ``also_in`` lists the group's other members that pass."""
        self.ensure_groups()
        return queries.related(self.store, article_id, text=text, title=title, lang=lang, k=k, options=options,
                               embed=lambda p: self._embed(p, cache=False))

    def related_with_alternates(self, article_id: str, k: int) -> Related:
        """:meth:`related`, each entry also listing the group's other scored candidates (``alternates``) and
        members, so that a filter applied later can fall back on them (the PostgreSQL export)."""
        self.ensure_groups()
        return queries.related(self.store, article_id, k=k, alternates=True)

    def compare(self, id1: str, id2: str) -> Comparison:
        """Similarity, tier and the evidence behind them for two stored articles."""
        self.ensure_groups()
        return queries.compare(self.store, id1, id2)

    def score_pairs(self, pairs: Iterable[tuple[str, str, float | None]]) -> list[ScoredPair]:
        """Similarity and tier for each (id1, id2[, human score]); unknown ids give similarity None."""
        self.ensure_groups()
        return queries.score_pairs(self.store, pairs)

    def evaluate(self, gold: dict[str, str] | None, pairs: list[tuple[str, str, float]] | None = None,
                 lower_is_similar: bool = False, split: float | None = None) -> dict:
        """Score the current groups against gold labels (None: no groups scored) and the pair similarity against
        rated pairs."""
        from .evaluate import evaluate_store

        scored = self.score_pairs(pairs) if pairs else None
        return evaluate_store(self.dedup() if gold is not None else None, gold, scored, lower_is_similar, split)

    def article(self, article_id: str) -> dict:
        """A stored article's record, its text included."""
        return queries.article(self.store, article_id)

    def stats(self) -> Stats:
        """Counts, model, index and sizes on disk."""
        self.ensure_groups()
        return self.store.stats()
