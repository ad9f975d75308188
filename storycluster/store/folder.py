"""The store folder: ``config.json`` (format version, model, index settings), ``store.sqlite``,
``index.faiss``, and a lock file that lets one writer in at a time."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from ..errors import StoreError

FORMAT_VERSION = 1
CONFIG = "config.json"
DATABASE = "store.sqlite"
INDEX = "index.faiss"
LOCK = ".lock"


#: characters of an article's normalized text the embedder sees (measured on ECB+: bench/representation.py)
EMBED_MAX_CHARS = 1000


@dataclass(slots=True)
class StoreConfig:
    model_id: str
    dim: int
    index_dim: int
    index_type: str = "auto"  # auto (flat while small, then IVF), flat, hnsw or ivf
    metric: str = "inner_product"
    normalization: str = "l2"
    embed_max_chars: int = EMBED_MAX_CHARS
    index_generation: int = -1
    #: BLAKE2b of index.faiss as last written: a file damaged since is rebuilt from the database, not used
    index_checksum: str = ""
    thresholds: dict = field(default_factory=dict)
    #: languages a sentence-transformers model reads, as declared at creation (None: every language); the
    #: bundled model's own are known (``embed.model_languages``)
    model_languages: list[str] | None = None
    #: the store keeps every article's related list while it holds at most this many articles (0: never); a
    #: full regrouping recomputes them all, which a larger store would pay for on every tenth of growth
    related_lists_max: int = 2_000_000
    #: a full regrouping of at least this many articles keeps the term lists and TF-IDF rows in temporary files
    #: beside the store instead of in memory (:mod:`.spill`): less memory, more time (0: always)
    regroup_spill_from: int = 200_000
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, folder: Path) -> StoreConfig | None:
        path = folder / CONFIG
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"{path}: cannot read the store config ({e}); restore it or rebuild the store") from e
        if not isinstance(data, dict) or "format_version" not in data:
            if not (folder / DATABASE).exists():  # another program's config.json: the folder is no store
                raise StoreError(f"{folder}: not a storycluster store (its {CONFIG} is not a store's); give --store "
                                 "a new or empty folder, or an existing store")
            raise StoreError(f"{path}: expected a JSON object with a format_version; restore config.json or rebuild "
                             "the store")
        version = data["format_version"]
        if version != FORMAT_VERSION:
            raise StoreError(f"{path}: store format version {version}, this storycluster reads version "
                             f"{FORMAT_VERSION}; rebuild the store with this version")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name, ok, expected in _CHECKS:
            if name in known and not ok(known[name]):
                raise StoreError(f"{path}: field '{name}' is {json.dumps(known[name], ensure_ascii=False)[:80]}, "
                                 f"expected {expected}; fix config.json or rebuild the store")
        missing = [f for f in ("model_id", "dim", "index_dim") if f not in known]
        if missing:
            raise StoreError(f"{path}: missing {', '.join(missing)}; restore config.json or rebuild the store")
        return cls(**known)

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / CONFIG, json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n")


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


#: (field, check, what it should be) for config.json: a hand-edited or damaged value is named, not a traceback
_CHECKS = (
    ("model_id", lambda v: isinstance(v, str) and bool(v), "a model name"),
    ("dim", _positive_int, "a positive integer"),
    ("index_dim", _positive_int, "a positive integer"),
    ("index_type", lambda v: v in ("auto", "flat", "hnsw", "ivf"), "one of auto, flat, hnsw, ivf"),
    ("metric", lambda v: v == "inner_product", '"inner_product"'),
    ("normalization", lambda v: v == "l2", '"l2"'),
    ("embed_max_chars", _positive_int, "a positive integer"),
    ("index_generation", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    ("index_checksum", lambda v: isinstance(v, str), "a string"),
    ("thresholds", lambda v: isinstance(v, dict) and all(isinstance(k, str) and _number(x) for k, x in v.items()),
     "an object of numbers (duplicate_jaccard, related, title_weight, window_days)"),
    ("related_lists_max", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
     "an integer, 0 or more"),
    ("regroup_spill_from", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
     "an integer, 0 or more"),
    ("model_languages", lambda v: v is None or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
     "null or a list of language codes"),
)


def file_checksum(path: Path) -> str:
    """CRC-32 of a file's bytes, as ``crc32:<hex>``, read in chunks: it finds damaged bytes (not tampering) at about
    twice BLAKE2b's speed, which counts at a million articles' index of a gigabyte."""
    import zlib

    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return f"crc32:{crc:08x}"


_VERIFIED: set[tuple] = set()  # (path, size, mtime, inode, checksum) found whole by this process


def checksum_matches(path: Path, expected: str) -> bool:
    """Whether ``path`` has the checksum ``expected`` (``crc32:…``, or BLAKE2b hex as stores before 0.2 wrote it).
    A file found whole once is not read again by this process while its size, time and inode stay the same."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, expected)
    if key in _VERIFIED:
        return True
    if expected.startswith("crc32:"):
        ok = file_checksum(path) == expected
    else:
        import hashlib

        with open(path, "rb") as fh:
            ok = hashlib.file_digest(fh, "blake2b").hexdigest() == expected
    if ok:
        _VERIFIED.add(key)
    return ok


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file of this process's own, fsync, rename over ``path``; the temporary file is removed
    when anything fails (two processes writing one path never share a temporary file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class StoreBusy(StoreError):
    """Another process holds the store's write lock."""


class WriteLock:
    """An exclusive advisory lock on the store folder for the duration of a write."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fh: TextIO | None = None

    def held_elsewhere(self) -> bool:
        """True while another process holds the lock (a write is in progress)."""
        try:
            with self:
                return False
        except StoreBusy:
            return True

    def __enter__(self) -> WriteLock:
        try:
            self._fh = open(self.path, "a")  # noqa: SIM115 - released in __exit__
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open the store's lock file ({e.strerror or e}); it must be a "
                             "writable file: remove it if it is a folder, or check permissions") from None
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise StoreBusy(f"{self.path.parent}: another storycluster process is writing to this store; "
                            "wait for it to finish") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
