"""Arrays too large to hold while a large store is regrouped, kept in temporary files beside the store and mapped
into memory: the term lists and TF-IDF rows of a million articles are gigabytes, of which scoring reads a few rows
at a time. The OS pages a file's rows in as they are read; :meth:`Spill.release` (also run every
``interval`` seconds while the spill is open) drops them from the process again, and the page cache keeps them
while memory allows, so reading them again costs no disk read. The values are the same as in memory: only where
they live changes."""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import StoreError

_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


class Spill:
    """A folder of mapped arrays (removed on :meth:`close`)."""

    def __init__(self, folder: Path, interval: float = 0.1) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=".spill-", dir=folder))
        self._maps: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_released, args=(interval,), daemon=True)
        self._thread.start()

    def empty(self, n: int, dtype) -> np.ndarray:
        """An uninitialized array of ``n`` values in a file of its own."""
        if n == 0:
            return np.empty(0, dtype=dtype)
        size = n * np.dtype(dtype).itemsize
        with self._lock:
            with open(self.folder / f"{len(self._maps)}.bin", "w+b") as fh:
                # the disk space taken now: a mapped file that cannot grow kills the process at the write (SIGBUS)
                try:
                    if hasattr(os, "posix_fallocate"):  # not on macOS: the file grows as written there
                        os.posix_fallocate(fh.fileno(), 0, size)
                    else:
                        fh.truncate(size)
                except OSError as e:
                    raise StoreError(
                        f"{self.folder.parent}: no room for the regrouping's temporary files ({size / 1e9:.1f} GB "
                        f"more: {e.strerror}); free disk space there, or set regroup_spill_from in config.json "
                        f"above the store's article count to regroup in memory") from e
                m = mmap.mmap(fh.fileno(), size)
            self._maps.append(m)
        return np.frombuffer(m, dtype=dtype)

    def release(self) -> None:
        """Drop the mapped pages from the process (written values stay in the files)."""
        if _DONTNEED is None:
            return
        with self._lock:
            for m in self._maps:
                m.madvise(_DONTNEED)

    def _keep_released(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.release()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.release()
        with self._lock:
            self._maps.clear()  # an array stays valid while anything holds it (its file unlinked)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
