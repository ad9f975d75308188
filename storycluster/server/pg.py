"""PostgreSQL + pgvector, for sites that already run PostgreSQL.

``storycluster export-pg DSN`` writes, in one transaction (readers see the old tables or the new, never
half): articles, their lead and headline embeddings as ``vector(dim)`` (an HNSW index on the lead), the
groups, and the precomputed related table (``EXPORT_FACTOR × k`` entries per article, so that filters
still leave ``k``). ``storycluster serve --backend pg --dsn DSN`` answers from those tables.

For a stored article the answer is the exported list, filtered like the store's (equal to the store's
answer with the same options while the list is long enough). For posted text the server embeds it and asks
pgvector for the nearest leads; with no TF-IDF statistics in PostgreSQL, its tier rests on the semantic
evidence alone (``same_story`` at or above the model's semantic centre), as for cross-lingual pairs.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import numpy as np

from ..archive import Archive
from ..cluster.model import StoryModel
from ..cluster.scoring import Thresholds, semantic_similarity
from ..embed import Embedder
from ..embed.layout import VectorLayout
from ..errors import NotFoundError, StoreError
from ..featurize import prepare_article
from ..parallel import cores
from ..queries import group_dict, headline_query_note, noted
from ..ranking import RelatedOptions, select
from ..results import Group, GroupsPage, Related, RelatedEntry

PG_FORMAT_VERSION = 1
EXPORT_FACTOR = 3
TABLES = ("sc_related", "sc_embeddings", "sc_groups", "sc_articles", "sc_meta")


def _schema(dim: int) -> str:
    return f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE sc_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE sc_articles (
    id text PRIMARY KEY, title text NOT NULL, text text NOT NULL, url text, source text,
    published text, published_ts double precision, lang text, group_id text);
CREATE TABLE sc_embeddings (
    id text PRIMARY KEY REFERENCES sc_articles(id) ON DELETE CASCADE,
    lead vector({dim}) NOT NULL, title vector({dim}) NOT NULL);
CREATE TABLE sc_groups (group_id text PRIMARY KEY, representative text NOT NULL, size integer NOT NULL,
    body jsonb NOT NULL);
CREATE TABLE sc_related (
    article_id text NOT NULL REFERENCES sc_articles(id) ON DELETE CASCADE, rank integer NOT NULL,
    related_id text NOT NULL, score real NOT NULL, tier text NOT NULL, item jsonb NOT NULL,
    PRIMARY KEY (article_id, rank));
CREATE INDEX sc_embeddings_lead ON sc_embeddings USING hnsw (lead vector_ip_ops);
CREATE INDEX sc_groups_size ON sc_groups (size DESC, group_id);
"""


def shown(dsn: str) -> str:
    """A connection string as messages show it: its password (``user:secret@``, ``password=secret``) masked."""
    dsn = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)


def one_line(error: Exception) -> str:
    """A PostgreSQL error's text on one line (psycopg's span several: the error, then a hint)."""
    return " ".join(str(error).split())


def _connect(dsn: str, vectors: bool = False):
    """A connection; with ``vectors``, pgvector columns come back as numpy arrays."""
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=False)
    except psycopg.ProgrammingError as e:  # raised for a string it cannot parse
        raise StoreError(f"{shown(dsn)!r} is not a PostgreSQL connection string ({one_line(e)}; e.g. "
                         "postgresql://user@127.0.0.1/news)") from None
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to PostgreSQL at {shown(dsn)!r}: {one_line(e)}") from None
    if vectors:
        from pgvector.psycopg import register_vector

        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            conn.close()
            raise StoreError(f"{shown(dsn)}: the pgvector extension is not installed in this database; "
                             "run 'storycluster export-pg' first (it creates it)") from None
    return conn


