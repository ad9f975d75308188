"""An open store folder: its settings (``config.json``, the same-story model), the SQLite database and the FAISS
index over the stored embeddings, which is derived data: loaded when the saved file is whole and current,
rebuilt from the database otherwise."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..cluster import StoryModel, Thresholds
from ..cluster.model import MODEL_FILE
from ..embed import model_languages as languages_read
from ..embed.layout import VectorLayout
from ..errors import StoreError
from ..language import reads
from ..lexical import N_FEATURES, document_frequencies, idf_weights, unpack
from ..results import IndexStats, RelatedListsStats, Stats
from .database import Database
from .folder import DATABASE, INDEX, StoreConfig, WriteLock, checksum_matches, file_checksum
from .vector_index import VectorIndex, choose_index, sample_ids


class Store:
    """The parts of a store folder, opened. ``new_config``: the settings of a store to create when the folder
    holds none (None: the folder must hold a store); ``model_id``: the embedding model the caller will use,
    checked against the store's."""

    def __init__(self, path: str | Path, new_config: Callable[[], StoreConfig] | None = None,
                 model_id: str | None = None, thresholds: Thresholds | None = None) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: is a file, not a store folder; give --store a folder (a new one is "
                             "created)")
        config = StoreConfig.read(self.path) if self.path.is_dir() else None
        if config is None:
            if new_config is None:
                raise StoreError(f"{self.path}: no store here; create one with 'storycluster add FILE' "
                                 "or point --store / STORYCLUSTER_STORE at an existing store")
            config = new_config()
            self.path.mkdir(parents=True, exist_ok=True)
            config.write(self.path)
        elif model_id is not None and model_id != config.model_id:
            raise StoreError(f"{self.path}: this store was built with model '{config.model_id}', not "
                             f"'{model_id}'; use --model {config.model_id} or a new --store")
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
        self._index_checked = False  # whether index_stale looked for a saved index left behind by a crash
        self._idf_generation: str | None = None
        self._idf_cache: tuple[np.ndarray, np.ndarray] | None = None
        #: the saved index is mapped from its file, not copied into memory (a reader among several processes)
        self.map_index = False

    @property
    def layout(self) -> VectorLayout:
        return VectorLayout(self.thresholds.title_weight)

    def close(self) -> None:
        self.db.close()

    def write_lock(self) -> WriteLock:
        """The store's write lock; a read-only store (a read-only volume) says so instead of failing half-way."""
        if self.read_only:
            raise StoreError(f"{self.path}: the store is read-only here (no write permission on the folder or on "
                             f"{DATABASE}); it can be read, not changed")
        return WriteLock(self.path)

    def bump_generation(self) -> None:
        self.db.set_meta("generation", str(self.db.generation + 1))

    def set_model(self, model: StoryModel) -> None:
        self.model = model
        self._idf_generation = None  # the rare-term weights depend on the model's rare_df

    # -- the vector index ----------------------------------------------------------------------
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

    def index_holds_commit(self) -> None:
        """The in-memory index holds what the last commit wrote (a write added its vectors as it went)."""
        self._index_generation = self.db.generation

    def forget_index(self) -> None:
        """Drop the in-memory index (it may hold vectors of a rolled-back write); the next use loads it again."""
        self._index = None

    def index_saved(self) -> bool:
        """Whether the saved index file holds the generation this connection reads (what another process
        reading the same state can load)."""
        config = StoreConfig.read(self.path) or self.config
        return (self.path / INDEX).exists() and config.index_generation == self.db.generation

    @contextmanager
    def index_mapped(self) -> Iterator[None]:
        """Meanwhile the saved index is mapped from its file, not held in memory: processes that read it
        (``recommend``'s workers) share its pages. Only for reading: nothing may write meanwhile."""
        from ..memory import release_free_memory

        self.forget_index()
        release_free_memory()  # the copy it held, back to the system
        self.map_index = True
        try:
            yield
        finally:
            self.map_index = False
            self.forget_index()

    def _load_index(self, path: Path) -> VectorIndex:
        """The saved index when it is whole and matches the database (checksum as written, one vector per stored
        article, the store's dimension); otherwise the index is rebuilt from the stored embeddings (it is derived
        data) and ``index_rebuilt`` says why (``stats`` shows it; the next write saves the rebuilt one)."""
        if self.config.index_checksum and not checksum_matches(path, self.config.index_checksum):
            return self._rebuild_index(f"{path.name} changed since it was written (checksum)")
        try:
            index = VectorIndex.load(path, mapped=self.map_index)
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

    def save_index(self) -> None:
        """Write the index (compacted or of another kind when due) and record its generation and checksum."""
        gen = self.db.generation
        index = self.rebuild_index()
        index.save(self.path / INDEX)
        self.config.index_generation = gen
        self.config.index_checksum = file_checksum(self.path / INDEX)
        self.config.write(self.path)
        self.index_rebuilt = None

    def rebuild_index(self) -> VectorIndex:
        """The index, compacted or rebuilt as the configured kind when due (it grew past the ANN size, holds
        tombstones, or its IVF lists drifted); not saved."""
        index = self.index
        kind = choose_index(self.config.index_type, len(index))
        if kind != index.index_type or index.needs_rebuild():
            self._index = index = index.compacted(kind)
        return index

    def index_stale(self, peek: bool = False) -> bool:
        """The saved index is missing or older than the database: checked at this instance's first read only (a
        write killed between its two commits is found at the next open; the per-request path reads no file).
        ``peek``: a stale index found is left to the next check (the one that repairs it)."""
        if self._index_checked:
            return False
        stale = self.config.index_generation != self.db.generation or not (self.path / INDEX).exists()
        self._index_checked = not (peek and stale)
        return stale

    def vectors(self, rowids, exact: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """Index-layout vectors of stored articles, from the index: exact for the flat and HNSW kinds, 8-bit
        codes (inner products within about ±0.002) for IVF, which queries accept for speed. ``exact``: from the
        stored float32 embeddings whatever the index (``compare``). ``out``: the index's vectors written into
        that (len(rowids), dim) float32 array, which is returned."""
        if exact:
            lead, title = self.db.vectors_by_rowid([int(r) for r in rowids], self.config.model_id)
            return self.layout.combine(lead, title)
        return self.index.vectors_of(np.asarray(rowids, dtype=np.int64), out=out)

    def idf(self) -> tuple[np.ndarray, np.ndarray]:
        """IDF weights (all terms, rare terms) from the document frequencies of the last full regrouping (so that
        a pair scores the same between two full regroupings, in every answer and every stored list); cached."""
        gen = self.db.get_meta("groups_generation")
        if self._idf_cache is None or self._idf_generation != gen:
            frozen = self.db.scoring_df()
            blob = self.db.get_blob("term_df")
            if frozen is not None:
                df, n = frozen
            elif blob is None:
                df = document_frequencies(list(self.db.all_terms()))
                n = self.db.count()
            else:
                terms, counts = unpack(np.frombuffer(blob, dtype=np.uint32))
                df = np.zeros(N_FEATURES, dtype=np.int32)
                df[terms] = counts
                n = int(self.db.get_meta("term_df_docs", "0") or 0)
            self._idf_cache = (idf_weights(df, n), idf_weights(df, n, self.model.rare_df))
            self._idf_generation = gen
        return self._idf_cache

    def stats(self) -> Stats:
        """Counts, model, index and sizes on disk."""
        from ..related.stored import due as stored_lists_pending
        from ..related.stored import fresh as stored_lists_current

        s = self.db.summary()
        n, langs = s["articles"], s["languages"]
        files = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        return Stats(
            store=str(self.path), format_version=self.config.format_version,
            articles=n, groups=s["groups"],
            articles_in_groups=s["articles_in_groups"], singletons=n - s["articles_in_groups"],
            sources=s["sources"], languages=langs, model=self.config.model_id, dim=self.config.dim,
            model_languages=None if self.languages is None else sorted(self.languages),
            not_read={lang: c for lang, c in langs.items() if lang != "unknown" and not reads(self.languages, lang)},
            index=IndexStats(setting=self.config.index_type, type=self.index.index_type, metric=self.config.metric,
                             vectors=len(self.index), tombstones=self.index.tombstones, rebuilt=self.index_rebuilt),
            cached_embeddings=s["cached_embeddings"],
            related_lists=RelatedListsStats(stored=self.db.related_count(), current=stored_lists_current(self),
                                            pending=stored_lists_pending(self),
                                            max_articles=self.config.related_lists_max),
            thresholds=self.thresholds.to_dict(),
            bytes_on_disk=sum(files.values()), files=files,
        )
