"""Where the server's answers come from: a store folder (read and write) or PostgreSQL (read only, see
:mod:`storycluster.server.pg`). Both give the same dicts as :class:`storycluster.Archive`."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from .. import queries
from ..archive import Archive
from ..embed import Embedder
from ..errors import InputError, NotFoundError, Problem, StoreError
from ..ingest import HINT_FIX, from_objects
from ..parallel import cores
from ..ranking import RelatedOptions
from ..related.stored import answers_stored, due
from ..results import Group, GroupsPage, Related
from ..writes import InputIds


class Backend(Protocol):
    writable: bool

    def related(self, article_id: str, k: int, options: RelatedOptions) -> Related: ...
    def list_version(self, article_id: str) -> str | None: ...
    def related_listed(self, article_id: str, k: int, options: RelatedOptions) -> Related | None: ...
    def related_text(self, title: str, text: str, lang: str | None, k: int, options: RelatedOptions) -> Related: ...
    def article(self, article_id: str) -> dict: ...
    def groups(self, limit: int, offset: int) -> GroupsPage: ...
    def group(self, group_id: str) -> Group: ...
    def health(self) -> dict: ...
    def generation(self) -> str: ...
    def snapshot(self) -> AbstractContextManager[None]: ...
    def quick_snapshot(self) -> AbstractContextManager[bool]: ...
    def add(self, rows: list[dict]) -> dict: ...
    def remove(self, article_id: str) -> bool: ...
    def build_lists(self, stop: Callable[[], bool]) -> int: ...
    def read_threads(self) -> int: ...
    def close(self) -> None: ...


class StoreBackend:
    """A store folder served to many threads.

    Reads go through a small pool of :class:`Archive` readers, each request inside one read transaction
    (:meth:`Archive.reading`), so an add committing meanwhile, here or in another process, is never seen
    half-way. Writes go through one writer, one at a time. All share one embedder (the model loads once).
    """

    writable = True

    def __init__(self, path: str | Path, readers: int | None = None, embedder: Embedder | None = None) -> None:
        self.path = Path(path)
        first = Archive(self.path, create=False, embedder=embedder)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._pool: queue.Queue[Archive] = queue.Queue()
        self._pool.put(first)
        for _ in range((readers or min(4, os.cpu_count() or 2)) - 1):
            self._pool.put(Archive(self.path, create=False, embedder=embedder))
        self._all = list(self._pool.queue)
        self._writer: Archive | None = None
        self._local = threading.local()  # the reader a snapshot() holds on this thread
        self._write_lock = threading.Lock()

    def _shared_embedder(self, archive: Archive) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = archive.embedder
            return self._embedder

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads of this thread inside the block share one reader and its snapshot (a request's ETag and its
        answer come from the same state); inside another snapshot, that one's."""
        if getattr(self._local, "archive", None) is not None:
            yield
            return
        with self._reader() as archive:
            self._local.archive = archive
            try:
                yield
            finally:
                self._local.archive = None

    @contextmanager
    def quick_snapshot(self) -> Iterator[bool]:
        """:meth:`snapshot` for an answer made on the event loop, which must not wait: True inside a snapshot when
        a reader is free now and the store needs no repair before reading (a write that stopped half-way), else
        False and nothing held (the caller answers on a thread)."""
        try:
            archive = self._pool.get_nowait()
        except queue.Empty:
            yield False
            return
        try:
            if not archive.ready_to_read():
                yield False
                return
            with self._no_paths(), archive.reading(repair=False):
                self._local.archive = archive
                try:
                    yield True
                finally:
                    self._local.archive = None
        finally:
            self._pool.put(archive)

    @contextmanager
    def _reader(self) -> Iterator[Archive]:
        held = getattr(self._local, "archive", None)
        if held is not None:  # inside snapshot(): the same reader, the same read transaction
            yield held
            return
        archive = self._pool.get()
        try:
            if not archive.embedder_loaded:  # the model loads once, for all readers
                archive.embedder = self._shared_embedder(archive)
            with self._no_paths(), archive.reading():
                yield archive
        finally:
            self._pool.put(archive)

    @contextmanager
    def _no_paths(self) -> Iterator[None]:
        """Errors as answers say what is wrong, not where the store lives on the server's disk."""
        try:
            yield
        except (NotFoundError, StoreError) as e:
            raise type(e)(without_path(str(e), self.path)) from None

    def related(self, article_id: str, k: int, options: RelatedOptions) -> Related:
        with self._reader() as a:
            return a.related(article_id, k=k, options=options)

    def list_version(self, article_id: str) -> str | None:
        """Changes whenever the answers of an article's stored related list may change (for their ETags: an add
        elsewhere in the store leaves them); None where the store keeps no current list for it."""
        with self._reader() as a:
            gen = queries.list_version(a.store, article_id)
            return None if gen is None else f"{gen}.{a.model.fitted_at}"

    def related_listed(self, article_id: str, k: int, options: RelatedOptions) -> Related | None:
        """:meth:`related` when the stored list alone answers it, else None."""
        with self._reader() as a:
            return queries.related_listed(a.store, article_id, k, options)

    def related_text(self, title: str, text: str, lang: str | None, k: int, options: RelatedOptions) -> Related:
        with self._reader() as a:
            return a.related(text=text, title=title, lang=lang, k=k, options=options)

    def article(self, article_id: str) -> dict:
        with self._reader() as a:
            return a.article(article_id)

    def groups(self, limit: int, offset: int) -> GroupsPage:
        with self._reader() as a:
            return a.groups(limit=limit, offset=offset)

    def group(self, group_id: str) -> Group:
        with self._reader() as a:
            return a.group(group_id)

    def health(self) -> dict:
        with self._reader() as a:
            n = a.db.count()
            lists = "stored" if answers_stored(a.store, n) else "pending" if due(a.store) else "computed"
            return {"status": "ok", "backend": "store", "articles": n,
                    "generation": a.db.generation, "model": a.config.model_id, "related_lists": lists}

    def generation(self) -> str:
        """Changes whenever what the API answers may change (for ETags)."""
        with self._reader() as a:
            return f"{a.db.generation}.{a.db.get_meta('groups_generation')}.{a.model.fitted_at}"

    def add(self, rows: list[dict]) -> dict:
        """Validate every record first (nothing is written when one is bad), then add them. The same record twice in
        a batch is stored once (``repeated``, as ``add`` counts it); the same id with other fields is an error."""
        articles = []
        ids = InputIds()
        notices: list[str] = []
        for result in from_objects(rows, notices, "articles", "send a list of article objects"):
            if isinstance(result, Problem):  # the CLI's hint (--on-error skip) means nothing here
                raise InputError(replace(result, hint=result.hint.replace(HINT_FIX, "fix the record; nothing of "
                                                                                  "this batch was stored")))
            if isinstance(verdict := ids.check(result), Problem):
                raise InputError(verdict)
            articles.append(result)
        with self._write_lock, self._no_paths():
            report = self._get_writer().add(articles, lists=False)
        report.notices += notices
        return report.to_dict()

    def remove(self, article_id: str) -> bool:
        with self._write_lock, self._no_paths():
            removed, _ = self._get_writer().remove([article_id], lists=False)
        return bool(removed)

    def build_lists(self, stop: Callable[[], bool]) -> int:
        """The related lists that a write's full regrouping left pending (:meth:`Archive.build_lists`): a write
        answers once its groups are committed, and the server builds them afterwards, on the write lane (about
        14 minutes at a million articles; answers are computed meanwhile). ``stop``: the server is stopping;
        the build stops at its next part and the lists stay pending."""
        with self._write_lock, self._no_paths():
            return self._get_writer().build_lists(stop)

    def read_threads(self) -> int:
        """Threads that suit reads now: one where answers come from current stored lists (Python under the GIL,
        where more threads taking turns answer fewer requests), else one per core (computed answers wait in
        FAISS and numpy, outside it)."""
        with self._reader() as a:
            return 1 if answers_stored(a.store) else cores()

    def _get_writer(self) -> Archive:
        if self._writer is None:
            self._writer = Archive(self.path, create=False)
        if not self._writer.embedder_loaded:
            self._writer.embedder = self._shared_embedder(self._writer)
        return self._writer

    def close(self) -> None:
        for a in self._all + ([self._writer] if self._writer else []):
            a.close()


def without_path(message: str, path: Path) -> str:
    """``message`` with the store's folder taken out where a message names it (`` in PATH``, ``PATH/file``, a
    ``PATH`` standing alone: "the store"), as given and as absolute. Only whole occurrences: a short folder name
    inside a word or inside a quoted id is left alone (a store at ``s`` must not turn "ids" into "idthe store")."""
    import re

    for where in dict.fromkeys([str(path), str(path.absolute())]):
        p = re.escape(where)
        message = re.sub(rf" in {p}(?=$|[\s;:,.])", "", message)
        message = re.sub(rf"(?:^|(?<=[\s(])){p}/", "", message)
        message = re.sub(rf"(?:^|(?<=[\s(])){p}(?=$|[\s;:,)])", "the store", message)
    return message