def _vec(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


def export_pg(archive: Archive, dsn: str, k: int = 10) -> dict:
    """Replace the ``sc_*`` tables in the database at ``dsn`` with this store's contents."""
    import psycopg

    archive.ensure_groups()
    conn = _connect(dsn)
    counts = {"articles": 0, "groups": 0, "related": 0}
    try:
        with conn.transaction(), conn.cursor() as cur, archive.reading():
            cur.execute("DROP TABLE IF EXISTS " + ", ".join(TABLES))
            cur.execute(_schema(archive.config.dim))
            meta = {"format_version": PG_FORMAT_VERSION, "model": archive.config.model_id, "dim": archive.config.dim,
                    "embed_max_chars": archive.config.embed_max_chars, "k": k, "stored_k": EXPORT_FACTOR * k,
                    "thresholds": archive.thresholds.to_dict(), "story_model": json.loads(archive.model.to_json()),
                    "generation": archive.db.generation}
            cur.executemany("INSERT INTO sc_meta VALUES (%s, %s)",
                            [(key, json.dumps(v, ensure_ascii=False)) for key, v in meta.items()])
            groups = archive.db.ids_to_groups()
            ids, rowids = [], []
            with cur.copy("COPY sc_articles (id, title, text, url, source, published, published_ts, lang, group_id) "
                          "FROM STDIN") as copy:
                for a in archive.db.iter_articles():
                    for name in ("id", "title", "text", "url", "source", "published", "lang"):
                        if "\x00" in (getattr(a, name) or ""):  # a store written before ingest refused them
                            shown = a.id.replace("\x00", "\\x00")
                            raise StoreError(f"article '{shown}': its {name} holds a NUL "
                                             "character, which PostgreSQL cannot store; fix the record and add it "
                                             "again (or remove it), then export")
                    copy.write_row((a.id, a.title, a.text, a.url, a.source, a.published, a.published_ts, a.lang,
                                    groups.get(a.id)))
                    ids.append(a.id)
                    rowids.append(a.rowid)
            counts["articles"] = len(ids)
            with cur.copy("COPY sc_embeddings (id, lead, title) FROM STDIN") as copy:
                for s in range(0, len(ids), 2048):
                    lead, title = archive.db.vectors_by_rowid(rowids[s:s + 2048], archive.config.model_id)
                    for article_id, lv, tv in zip(ids[s:s + 2048], lead, title, strict=True):
                        copy.write_row((article_id, _vec(lv), _vec(tv)))
            with cur.copy("COPY sc_groups (group_id, representative, size, body) FROM STDIN") as copy:
                for gid, rep, members in archive.db.groups():
                    g = group_dict(archive.store, gid, rep, members)
                    copy.write_row((gid, g["representative"], g["size"], json.dumps(g, ensure_ascii=False)))
                    counts["groups"] += 1
            with cur.copy("COPY sc_related (article_id, rank, related_id, score, tier, item) FROM STDIN") as copy:
                for article_id in ids:
                    for rank, item in enumerate(archive.related_with_alternates(article_id, EXPORT_FACTOR * k)["related"]):
                        copy.write_row((article_id, rank, item["id"], item["score"], item["tier"],
                                        json.dumps(item, ensure_ascii=False)))
                        counts["related"] += 1
    except psycopg.Error as e:
        raise StoreError(f"PostgreSQL export failed: {one_line(e)}") from None
    finally:
        conn.close()
    return counts


class PgBackend:
    """The server's read-only backend over exported tables (a connection per request from a small pool)."""

    writable = False

    def __init__(self, dsn: str, pool_size: int = 4) -> None:
        import queue

        self.dsn = dsn
        self._pool: queue.Queue = queue.Queue()
        self._all = [_connect(dsn, vectors=True) for _ in range(pool_size)]
        for c in self._all:
            self._pool.put(c)
        meta = self._meta()
        if int(meta.get("format_version", -1)) != PG_FORMAT_VERSION:
            raise StoreError(f"{shown(dsn)}: sc_meta format_version {meta.get('format_version')}, expected "
                             f"{PG_FORMAT_VERSION}; run 'storycluster export-pg' again")
        self.meta = meta
        self.thresholds = Thresholds.from_dict(meta["thresholds"])
        self.model = StoryModel.from_json(json.dumps(meta["story_model"]), "sc_meta.story_model")
        self._embedder: Embedder | None = None

    @contextmanager
    def _cursor(self) -> Iterator:
        conn = self._pool.get()
        try:
            with conn.transaction(), conn.cursor() as cur:  # one snapshot per request
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield cur
        finally:
            self._pool.put(conn)

    def _meta(self) -> dict:
        import psycopg

        try:
            with self._cursor() as cur:
                cur.execute("SELECT key, value FROM sc_meta")
                return {key: json.loads(v) for key, v in cur.fetchall()}
        except psycopg.errors.UndefinedTable:
            raise StoreError(f"{shown(self.dsn)}: no storycluster tables; run 'storycluster export-pg DSN' first") from None

    def related(self, article_id: str, k: int, options: RelatedOptions) -> Related:
        with self._cursor() as cur:
            cur.execute("SELECT published_ts FROM sc_articles WHERE id = %s", (article_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError(f"no article with id '{article_id}' in the exported tables")
            cur.execute("SELECT item FROM sc_related WHERE article_id = %s ORDER BY rank", (article_id,))
            items = [r[0] for r in cur.fetchall()]
            return {"query": article_id, "related": self._shape(cur, items, k, options, row[0])}

    def list_version(self, article_id: str) -> str | None:
        """None: every answer is tagged with the export's generation."""
        return None

    def related_listed(self, article_id: str, k: int, options: RelatedOptions) -> Related | None:
        return None

    def _shape(self, cur, items: list[dict], k: int, options: RelatedOptions, query_ts: float | None) -> list[RelatedEntry]:
        earliest = options.earliest()
        every = {x for item in items for x in (item["id"], *item.get("members", []))}
        facts: dict[str, tuple] = {}
        if every:
            cur.execute("SELECT id, title, url, source, published, lang, published_ts FROM sc_articles "
                        "WHERE id = ANY(%s)", (sorted(every),))
            facts = {r[0]: r[1:] for r in cur.fetchall()}

        def ok(article_id: str) -> bool:
            f = facts.get(article_id)
            return f is not None and options.allows(article_id, f[2], f[4], f[5], query_ts, earliest)

        kept: list[RelatedEntry] = []
        for item in items:
            # as in the store: the group's best-scoring member that passes stands for it
            shown = item if ok(item["id"]) else next((alt for alt in item.get("alternates", []) if ok(alt["id"])), None)
            if shown is None:
                continue
            if shown is not item:
                title, url, source, published, lang, _ = facts[shown["id"]]
                via = {"via": shown["via"]} if "via" in shown else {}
                shown = {key: v for key, v in item.items() if key != "via"} | dict(
                    id=shown["id"], score=shown["score"], tier=shown["tier"], **via, title=title, url=url,
                    source=source, published=published, lang=lang)
            members = item.get("members") or [o["id"] for o in item["also_in"]]
            also = [{"id": m, "source": facts[m][2], "url": facts[m][1]} for m in members
                    if m != shown["id"] and ok(m)]
            kept.append(cast(RelatedEntry, {key: v for key, v in shown.items() if key not in ("alternates", "members")}
                             | {"also_in": also}))
        kept.sort(key=lambda i: (-i["score"], i["id"]))
        kept = kept[:3 * k if options.shapes_list else k]  # the candidates the store's own answer chooses among
        if options.shapes_list and kept:
            vecs = None
            if options.diversity > 0:
                cur.execute("SELECT id, lead, title FROM sc_embeddings WHERE id = ANY(%s)", ([i["id"] for i in kept],))
                got = {i: (lv.to_numpy(), tv.to_numpy()) for i, lv, tv in cur.fetchall()}
                vecs = VectorLayout(self.thresholds.title_weight).combine(
                    np.stack([got[i["id"]][0] for i in kept]), np.stack([got[i["id"]][1] for i in kept]))
            picks = select([i["score"] for i in kept], [i["source"] for i in kept], vecs, k, options.per_source,
                           options.diversity)
            return [kept[p] for p in picks]
        return kept[:k]

    def related_text(self, title: str, text: str, lang: str | None, k: int, options: RelatedOptions) -> Related:
        from ..article import Article
        from ..embed import get_embedder

        if not text.strip():
            raise ValueError("give a non-empty text")
        if self._embedder is None:
            self._embedder = get_embedder(self.meta["model"])
        from ..language import lang_option

        p = prepare_article(Article("<query>", title, text, lang=lang_option(lang)), set(),
                            int(self.meta["embed_max_chars"]))
        note = headline_query_note(p, self.model)
        lead, head = self._embedder.embed([p.embed_input, p.title_input])
        t = self.thresholds
        limit = max(200, 20 * k)
        with self._cursor() as cur:
            cur.execute(f"SET LOCAL hnsw.ef_search = {min(limit, 1000)}")  # HNSW returns at most ef_search rows
            cur.execute("SELECT a.id, a.title, a.url, a.source, a.published, a.lang, a.group_id, "
                        "e.lead, e.title FROM sc_embeddings e JOIN sc_articles a USING (id) "
                        "ORDER BY e.lead <#> %s LIMIT %s", (lead, limit))
            rows = cur.fetchall()
            if not rows:
                return noted({"query": None, "related": []}, note)
            lv = np.stack([r[7].to_numpy() for r in rows])
            tv = np.stack([r[8].to_numpy() for r in rows])
            lead_cos, title_cos = lv @ lead, tv @ head
            sims = semantic_similarity(lead_cos, title_cos, t.title_weight)
            best: dict[str, tuple[float, tuple]] = {}
            lv_cos: dict[str, float] = {}
            tv_cos: dict[str, float] = {}
            for n, (r, sim) in enumerate(zip(rows, sims.tolist(), strict=True)):
                key = r[6] or f"\x00{r[0]}"
                if sim >= t.related and (key not in best or sim > best[key][0]):
                    best[key] = (sim, r)
                    lv_cos[key], tv_cos[key] = float(lead_cos[n]), float(title_cos[n])
            items = []
            for key, (sim, r) in sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1][0])):
                also = []
                if not key.startswith("\x00"):
                    cur.execute("SELECT id, source, url FROM sc_articles WHERE group_id = %s AND id <> %s ORDER BY id",
                                (key, r[0]))
                    also = [{"id": i, "source": s, "url": u} for i, s, u in cur.fetchall()]
                # a free text here has no lexical evidence: the model's across-languages regime (semantic only)
                z = self.model.logits(lv_cos[key], tv_cos[key], sim, 0.0, 0.0, 10**6, True)
                tier = "same_story" if float(z) >= 0.0 else "related"
                items.append({"id": r[0], "score": round(sim, 4), "tier": tier, "also_in": also, "title": r[1],
                              "source": r[3], "url": r[2], "published": r[4], "lang": r[5],
                              "group": None if key.startswith("\x00") else key, "members": [o["id"] for o in also]})
            return noted({"query": None, "related": self._shape(cur, items, k, options, None)}, note)

    def article(self, article_id: str) -> dict:
        with self._cursor() as cur:
            cur.execute("SELECT id, title, url, source, published, lang, text FROM sc_articles WHERE id = %s",
                        (article_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no article with id '{article_id}' in the exported tables")
        return dict(zip(("id", "title", "url", "source", "published", "lang", "text"), row, strict=True))

    def groups(self, limit: int, offset: int) -> GroupsPage:
        with self._cursor() as cur:
            cur.execute("SELECT count(*) FROM sc_groups")
            total = cur.fetchone()[0]
            cur.execute("SELECT body FROM sc_groups ORDER BY size DESC, group_id LIMIT %s OFFSET %s", (limit, offset))
            return {"total": total, "offset": offset, "groups": [r[0] for r in cur.fetchall()]}

    def group(self, group_id: str) -> Group:
        with self._cursor() as cur:
            cur.execute("SELECT body FROM sc_groups WHERE group_id = %s", (group_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no group with id '{group_id}' in the exported tables")
        return row[0]

    def health(self) -> dict:
        with self._cursor() as cur:
            cur.execute("SELECT count(*) FROM sc_articles")
            n = cur.fetchone()[0]
        return {"status": "ok", "backend": "pg", "articles": n, "generation": self.meta.get("generation"),
                "model": self.meta.get("model"), "related_lists": "stored"}

    def generation(self) -> str:
        return f"pg.{self.meta.get('generation')}"

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """The exported tables change only with the next export: nothing to hold."""
        return contextlib.nullcontext()

    @contextmanager
    def quick_snapshot(self) -> Iterator[bool]:
        """Never: every answer waits on the database server, so none is made on the event loop."""
        yield False

    def add(self, rows: list[dict]) -> dict:
        raise StoreError("the PostgreSQL backend is read only; add to the store and run export-pg")

    def remove(self, article_id: str) -> bool:
        raise StoreError("the PostgreSQL backend is read only; remove from the store and run export-pg")

    def build_lists(self, stop: Callable[[], bool]) -> int:
        return 0  # nothing is written here

    def read_threads(self) -> int:
        """One per core: every answer waits on the database server, outside Python."""
        return cores()

    def close(self) -> None:
        for c in self._all:
            c.close()
