"""The store folder: ``config.json`` (format version, model, index settings), ``store.sqlite``,
``index.faiss``, and a lock file that lets one writer in at a time."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    thresholds: dict = field(default_factory=dict)
    #: languages a sentence-transformers model reads, as declared at creation (None: every language); the
    #: bundled model's own are known (``embed.model_languages``)
    model_languages: list[str] | None = None
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
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(f"{path}: store format version {version}, this storycluster reads version "
                             f"{FORMAT_VERSION}; rebuild the store with this version")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / CONFIG, json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file, fsync, rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class WriteLock:
    """An exclusive advisory lock on the store folder for the duration of a write."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fh = None

    def held_elsewhere(self) -> bool:
        """True while another process holds the lock (a write is in progress)."""
        try:
            with self:
                return False
        except StoreError:
            return True

    def __enter__(self) -> WriteLock:
        self._fh = open(self.path, "a")  # noqa: SIM115 - released in __exit__
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise StoreError(f"{self.path.parent}: another storycluster process is writing to this store; "
                             "wait for it to finish") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
