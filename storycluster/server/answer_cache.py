"""Rendered GET answers kept in memory, keyed as their ETags are (the data's generation, the path and the
query): an answer is the same bytes until an add or a regrouping changes the generation, so a hit is exact. The
answers of an older generation can never be asked for again: the first answer of a new one drops them. Least
recently used out first, within a byte budget."""

from __future__ import annotations

import threading
from collections import OrderedDict


class AnswerCache:
    """``get``/``put`` of (body, media type) by key, at most ``max_bytes`` of bodies (0: nothing kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._generation: str | None = None
        self._lock = threading.Lock()  # reads may run on several threads (serve --threads)

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
            return got

    def put(self, generation: str, key: str, body: bytes, media_type: str) -> None:
        """Keep ``body`` under ``key`` (which names ``generation``)."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if generation != self._generation:
                self._items.clear()
                self._bytes = 0
                self._generation = generation
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._items[key] = (body, media_type)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, (dropped, _) = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)
