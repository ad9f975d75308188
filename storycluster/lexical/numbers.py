"""Numbers a text writes (ages, amounts, years) as codes any script agrees on: shared numbers are evidence of one
story, and two texts writing different numbers of one kind are evidence against it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..normalize import WORD
from .tfidf import rows_csr

#: codes of the four-digit numbers 1900-2099 (years): int("1" + digits), see :func:`number_codes`
YEAR_CODES = (11900, 12099)
_ARABIC_NUMBER = re.compile(r"^[\u0600-\u06FF]{0,3}(\d+)[\u0600-\u06FF]?$")


def number_codes(text: str) -> np.ndarray:
    """The distinct numbers a text writes (ages, amounts, tolls, times, dates: words that are digits, also
    with an Arabic proclitic or suffix letter on them, as in و15 or 2024م; not codes such as G7 or F16), as
    sorted uint64 codes ``int("1" + digits)`` (so leading zeros count). Digits of any script count (the
    matching form already has Arabic-Indic and Persian digits as ASCII). ``text``: normalized text (the
    pipeline's matching text). Same-story articles tend to write the same numbers, other events of one kind
    other ones, in any language. (Every digit run, G7 and F16 included, measured worse on ECB+:
    docs/quality.md.)"""
    out = set()
    for w in WORD.findall(text):
        if not w.isdecimal():
            m = _ARABIC_NUMBER.match(w)
            if m is None:
                continue
            w = m.group(1)
        out.add(int("1" + w) if len(w) <= 18 else (int.from_bytes(w.encode()[-8:], "little") | 1 << 63))
    return np.array(sorted(out), dtype=np.uint64)


def is_year(codes: np.ndarray) -> np.ndarray:
    return (codes >= YEAR_CODES[0]) & (codes <= YEAR_CODES[1])


def number_text(code: int) -> str:
    """The digits behind a code of :func:`number_codes` (a hashed long run shows as '…')."""
    return str(code)[1:] if code < 1 << 63 else "…"


@dataclass(slots=True)
class PackedNumbers:
    """Many texts' number codes in two flat arrays: text ``r`` writes ``codes[offsets[r]:offsets[r + 1]]`` (a
    million texts' numbers as a million small arrays took a tenth of a gigabyte more)."""

    codes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, one more than there are texts

    @classmethod
    def from_blobs(cls, blobs: Sequence[bytes | None]) -> PackedNumbers:
        """From stored codes (the ``numbers`` column; None or empty: none)."""
        size = np.fromiter((len(b or b"") // 8 for b in blobs), dtype=np.int64, count=len(blobs))
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum(size, out=offsets[1:])
        return cls(np.frombuffer(b"".join(b or b"" for b in blobs), dtype=np.uint64).copy(), offsets)

    @classmethod
    def concat(cls, parts: Sequence[PackedNumbers], n: int = 0) -> PackedNumbers:
        """The texts of ``parts`` one after another (``n``: how many, for no parts)."""
        if not parts:
            return cls(np.zeros(0, dtype=np.uint64), np.zeros(n + 1, dtype=np.int64))
        shift = np.cumsum([0, *(len(p.codes) for p in parts[:-1])])
        offsets = np.concatenate([[0], *(p.offsets[1:] + s for p, s in zip(parts, shift, strict=True))])
        return cls(np.concatenate([p.codes for p in parts]), offsets.astype(np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, r: int) -> np.ndarray:
        """Text ``r``'s codes (as stored in the ``numbers`` column)."""
        return self.codes[self.offsets[r]:self.offsets[r + 1]]


def number_matrices(codes: Sequence[np.ndarray] | PackedNumbers):
    """Two binary CSR matrices over the texts: the years each writes, and its other numbers (columns: the
    distinct codes); a row inner product counts shared numbers."""
    n = len(codes)
    if isinstance(codes, PackedNumbers):
        flat, lengths = codes.codes, np.diff(codes.offsets)
    else:
        flat = np.concatenate(codes) if n else np.zeros(0, dtype=np.uint64)
        lengths = np.array([len(c) for c in codes], dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    vocab, cols = np.unique(flat, return_inverse=True)
    years, others = (rows_csr(np.ones(int(keep.sum())), cols.ravel()[keep], row[keep], n, max(len(vocab), 1))
                     for keep in (is_year(flat), ~is_year(flat)))
    return years, others
