"""The SQLite side of a store: articles, the embedding cache, MinHash signatures, groups, per-source line
counts for boilerplate, and the archive's term document frequencies (kept current on every write). WAL mode,
so readers keep a consistent snapshot while a writer works."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import StoreError
from ..lexical import N_FEATURES, PackedNumbers, PackedTerms
from ..results import Change

SCHEMA_VERSION = 1
#: the rules that derive an article's stored forms (matching text, hashes, terms) from its record: 2 reads a body
#: of boilerplate only as the headline, cuts a site's name off headlines ("... - BBC News": the first and last
#: parts of headlines count toward an outlet's boilerplate), and folds Turkish İ to i (1: before)
DERIVATION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    rowid INTEGER PRIMARY KEY,          -- the FAISS id
    id TEXT NOT NULL UNIQUE,            -- the user's id
    title TEXT NOT NULL,
    url TEXT, source TEXT, published TEXT, published_ts REAL, lang TEXT,
    record_hash TEXT NOT NULL,          -- hash of the record as given: unchanged input is skipped
    content_hash TEXT NOT NULL,         -- hash of the normalized content without boilerplate
    embed_hash TEXT NOT NULL,           -- hash of the lead embedder input: key into embeddings
    title_hash TEXT NOT NULL,           -- hash of the headline embedder input: key into embeddings
    signature BLOB NOT NULL,            -- MinHash, uint32 x num_perm
    terms BLOB NOT NULL,                -- hashed term counts, uint32 [terms..., counts...]
    numbers BLOB,                       -- numbers the text writes, sorted uint64 codes (lexical.number_codes)
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- last: SQLite reads a row's columns in order through its overflow pages, so everything above is read
    -- without the body's pages (related and grouping never need it); stores made before keep the old order
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE TABLE IF NOT EXISTS embeddings (
    text_hash TEXT NOT NULL, model_id TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (text_hash, model_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY, representative INTEGER NOT NULL, size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    article INTEGER PRIMARY KEY, group_id TEXT NOT NULL, score REAL NOT NULL, tier TEXT NOT NULL,
    duplicate_of INTEGER                -- the member this one copies (tier duplicate), if not itself
);
CREATE INDEX IF NOT EXISTS group_members_group ON group_members(group_id);
CREATE TABLE IF NOT EXISTS pending_regroup (article INTEGER PRIMARY KEY);  -- touched since the last grouping
CREATE TABLE IF NOT EXISTS group_changes (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, generation INTEGER NOT NULL,
    kind TEXT NOT NULL,                 -- new, joined, left, split, merged, dissolved, removed
    group_id TEXT NOT NULL, other_ids TEXT NOT NULL, articles TEXT NOT NULL   -- JSON lists
);
CREATE INDEX IF NOT EXISTS group_changes_at ON group_changes(at);
CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, value BLOB NOT NULL);  -- e.g. term document frequencies
-- each article's related-list plan (storycluster.related.stored), and which articles each plan names
CREATE TABLE IF NOT EXISTS related_lists (
    article INTEGER PRIMARY KEY, floor REAL, plan TEXT NOT NULL,
    generation INTEGER NOT NULL           -- the store's generation when the list was computed
);
CREATE TABLE IF NOT EXISTS related_refs (
    ref INTEGER NOT NULL, owner INTEGER NOT NULL, PRIMARY KEY (ref, owner)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS source_lines (
    source TEXT NOT NULL, line_key INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (source, line_key)
) WITHOUT ROWID;
"""

#: articles with their lead (e) and headline (t) embeddings under model ?1
_WITH_VECTORS = ("FROM articles a "
                 "JOIN embeddings e ON e.text_hash = a.embed_hash AND e.model_id = ?1 "
                 "JOIN embeddings t ON t.text_hash = a.title_hash AND t.model_id = ?1")

#: a row id filter bound to one parameter, a JSON list of ids (:func:`_json_ids`): no 999-variable limit
_ROWID_IN = "rowid IN (SELECT value FROM json_each(?))"


def _json_ids(rowids: Iterable[int]) -> str:
    return json.dumps([int(r) for r in rowids])


ARTICLE_COLUMNS = ("rowid", "id", "title", "text", "url", "source", "published", "published_ts", "lang",
                   "record_hash", "content_hash", "embed_hash", "title_hash", "signature", "terms", "numbers")


#: group members (with their cards) a reader keeps for the snapshots of one generation: about 12 MB (ECB+:
#: 600 bytes a member)
KEPT_MEMBER_ROWS = 20_000


class Card(NamedTuple):
    """What a related list shows of an article."""

    id: str
    title: str
    url: str | None
    source: str | None
    published: str | None
    published_ts: float | None
    lang: str | None


@dataclass(slots=True)
class StoredArticle:
    rowid: int
    id: str
    title: str
    text: str
    url: str | None
    source: str | None
    published: str | None
    published_ts: float | None
    lang: str | None
    record_hash: str
    content_hash: str
    embed_hash: str
    title_hash: str
    signature: bytes
    terms: bytes
    numbers: bytes | None  # None only in a store from before numbers were kept, until Archive fills it

    def number_codes(self) -> np.ndarray:
        """The stored numbers as codes (:func:`~..lexical.number_codes`)."""
        return np.frombuffer(self.numbers or b"", dtype=np.uint64)

    def to_public(self) -> dict:
        return {"id": self.id, "title": self.title, "url": self.url, "source": self.source,
                "published": self.published, "lang": self.lang}


