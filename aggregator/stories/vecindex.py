"""The semantic candidates' search: sign bits of every indexed entry, searched by brute force.

A process keeps, per indexed entry, its key, its publication time, its
language and the 256 sign bits of its embedding (49 bytes in all); a lookup
masks the entries inside the time window and of the same language, and
ranks them by Hamming distance (popcount of XOR over four 64-bit words), so
100,000 entries are 3.2 MB scanned in a few milliseconds. The exact cosine of
the best few is computed from their stored int8 vectors afterwards
(:mod:`aggregator.store.semindex`). A brute-force scan rather than an ANN
graph: at these sizes it is as fast, exact in its ranking, and needs no
rebuilding when entries change.
"""

from __future__ import annotations

import numpy as np

__all__ = ["VectorIndex"]

_WORDS = 4  # 256 bits


#: the distance of rows outside the window (above any real one, at most 256)
_FAR = 0xFFFF


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per row of four 64-bit words, as uint16 (numpy 1.26 has no bitwise_count)."""
    if hasattr(np, "bitwise_count"):
        # Four column adds: a row-wise sum(axis=1) is ten times slower.
        counts = np.bitwise_count(words)
        total: np.ndarray = counts[:, 0].astype(np.uint16)
        for column in range(1, _WORDS):
            total += counts[:, column]
        return total
    bits = np.unpackbits(words.view(np.uint8), axis=1)
    summed: np.ndarray = bits.sum(axis=1, dtype=np.uint16)
    return summed


class VectorIndex:
    """Keys, times, languages and sign bits of the indexed entries, in growable arrays."""

    def __init__(self) -> None:
        self._n = 0
        self._keys = np.zeros(0, dtype=np.int64)
        self._codes = np.zeros((0, _WORDS), dtype=np.uint64)
        self._times = np.zeros(0, dtype=np.float64)
        self._langs = np.zeros(0, dtype=np.int32)
        self._row: dict[int, int] = {}
        self._lang_ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (allocated capacity included)."""
        arrays = (self._keys, self._codes, self._times, self._langs)
        return sum(int(a.nbytes) for a in arrays)

    def _grow(self) -> None:
        size = max(1024, 2 * len(self._keys))
        if len(self._row) < self._n // 2:
            self._compact()
            if self._n < len(self._keys):
                return
        for name in ("_keys", "_codes", "_times", "_langs"):
            old = getattr(self, name)
            new = np.zeros((size, *old.shape[1:]), dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def add(self, key: int, code: bytes, published: float, language: str) -> None:
        """Index an entry (replacing what the key held)."""
        self.discard(key)
        if self._n == len(self._keys):
            self._grow()
        n = self._n
        self._keys[n] = key
        self._codes[n] = np.frombuffer(code, dtype=np.uint64)
        self._times[n] = published
        self._langs[n] = self._lang_ids.setdefault(language, len(self._lang_ids) + 1)
        self._row[key] = n
        self._n += 1

    def extend(
        self, keys: list[int], codes: bytes, times: list[float], languages: list[str]
    ) -> None:
        """Index many entries (``codes``: theirs, concatenated), replacing what the keys held."""
        for key in keys:
            self.discard(key)
        count = len(keys)
        while self._n + count > len(self._keys):
            self._grow()
        n = self._n
        self._keys[n : n + count] = keys
        self._codes[n : n + count] = np.frombuffer(codes, dtype=np.uint64).reshape(count, _WORDS)
        self._times[n : n + count] = times
        ids = self._lang_ids
        self._langs[n : n + count] = [ids.setdefault(x, len(ids) + 1) for x in languages]
        self._row.update(zip(keys, range(n, n + count), strict=True))
        self._n += count

    def discard(self, key: int) -> None:
        """Forget an entry (its row stays, never matched again)."""
        row = self._row.pop(key, None)
        if row is not None:
            self._langs[row] = 0

    def nearest(
        self, code: bytes, *, language: str, since: float, until: float, limit: int
    ) -> list[int]:
        """Up to ``limit`` keys nearest in Hamming distance, published within the window."""
        lang = self._lang_ids.get(language)
        if lang is None or not self._n:
            return []
        n = self._n
        times = self._times[:n]
        mask = (self._langs[:n] == lang) & (times >= since) & (times <= until)
        inside = int(np.count_nonzero(mask))
        if not inside:
            return []
        query = np.frombuffer(code, dtype=np.uint64)
        if inside > n // 4:
            # Most entries are in the window: scan them all, no copy of the codes.
            distance = _popcount(self._codes[:n] ^ query)
            distance[~mask] = _FAR
            rows = np.arange(n)
        else:
            rows = np.flatnonzero(mask)
            distance = _popcount(self._codes[rows] ^ query)
        if rows.size > limit:
            best = np.argpartition(distance, limit)[:limit]
            rows, distance = rows[best], distance[best]
        kept = distance != _FAR
        rows, distance = rows[kept], distance[kept]
        order = np.lexsort((self._keys[rows], distance))
        return [int(k) for k in self._keys[rows[order]]]

    def _compact(self) -> None:
        """Drop the rows of discarded entries (most of them are)."""
        live = np.asarray(sorted(self._row.values()), dtype=np.int64)
        count = live.size
        for name in ("_keys", "_codes", "_times", "_langs"):
            array = getattr(self, name)
            array[:count] = array[live]
        self._n = count
        self._row = {int(k): i for i, k in enumerate(self._keys[:count])}
