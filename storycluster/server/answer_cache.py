"""Rendered GET answers kept in memory by their request (path and query), each with the version of the data it
was computed from: an answer is the same bytes while that version holds, so a hit is exact. Most answers are of
the data's generation, which every write changes: the first answer of a new generation drops the older ones
(they can never be asked for again). An answer from an article's stored related list carries that list's
version instead and outlives the writes that leave the list; a newer one replaces it. Least recently used out
first, within a byte budget."""

from __future__ import annotations

import threading
from collections import OrderedDict


class AnswerCache:
    """``get``/``put`` of (body, media type) by key and version, at most ``max_bytes`` of bodies (0: nothing
    kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # key -> (version, body, media type, of the generation)
        self._items: OrderedDict[str, tuple[str, bytes, str, bool]] = OrderedDict()
        self._bytes = 0
        self._generation: str | None = None
        self._lock = threading.Lock()  # reads may run on several threads (serve --threads)

    def get(self, key: str, version: str) -> tuple[bytes, str] | None:
        with self._lock:
            got = self._items.get(key)
            if got is None or got[0] != version:
                return None
            self._items.move_to_end(key)
            return got[1], got[2]

    def put(self, key: str, version: str, body: bytes, media_type: str, generation: bool = True) -> None:
        """Keep ``body`` under ``key`` at ``version``; ``generation``: that version is the data's generation
        (a new one drops the answers of the others), else one that outlives it (a stored list's)."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if generation and version != self._generation:
                for old_key in [k for k, item in self._items.items() if item[3]]:
                    self._bytes -= len(self._items.pop(old_key)[1])
                self._generation = version
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._items[key] = (version, body, media_type, generation)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, (_, dropped, *_) = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)