@dataclass(slots=True)
class GroupingData:
    """Everything grouping needs, as arrays aligned on ``rowids``."""

    rowids: np.ndarray
    lead: np.ndarray
    title: np.ndarray
    content_hashes: np.ndarray  # int64 codes: equal for equal content hashes
    sigs: np.ndarray
    terms: PackedTerms  # indexing gives one text's packed vector
    numbers: PackedNumbers
    langs: list[str | None]  # one string object per distinct language
    published: np.ndarray  # timestamps, NaN when unknown


class Database:
    """Thin typed access to the store's SQLite file."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        """``readonly``: open for reading only, the file taken as unchanging (a store on a read-only volume: SQLite
        could not create the WAL index file beside it)."""
        self._df_delta: np.ndarray | None = None  # term document frequencies changed by this transaction
        self._docs_delta = 0
        self._meta: dict[str, str] | None = None  # the meta table as a read transaction's snapshot sees it
        # groups' members with their cards, read in snapshots of one generation (members_with_cards)
        self._kept_members: tuple[str | None, dict[str, list[tuple[int, Card]]]] = (None, {})
        self._kept_rows = 0
        wal = Path(f"{path}-wal")
        pending = wal.exists() and wal.stat().st_size > 0  # committed pages not yet in the file: read them too
        uri = (f"file:{path}?mode=ro" + ("" if pending else "&immutable=1")) if readonly else f"file:{path}"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            self._open(path, readonly)
        except sqlite3.DatabaseError as e:  # garbage bytes, a truncated file: say which file, not a traceback
            self.conn.close()
            raise StoreError(f"{path}: not a readable store database ({e}); restore it from a backup, or remove "
                             "the store folder and add the articles again") from None

    def _open(self, path: Path, readonly: bool) -> None:
        self.conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # the log file back to 64 MB once a large transaction (a full regrouping, a build of the related
            # lists: gigabytes at a million articles) is checkpointed, not left at its largest
            self.conn.execute("PRAGMA journal_size_limit = 67108864")
            self.conn.executescript(_SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(articles)")}
        if "numbers" not in have and not readonly:  # a store from before numbers were kept: Archive fills them
            self.conn.execute("ALTER TABLE articles ADD COLUMN numbers BLOB")
            self.set_meta("numbers_missing", "1")
            have.add("numbers")
        if not readonly and self.get_meta("derivation") is None:
            # how the stored articles' derived forms were made (DERIVATION): a store written before the current
            # rules counts its outlets' lines again and re-derives the articles the rules change, at its next add
            # or removal (Writer._derivation_upgrade). Stores from before 0.2 counted neither headlines nor the
            # lines of articles known only by their URL's host; the recount adds them.
            empty = self.conn.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is None
            self.set_meta("derivation", str(DERIVATION if empty else 1))
        if missing := [c for c in ARTICLE_COLUMNS if c not in have]:
            self.conn.close()
            raise StoreError(f"{path}: this store was written by an older storycluster (no column "
                             f"{', '.join(missing)}); build it again with 'storycluster add' into a new --store")

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        self._meta = None
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._meta = None
        self._flush_term_df()
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self._meta = None
        self._df_delta, self._docs_delta = None, 0
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (committed at the end, rolled back on an error); inside one already open, part of
        it (the outer one commits)."""
        if self.conn.in_transaction:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin_read(self) -> None:
        """A read transaction: every read until :meth:`rollback` sees one snapshot (WAL). Its first read, which
        fixes the snapshot, is the whole meta table (a dozen rows), so the settings and generations a request
        checks are then no query each."""
        self.conn.execute("BEGIN DEFERRED")
        self._meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # -- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        if self._meta is not None and self.conn.in_transaction:
            return self._meta.get(key, default)
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._meta = None
        self.conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", "0") or 0)

    # -- articles --------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM articles").fetchone()[0]

    def summary(self) -> dict:
        """Counts for ``stats``: articles, groups, grouped articles, sources, cached embeddings, and articles by
        language (``unknown`` where none), most first."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {"articles": self.count(), "groups": one("SELECT count(*) FROM groups"),
                "articles_in_groups": one("SELECT count(*) FROM group_members"),
                "sources": one("SELECT count(DISTINCT source) FROM articles"),
                "cached_embeddings": one("SELECT count(*) FROM embeddings"),
                "languages": dict(self.conn.execute("SELECT coalesce(lang, 'unknown'), count(*) FROM articles "
                                                    "GROUP BY 1 ORDER BY 2 DESC"))}

    def ids_to_record_hashes(self) -> dict[str, str]:
        """Every article's id and record hash (what ``recommend`` compares with its last run)."""
        return dict(self.conn.execute("SELECT id, record_hash FROM articles"))

    def ids_to_rowids(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT id, rowid FROM articles"))

    def ids_to_groups(self) -> dict[str, str]:
        """The group of every article in a group of two or more, by article id."""
        return dict(self.conn.execute(
            "SELECT a.id, m.group_id FROM group_members m JOIN articles a ON a.rowid = m.article"))

    def all_terms(self) -> Iterator[np.ndarray]:
        """Every article's packed term vector (a store whose document frequencies were never kept)."""
        for (blob,) in self.conn.execute("SELECT terms FROM articles"):
            yield np.frombuffer(blob, np.uint32)

    def _rows(self, sql: str, params: Sequence = ()) -> Iterator[StoredArticle]:
        for row in self.conn.execute(sql, params):
            yield StoredArticle(*row)

    def article(self, article_id: str) -> StoredArticle | None:
        return next(self._rows(f"SELECT {', '.join(ARTICLE_COLUMNS)} FROM articles WHERE id = ?", (article_id,)),
                    None)

    def articles_by_rowid(self, rowids: Iterable[int], with_text: bool = False) -> dict[int, StoredArticle]:
        """Articles by row id; ``text`` is left empty unless asked for (it is the bulk of a row)."""
        out: dict[int, StoredArticle] = {}
        ids = list(dict.fromkeys(int(r) for r in rowids))
        cols = ", ".join(c if c != "text" or with_text else "'' AS text" for c in ARTICLE_COLUMNS)
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            sql = f"SELECT {cols} FROM articles WHERE rowid IN ({','.join('?' * len(chunk))})"
            out.update((a.rowid, a) for a in self._rows(sql, chunk))
        return out

    def iter_articles(self, source: str | None = None) -> Iterator[StoredArticle]:
        sql = f"SELECT {', '.join(ARTICLE_COLUMNS)} FROM articles"
        if source is not None:
            yield from self._rows(sql + " WHERE source = ? ORDER BY rowid", (source,))
        else:
            yield from self._rows(sql + " ORDER BY rowid")

    def outlet_rows(self) -> Iterator[tuple[str | None, str | None, str, str]]:
        """(source, url, title, text) of every article with a source or a URL."""
        yield from self.conn.execute("SELECT source, url, title, text FROM articles WHERE (source IS NOT NULL AND "
                                     "source != '') OR url IS NOT NULL ORDER BY rowid")

    def iter_without_source(self, host: str) -> Iterator[StoredArticle]:
        """Articles without a source whose URL holds ``host`` (a superset of those at that host)."""
        sql = f"SELECT {', '.join(ARTICLE_COLUMNS)} FROM articles WHERE (source IS NULL OR source = '') AND url LIKE ?"
        yield from self._rows(sql + " ORDER BY rowid", (f"%{host}%",))

    def record_hashes(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for start in range(0, len(ids), 900):
            chunk = list(ids[start:start + 900])
            sql = f"SELECT id, rowid, record_hash FROM articles WHERE id IN ({','.join('?' * len(chunk))})"
            out.update((i, (r, h)) for i, r, h in self.conn.execute(sql, chunk))
        return out

    # -- term document frequencies, kept up to date on every write -----------------------------------
    # The ``term_df`` blob (sparse: terms then counts) and ``term_df_docs`` hold the archive's document
    # frequencies; once a full read computed them (``term_df_live``), each write adjusts them, so an
    # incremental regrouping needs no pass over every article's terms.
    def term_df(self) -> tuple[np.ndarray, int] | None:
        """(document frequency per hashed term, number of texts) when they are up to date, else None."""
        if not self._df_live():
            return None
        if self._df_delta is not None and self.conn.in_transaction:  # this transaction's own writes count
            self._flush_term_df()
        packed = np.frombuffer(self.get_blob("term_df") or b"", dtype=np.uint32)
        df = np.zeros(N_FEATURES, dtype=np.int32)
        half = len(packed) // 2
        df[packed[:half]] = packed[half:]
        return df, int(self.get_meta("term_df_docs", "0") or 0)

    def scoring_df(self) -> tuple[np.ndarray, int] | None:
        """The document frequencies of the last full regrouping (what every pair score weighs terms by until the
        next one), or None in a store written before they were kept."""
        blob = self.get_blob("term_df_full")
        if blob is None:
            return None
        packed = np.frombuffer(blob, dtype=np.uint32)
        df = np.zeros(N_FEATURES, dtype=np.int32)
        half = len(packed) // 2
        df[packed[:half]] = packed[half:]
        return df, int(self.get_meta("term_df_full_docs", "0") or 0)

    def set_scoring_df(self, df: np.ndarray, n_docs: int) -> None:
        nz = np.flatnonzero(df)
        self.set_blob("term_df_full", np.concatenate([nz, df[nz]]).astype(np.uint32).tobytes())
        self.set_meta("term_df_full_docs", str(int(n_docs)))

    def set_term_df(self, df: np.ndarray, n_docs: int) -> None:
        """Document frequencies computed from every article (inside the caller's transaction)."""
        nz = np.flatnonzero(df)
        self.set_blob("term_df", np.concatenate([nz, df[nz]]).astype(np.uint32).tobytes())
        self.set_meta("term_df_docs", str(int(n_docs)))
        self.set_meta("term_df_live", "1")
        self._df_delta, self._docs_delta = None, 0

    def _df_live(self) -> bool:
        return self.get_meta("term_df_live") == "1"

    def _track_terms(self, old: bytes | None, new: bytes | None) -> None:
        """An article's terms changed from ``old`` to ``new`` (None: it did not exist / no longer exists);
        callers check :meth:`_df_live` first (and skip reading the old terms when it is not)."""
        if self._df_delta is None:
            self._df_delta = np.zeros(N_FEATURES, dtype=np.int64)
        for blob, sign in ((old, -1), (new, 1)):
            if blob is not None:
                packed = np.frombuffer(blob, dtype=np.uint32)
                self._df_delta[packed[:len(packed) // 2]] += sign
                self._docs_delta += sign

    def _flush_term_df(self) -> None:
        if self._df_delta is None:
            return
        delta, docs = self._df_delta, self._docs_delta
        self._df_delta, self._docs_delta = None, 0
        current = self.term_df()
        if current is None:
            return
        df, n_docs = current
        self.set_term_df(df.astype(np.int64) + delta, n_docs + docs)

    def upsert_article(self, a: dict) -> int:
        if self._df_live():
            old = self.conn.execute("SELECT terms FROM articles WHERE id = ?", (a["id"],)).fetchone()
            self._track_terms(old[0] if old else None, a["terms"])
        cols = [c for c in ARTICLE_COLUMNS if c != "rowid"]
        sql = (f"INSERT INTO articles ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols if c != 'id')} "
               "RETURNING rowid")
        return self.conn.execute(sql, [a[c] for c in cols]).fetchone()[0]

    def update_content(self, rowid: int, content_hash: str, embed_hash: str, title_hash: str,
                       signature: bytes, terms: bytes, numbers: bytes) -> None:
        if self._df_live() and (old := self.conn.execute("SELECT terms FROM articles WHERE rowid = ?",
                                                         (rowid,)).fetchone()) is not None:
            self._track_terms(old[0], terms)
        self.conn.execute("UPDATE articles SET content_hash = ?, embed_hash = ?, title_hash = ?, signature = ?, "
                          "terms = ?, numbers = ? WHERE rowid = ?",
                          (content_hash, embed_hash, title_hash, signature, terms, numbers, rowid))

    def without_numbers(self) -> list[tuple[int, str, str, str | None, str | None, str | None]]:
        """(rowid, title, text, source, url, lang) of articles stored before numbers were kept."""
        return self.conn.execute("SELECT rowid, title, text, source, url, lang FROM articles WHERE numbers IS NULL "
                                 "ORDER BY rowid").fetchall()

    def set_numbers(self, rows: Iterable[tuple[int, bytes]]) -> None:
        """Store derived numbers; the store is then marked complete (no scan for missing ones at the next open)."""
        self.conn.executemany("UPDATE articles SET numbers = ? WHERE rowid = ?", ((b, r) for r, b in rows))
        self._meta = None
        self.conn.execute("DELETE FROM meta WHERE key = 'numbers_missing'")

    def delete_article(self, article_id: str) -> StoredArticle | None:
        a = self.article(article_id)
        if a is not None:
            if self._df_live():
                self._track_terms(a.terms, None)
            self.conn.execute("DELETE FROM articles WHERE rowid = ?", (a.rowid,))
        return a

    def rowids(self) -> np.ndarray:
        """Every article's row id, ascending."""
        return np.fromiter((r for (r,) in self.conn.execute("SELECT rowid FROM articles ORDER BY rowid")),
                           dtype=np.int64)

    def all_for_grouping(self, model_id: str, vectors: bool = True, chunk: int = 50_000,
                         rowids: Sequence[int] | None = None, alloc=np.empty) -> GroupingData:
        """Row ids, lead and title vectors, content hashes and signatures of all articles (or of ``rowids``),
        in rowid order. ``vectors=False``: no embeddings (``lead``/``title`` are empty; a caller reads them
        from the index). Rows are read in chunks into arrays allocated once (term lists as
        :class:`~..lexical.PackedTerms`, allocated by ``alloc(n, dtype)``: a :class:`~.spill.Spill`'s for a large
        store): a million rows as Python tuples took gigabytes."""
        source = _WITH_VECTORS if vectors else "FROM articles a"
        params: tuple = (model_id,) if vectors else ()
        if rowids is not None:
            source += f" WHERE a.{_ROWID_IN}"
            params += (_json_ids(rowids),)
        n, size = self.conn.execute(f"SELECT count(*), total(length(a.terms)) {source}", params).fetchone()
        n_terms = int(size) // 8  # a term and its count, uint32 each
        columns = "e.vector, t.vector" if vectors else "NULL, NULL"
        cur = self.conn.execute(f"SELECT a.rowid, {columns}, a.content_hash, a.signature, a.terms, a.lang, "
                                f"a.published_ts, a.numbers {source} ORDER BY a.rowid", params)
        ids = np.empty(n, dtype=np.int64)
        published = np.empty(n, dtype=np.float64)
        terms = PackedTerms(alloc(n_terms, np.uint32), alloc(n_terms, np.uint32), np.zeros(n + 1, np.int64))
        wide: dict[int, np.ndarray] = {}  # column → (n, width) array: lead, title, signature
        # no Python object per article beyond one list slot: a million articles' hashes, languages and number
        # arrays as objects took half a gigabyte
        hashes = np.empty(n, dtype=np.int64)
        hash_code: dict[str, int] = {}
        langs: list[str | None] = []
        lang_of: dict[str | None, str | None] = {}
        number_blobs: list[PackedNumbers] = []  # one per chunk, joined once read
        at = 0
        while rows := cur.fetchmany(chunk):
            end = at + len(rows)
            if end > n:
                raise StoreError("the store changed while its articles were read for grouping; run it again")
            ids[at:end] = [r[0] for r in rows]
            for col, dtype in ((1, np.float32), (2, np.float32), (4, np.uint32)):
                if rows[0][col] is not None:
                    block = np.frombuffer(b"".join(r[col] for r in rows), dtype=dtype).reshape(len(rows), -1)
                    wide.setdefault(col, np.empty((n, block.shape[1]), dtype=dtype))[at:end] = block
            part = PackedTerms.from_blobs([r[5] for r in rows])
            lo = terms.offsets[at]
            terms.terms[lo:lo + len(part.terms)] = part.terms
            terms.counts[lo:lo + len(part.counts)] = part.counts
            terms.offsets[at + 1:end + 1] = part.offsets[1:] + lo
            hashes[at:end] = [hash_code.setdefault(r[3], len(hash_code)) for r in rows]
            langs += [lang_of.setdefault(r[6], r[6]) for r in rows]
            published[at:end] = [np.nan if r[7] is None else r[7] for r in rows]
            number_blobs.append(PackedNumbers.from_blobs([r[8] for r in rows]))
            at = end
        if at != n:
            raise StoreError("the store changed while its articles were read for grouping; run it again")
        empty = {1: np.zeros((0, 0), np.float32), 2: np.zeros((0, 0), np.float32), 4: np.zeros((0, 0), np.uint32)}
        lead, title, sigs = (wide.get(c, empty[c]) for c in (1, 2, 4))
        del hash_code
        return GroupingData(rowids=ids, lead=lead, title=title, content_hashes=hashes, sigs=sigs, terms=terms,
                            numbers=PackedNumbers.concat(number_blobs, n), langs=langs, published=published)

    def vectors_by_rowid(self, rowids: Sequence[int], model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(lead, title) float32 embeddings of some articles, in the order given (the exact stored vectors:
        an IVF index holds 8-bit approximations)."""
        rowids = [int(r) for r in rowids]
        found: dict[int, tuple[bytes, bytes]] = {}
        for start in range(0, len(rowids), 900):
            chunk = rowids[start:start + 900]
            found.update((r, (lv, tv)) for r, lv, tv in self.conn.execute(
                f"SELECT a.rowid, e.vector, t.vector {_WITH_VECTORS} WHERE a.rowid IN ({','.join('?' * len(chunk))})",
                (model_id, *chunk)))
        missing = [r for r in rowids if r not in found]
        if missing:
            raise StoreError(f"no stored embedding for article rows {missing[:5]}; rebuild the store with "
                             "'storycluster add' (the embedding cache was pruned)")
        lead = np.array([np.frombuffer(found[r][0], np.float32) for r in rowids], dtype=np.float32)
        title = np.array([np.frombuffer(found[r][1], np.float32) for r in rowids], dtype=np.float32)
        return lead, title

    # -- embedding cache (implements embed.EmbeddingCache) ---------------------------------------
    def get_embeddings(self, hashes: Sequence[str], model_id: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 900):
            chunk = list(hashes[start:start + 900])
            sql = (f"SELECT text_hash, vector FROM embeddings WHERE model_id = ? "
                   f"AND text_hash IN ({','.join('?' * len(chunk))})")
            out.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in self.conn.execute(sql, [model_id, *chunk]))
        return out

    def put_embeddings(self, items: dict[str, np.ndarray], model_id: str) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                              [(h, model_id, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()])

    def prune_embeddings(self) -> int:
        """Drop cached vectors no article uses any more."""
        return self.conn.execute(
            "DELETE FROM embeddings WHERE text_hash NOT IN "
            "(SELECT embed_hash FROM articles UNION SELECT title_hash FROM articles)").rowcount

    # -- groups ----------------------------------------------------------------------------------
    def replace_groups(self, groups: Iterable[tuple[str, int, list[tuple[int, float, str, int | None]]]]) -> None:
        self.conn.execute("DELETE FROM groups")
        self.conn.execute("DELETE FROM group_members")
        for gid, rep, members in groups:
            self.conn.execute("INSERT INTO groups VALUES (?, ?, ?)", (gid, rep, len(members)))
            self.conn.executemany("INSERT INTO group_members VALUES (?, ?, ?, ?, ?)",
                                  [(r, gid, s, t, d) for r, s, t, d in members])

    def replace_some_groups(self, old_ids: Iterable[str], rows: Iterable[int],
                            groups: Iterable[tuple[str, int, list[tuple[int, float, str, int | None]]]]) -> None:
        """Drop the groups ``old_ids`` and any membership of ``rows``, then insert ``groups`` (a regrouped part)."""
        old = [(g,) for g in old_ids]
        self.conn.executemany("DELETE FROM groups WHERE group_id = ?", old)
        self.conn.executemany("DELETE FROM group_members WHERE group_id = ?", old)  # removed articles' rows too
        self.conn.executemany("DELETE FROM group_members WHERE article = ?", [(int(r),) for r in rows])
        for gid, rep, members in groups:
            self.conn.execute("INSERT INTO groups VALUES (?, ?, ?)", (gid, rep, len(members)))
            self.conn.executemany("INSERT INTO group_members VALUES (?, ?, ?, ?, ?)",
                                  [(r, gid, s, t, d) for r, s, t, d in members])

    # -- incremental grouping: what changed since the last grouping, and what grouping changed ------
    def mark_pending(self, rowids: Iterable[int]) -> None:
        self.conn.executemany("INSERT OR IGNORE INTO pending_regroup VALUES (?)", [(int(r),) for r in rowids])

    def pending(self) -> set[int]:
        return {r for (r,) in self.conn.execute("SELECT article FROM pending_regroup")}

    def clear_pending(self) -> None:
        self.conn.execute("DELETE FROM pending_regroup")

    def group_peers(self, rowids: Iterable[int]) -> set[int]:
        """Every member of the groups these rows belong to."""
        rows = [int(r) for r in rowids]
        out: set[int] = set()
        for start in range(0, len(rows), 900):
            chunk = rows[start:start + 900]
            out.update(r for (r,) in self.conn.execute(
                "SELECT article FROM group_members WHERE group_id IN (SELECT group_id FROM group_members "
                f"WHERE article IN ({','.join('?' * len(chunk))}))", chunk))
        return out

    def add_changes(self, at: str, generation: int, changes: Iterable[tuple[str, str, list[str], list[str]]]) -> None:
        import json

        self.conn.executemany(
            "INSERT INTO group_changes (at, generation, kind, group_id, other_ids, articles) VALUES (?, ?, ?, ?, ?, ?)",
            [(at, generation, kind, gid, json.dumps(other, ensure_ascii=False), json.dumps(arts, ensure_ascii=False))
             for kind, gid, other, arts in changes])

    def changes_since(self, at: str) -> list[Change]:
        import json

        return [Change(at=a, generation=g, change=k, group=gid, other_groups=json.loads(o), articles=json.loads(arts))
                for a, g, k, gid, o, arts in self.conn.execute(
                    "SELECT at, generation, kind, group_id, other_ids, articles FROM group_changes WHERE at >= ? "
                    "ORDER BY seq", (at,))]

    def groups_of(self, rowids: Iterable[int]) -> dict[int, str]:
        """Group id of each given article that is in a group."""
        ids = [int(r) for r in rowids]
        out: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            sql = f"SELECT article, group_id FROM group_members WHERE article IN ({','.join('?' * len(chunk))})"
            out.update(self.conn.execute(sql, chunk))
        return out

    def group_members(self, group_id: str) -> list[tuple[int, float, str]]:
        return self.conn.execute("SELECT article, score, tier FROM group_members WHERE group_id = ? "
                                 "ORDER BY score DESC, article", (group_id,)).fetchall()

    def cards(self, rowids: Iterable[int]) -> dict[int, Card]:
        """What a related list shows of each article (and filters on), by row id."""
        ids = sorted({int(r) for r in rowids})
        out: dict[int, Card] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            for row in self.conn.execute("SELECT rowid, id, title, url, source, published, published_ts, lang "
                                         f"FROM articles WHERE rowid IN ({','.join('?' * len(chunk))})", chunk):
                out[row[0]] = Card(*row[1:])
        return out

    # -- stored related lists ----------------------------------------------------------------------
    def related_plan(self, rowid: int) -> tuple[float | None, str] | None:
        """(floor, plan JSON) of one article's stored related list."""
        try:
            return self.conn.execute("SELECT floor, plan FROM related_lists WHERE article = ?", (rowid,)).fetchone()
        except sqlite3.OperationalError:  # a store from before stored lists, opened read only
            return None

    def related_generation(self, article_id: str) -> int | None:
        """The store generation at which an article's stored related list was computed (None: no such article,
        or no list)."""
        try:
            got = self.conn.execute("SELECT l.generation FROM articles a JOIN related_lists l ON l.article = a.rowid "
                                    "WHERE a.id = ?", (article_id,)).fetchone()
        except sqlite3.OperationalError:  # a store from before stored lists, opened read only
            return None
        return None if got is None else int(got[0])

    def related_plans(self, rowids: Iterable[int]) -> dict[int, tuple[float | None, str]]:
        ids = sorted({int(r) for r in rowids})
        out: dict[int, tuple[float | None, str]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            for r, floor, plan in self.conn.execute("SELECT article, floor, plan FROM related_lists WHERE article "
                                                    f"IN ({','.join('?' * len(chunk))})", chunk):
                out[r] = (floor, plan)
        return out

    def related_since(self, generation: int) -> set[int]:
        """Articles whose stored list was computed after ``generation``."""
        return {r for (r,) in self.conn.execute("SELECT article FROM related_lists WHERE generation > ?",
                                                (generation,))}

    def related_floors(self, rowids: Iterable[int]) -> dict[int, float | None]:
        """The floor of each stored list (its plan is not read)."""
        ids = sorted({int(r) for r in rowids})
        out: dict[int, float | None] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            out.update(self.conn.execute("SELECT article, floor FROM related_lists WHERE article "
                                         f"IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def related_owners(self, refs: Iterable[int]) -> set[int]:
        """The articles whose stored list names any of ``refs``."""
        ids = sorted({int(r) for r in refs})
        out: set[int] = set()
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            out.update(r for (r,) in self.conn.execute(
                f"SELECT owner FROM related_refs WHERE ref IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def clear_related(self) -> None:
        self.conn.execute("DELETE FROM related_lists")
        self.conn.execute("DELETE FROM related_refs")

    def drop_related(self, owners: dict[int, Iterable[int]]) -> None:
        """Delete the stored lists of ``owners`` (each with the rows its list named)."""
        self.conn.executemany("DELETE FROM related_refs WHERE ref = ? AND owner = ?",
                              [(int(ref), int(o)) for o, refs in owners.items() for ref in refs])
        self.conn.executemany("DELETE FROM related_lists WHERE article = ?", [(int(o),) for o in owners])

    def put_related(self, rows: Iterable[tuple[int, float | None, str, Iterable[int]]], staged: bool = False) -> None:
        """Store lists: (owner, floor, plan JSON, the rows it names), computed at the current generation.
        ``staged``: into the tables :meth:`stage_related` made instead, moved by :meth:`commit_staged_related`."""
        gen = self.generation
        lists, refs = (("temp.related_lists_staged", "temp.related_refs_staged") if staged
                       else ("related_lists", "related_refs"))
        for owner, floor, plan, named in sorted(rows, key=lambda row: row[0]):  # in key order: fewer pages touched
            self.conn.execute(f"INSERT OR REPLACE INTO {lists} VALUES (?, ?, ?, ?)", (owner, floor, plan, gen))
            self.conn.executemany(f"INSERT OR IGNORE INTO {refs} VALUES (?, ?)", [(int(ref), owner) for ref in named])

    def stage_related(self) -> None:
        """Connection-private tables without indexes for a full build of the lists (see ``put_related``), so that
        a million lists and the thirty million rows they name are written into the store's tables once, in key
        order, not a B-tree seek each (pages written to the log over and over)."""
        for name, columns in (("related_lists_staged", "article INTEGER, floor REAL, plan TEXT, generation INTEGER"),
                              ("related_refs_staged", "ref INTEGER, owner INTEGER")):
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
            self.conn.execute(f"CREATE TEMP TABLE {name} ({columns})")

    def commit_staged_related(self) -> None:
        """The staged lists into the store's tables (inside the caller's transaction), in key order."""
        self.conn.execute("INSERT OR REPLACE INTO related_lists SELECT * FROM temp.related_lists_staged "
                          "ORDER BY article")
        self.conn.execute("INSERT OR IGNORE INTO related_refs SELECT * FROM temp.related_refs_staged "
                          "ORDER BY ref, owner")
        self.conn.execute("DROP TABLE temp.related_lists_staged")
        self.conn.execute("DROP TABLE temp.related_refs_staged")

    def related_count(self) -> int:
        try:
            return self.conn.execute("SELECT count(*) FROM related_lists").fetchone()[0]
        except sqlite3.OperationalError:  # a store from before stored lists, opened read only
            return 0

    def min_related_floor(self) -> float | None:
        row = self.conn.execute("SELECT min(floor) FROM related_lists").fetchone()
        return None if row is None else row[0]

    def members_of(self, group_ids: Iterable[str]) -> dict[str, list[int]]:
        """The member row ids of each group, in :meth:`group_members` order."""
        ids = sorted(set(group_ids))
        out: dict[str, list[int]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            for gid, art in self.conn.execute(
                    f"SELECT group_id, article FROM group_members WHERE group_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY group_id, score DESC, article", chunk):
                out.setdefault(gid, []).append(art)
        return out

    def members_with_cards(self, group_ids: Iterable[str], cards: dict[int, Card]) -> dict[str, list[int]]:
        """:meth:`members_of`, and each member's card added to ``cards`` (one query for both). Inside a read
        transaction (:meth:`begin_read`) the groups read are kept for the next ones of the same generation (every
        write that changes a group or an article makes a new one), up to :data:`KEPT_MEMBER_ROWS` members."""
        ids = sorted(set(group_ids))
        kept = self._members_kept()
        out: dict[str, list[int]] = {}
        for gid in ids:
            if kept is not None and (got := kept.get(gid)) is not None:
                out[gid] = [r for r, _ in got]
                cards.update(got)
        ids = [gid for gid in ids if gid not in out]
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            rows: dict[str, list[tuple[int, Card]]] = {}
            for gid, art, *card in self.conn.execute(
                    "SELECT m.group_id, m.article, a.id, a.title, a.url, a.source, a.published, a.published_ts, "
                    "a.lang FROM group_members m JOIN articles a ON a.rowid = m.article "
                    f"WHERE m.group_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY m.group_id, m.score DESC, m.article", chunk):
                rows.setdefault(gid, []).append((art, Card(*card)))
            for gid, members in rows.items():
                out[gid] = [r for r, _ in members]
                cards.update(members)
                if kept is not None:
                    kept[gid] = members
                    self._kept_rows += len(members)
        return out

    def _members_kept(self) -> dict[str, list[tuple[int, Card]]] | None:
        """The groups kept for this read snapshot's generation (emptied for another generation, or when full);
        None outside a read snapshot."""
        if self._meta is None or not self.conn.in_transaction:
            return None
        generation = self._meta.get("generation")
        if self._kept_members[0] != generation or self._kept_rows > KEPT_MEMBER_ROWS:
            self._kept_members, self._kept_rows = (generation, {}), 0
        return self._kept_members[1]

    def facts(self, rowids: Sequence[int] | None = None) -> list[tuple[int, str, float | None, int]]:
        """(row id, id, published timestamp, text length) of every article (or of ``rowids``)."""
        sql = "SELECT rowid, id, published_ts, length(text) FROM articles"
        if rowids is None:
            return self.conn.execute(sql).fetchall()
        return self.conn.execute(f"{sql} WHERE {_ROWID_IN}", (_json_ids(rowids),)).fetchall()

    def signatures(self, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """(row ids ascending, their MinHash signatures) of every article, read in chunks."""
        n = self.count()
        rowids = np.empty(n, dtype=np.int64)
        sigs: np.ndarray | None = None
        cur = self.conn.execute("SELECT rowid, signature FROM articles ORDER BY rowid")
        at = 0
        while rows := cur.fetchmany(chunk):
            block = np.frombuffer(b"".join(sig for _, sig in rows), dtype=np.uint32).reshape(len(rows), -1)
            if sigs is None:
                sigs = np.empty((n, block.shape[1]), dtype=np.uint32)
            rowids[at:at + len(rows)] = [r for r, _ in rows]
            sigs[at:at + len(rows)] = block
            at += len(rows)
        if at != n:
            raise StoreError("the store changed while its signatures were read; run it again")
        return rowids, sigs if sigs is not None else np.zeros((0, 0), dtype=np.uint32)

    def group_of(self) -> dict[int, str]:
        return dict(self.conn.execute("SELECT article, group_id FROM group_members"))

    def groups(self) -> list[tuple[str, int, list[tuple[int, float, str, int | None]]]]:
        members: dict[str, list[tuple[int, float, str, int | None]]] = {}
        for art, gid, score, tier, dup in self.conn.execute(
                "SELECT article, group_id, score, tier, duplicate_of FROM group_members "
                "ORDER BY group_id, score DESC, article"):
            members.setdefault(gid, []).append((art, score, tier, dup))
        return [(gid, rep, members.get(gid, [])) for gid, rep in
                self.conn.execute("SELECT group_id, representative FROM groups ORDER BY size DESC, group_id")]

    def group(self, group_id: str) -> tuple[int, list[tuple[int, float, str, int | None]]] | None:
        """(representative, members) of one group, or None."""
        row = self.conn.execute("SELECT representative FROM groups WHERE group_id = ?", (group_id,)).fetchone()
        if row is None:
            return None
        members = self.conn.execute("SELECT article, score, tier, duplicate_of FROM group_members WHERE group_id = ? "
                                    "ORDER BY score DESC, article", (group_id,)).fetchall()
        return row[0], [tuple(m) for m in members]

    # -- boilerplate line counts ---------------------------------------------------------------
    def bump_lines(self, source: str, keys: Iterable[int], delta: int) -> list[tuple[int, int]]:
        """Add ``delta`` to each (source, key) count; returns (key, new count) pairs."""
        out = []
        for key in keys:
            n = self.conn.execute(
                "INSERT INTO source_lines VALUES (?, ?, max(?, 0)) ON CONFLICT(source, line_key) "
                "DO UPDATE SET n = max(n + ?, 0) RETURNING n", (source, key, delta, delta)).fetchone()[0]
            out.append((key, n))
        return out

    def get_blob(self, name: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM blobs WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_blob(self, name: str, value: bytes) -> None:
        self.conn.execute("INSERT INTO blobs VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                          (name, value))

    def rows_containing(self, fragment: str) -> list[int]:
        """Row ids of the articles whose title or text contains ``fragment`` (exactly: no case folding)."""
        return [r for (r,) in self.conn.execute(
            "SELECT rowid FROM articles WHERE instr(text, ?) > 0 OR instr(coalesce(title, ''), ?) > 0 ORDER BY rowid",
            (fragment, fragment))]

    def all_boilerplate_keys(self, min_count: int) -> dict[str, set[int]]:
        """Every outlet's boilerplate line keys."""
        out: dict[str, set[int]] = {}
        for source, key in self.conn.execute("SELECT source, line_key FROM source_lines WHERE n >= ?", (min_count,)):
            out.setdefault(source, set()).add(key)
        return out

    def add_line_counts(self, counts: Iterable[tuple[str, int, int]]) -> None:
        """Add (source, key, n) counts, many at once (a recount; :meth:`bump_lines` says where each lands)."""
        self.conn.executemany("INSERT INTO source_lines VALUES (?, ?, ?) ON CONFLICT(source, line_key) "
                              "DO UPDATE SET n = n + excluded.n", counts)

    def clear_line_counts(self) -> None:
        """Forget every outlet's line counts (a recount follows, in the same transaction)."""
        self.conn.execute("DELETE FROM source_lines")

    def boilerplate_keys(self, source: str, min_count: int) -> set[int]:
        return {k for (k,) in self.conn.execute(
            "SELECT line_key FROM source_lines WHERE source = ? AND n >= ?", (source, min_count))}
