"""Tables in ``.npy`` files whose rows are read from the file the first time they are used.

For the language model (:mod:`aggregator.text.language`): its feature table
(100,053 rows of 142 float16, 28 MB) and its automaton's transition table
(38,346 rows of 256 uint32, 39 MB), of which a process detecting the
languages of real text uses a few thousand rows each. Mapped, the two cost a
parse worker 30 MiB of mapped pages after one pass over 300 feeds although
the rows it read came to ~8 MB: they lie one to a page all over the files,
and the kernel maps up to 16 neighbours of each page a read faults in
(``docs/performance.md``, eleventh pass). Read with ``pread`` and kept, each
row costs one system call once per process.
"""

from __future__ import annotations

import os
import sys
import threading
from array import array
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LazyRows", "TransitionRows"]


class _RowFile:
    """An open ``.npy`` file of ``rows`` rows of ``row_bytes`` bytes each, after its header."""

    def __init__(self, path: Path, width: int | None = None) -> None:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(f)
            offset = f.tell()
        if width is not None and len(shape) == 1 and shape[0] % width == 0:
            shape = (shape[0] // width, width)  # a flat table of rows of ``width``
        if len(shape) != 2 or fortran_order or dtype.hasobject:
            raise ValueError(f"{path}: not a C-order table of numbers in rows")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype: np.dtype[Any] = dtype
        self._offset = offset
        self._row_bytes = self.shape[1] * dtype.itemsize
        if path.stat().st_size < offset + self.shape[0] * self._row_bytes:
            raise ValueError(f"{path}: shorter than its header says")
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def _bytes(self, row: int) -> bytes:
        data = os.pread(self._fd, self._row_bytes, self._offset + row * self._row_bytes)
        if len(data) != self._row_bytes:
            raise OSError(f"short read of row {row}")
        return data

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            os.close(fd)


class LazyRows(_RowFile):
    """The rows of a 2-D table, gathered as ``table[indices]`` (a copy, as numpy's fancy
    indexing gives): what py3langid's scoring asks of its feature table. Thread-safe."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        #: where each row read so far sits in ``_kept``, -1 for a row not read
        #: yet (4 bytes a row: 0.4 MB for the feature table, made on first use)
        self._slot: np.ndarray | None = None
        self._kept = np.empty((0, self.shape[1]), dtype=self.dtype)
        self._count = 0
        self._lock = threading.Lock()

    @property
    def rows_read(self) -> int:
        """How many rows this process has read from the file."""
        return self._count

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._slot is None:
                self._slot = np.full(self.shape[0], -1, dtype=np.int32)
            slots = self._slot[indices]
            missing = slots < 0
            if missing.any():
                self._read(self._slot, np.unique(indices[missing]))
                slots = self._slot[indices]
            rows: np.ndarray = self._kept[slots]
            return rows

    def _read(self, slot: np.ndarray, rows: np.ndarray) -> None:
        needed = self._count + len(rows)
        if needed > len(self._kept):
            size = max(needed, 2 * len(self._kept), 256)
            grown = np.empty((size, self.shape[1]), dtype=self.dtype)
            grown[: self._count] = self._kept[: self._count]
            self._kept = grown
        for row in rows.tolist():
            self._kept[self._count] = np.frombuffer(self._bytes(row), dtype=self.dtype)
            slot[row] = self._count
            self._count += 1


class TransitionRows(_RowFile):
    """The rows of a flat uint32 table of ``width`` columns, each an ``array('I')`` once read.

    :attr:`rows` holds None for a row not read yet; ``rows[r] or read(r)`` is
    the automaton's step, as fast as indexing a mapped table. Threads that
    read the same row at once each read it; either copy is kept.
    """

    def __init__(self, path: Path, width: int) -> None:
        super().__init__(path, width)
        if self.dtype != np.dtype("<u4") or array("I").itemsize != 4 or sys.byteorder != "little":
            raise ValueError(f"{path}: not a table of little-endian uint32")
        self.rows: list[array[int] | None] = [None] * self.shape[0]

    @property
    def rows_read(self) -> int:
        """How many rows this process has read from the file."""
        return sum(row is not None for row in self.rows)

    def read(self, row: int) -> array[int]:
        """Read row ``row`` from the file and keep it."""
        values = array("I")
        values.frombytes(self._bytes(row))
        self.rows[row] = values
        return values
