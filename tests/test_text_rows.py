"""Tables read a row at a time from their ``.npy`` files (``aggregator.text.rows``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aggregator.text import language as language_module
from aggregator.text.language import detect_language
from aggregator.text.rows import LazyRows, TransitionRows

from .conftest import seed_lines


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, np.ndarray]:
    values = np.random.default_rng(7).standard_normal((1000, 13)).astype(np.float16)
    path = tmp_path / "table.npy"
    np.save(path, values)
    return path, values


def test_rows_are_gathered_as_numpy_indexes_them_and_each_is_read_once(
    table: tuple[Path, np.ndarray],
) -> None:
    path, values = table
    rows = LazyRows(path)
    assert rows.shape == (1000, 13) and rows.dtype == np.float16
    first = np.array([999, 3, 3, 500, 0])
    assert np.array_equal(rows[first], values[first])
    assert rows.rows_read == 4
    second = np.arange(0, 1000, 7)
    assert np.array_equal(rows[second], values[second])
    # 143 indices, one of which (0) was read before
    assert rows.rows_read == 4 + 142
    assert np.array_equal(rows[first], values[first])


def test_rows_gathered_from_many_threads_at_once_are_the_tables(
    table: tuple[Path, np.ndarray],
) -> None:
    path, values = table
    rows = LazyRows(path)
    orders = [np.random.default_rng(seed).integers(0, 1000, 300) for seed in range(8)]
    wrong: list[int] = []
    start = threading.Barrier(len(orders))

    def gather(i: int) -> None:
        start.wait()
        for chunk in np.array_split(orders[i], 30):
            if not np.array_equal(rows[chunk], values[chunk]):
                wrong.append(i)

    threads = [threading.Thread(target=gather, args=(i,)) for i in range(len(orders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not wrong
    assert rows.rows_read == len(np.unique(np.concatenate(orders)))


def test_transition_rows_are_the_flat_tables_rows(tmp_path: Path) -> None:
    values = np.random.default_rng(3).integers(0, 2**32, 64 * 256, dtype=np.uint32)
    path = tmp_path / "nextmove.npy"
    np.save(path, values)
    rows = TransitionRows(path, 256)
    assert rows.rows == [None] * 64
    assert list(rows.read(63)) == values[63 * 256 :].tolist()
    assert list(rows.read(0)) == values[:256].tolist()
    assert rows.rows_read == 2 and rows.rows[1] is None


@pytest.mark.parametrize(
    ("values", "make"),
    [
        (np.arange(10, dtype=np.float32), lambda p: LazyRows(p)),  # one dimension
        (np.arange(100, dtype=np.int64), lambda p: TransitionRows(p, 10)),  # not uint32
        (np.arange(100, dtype=np.uint32), lambda p: TransitionRows(p, 7)),  # not rows of 7
    ],
)
def test_a_table_of_another_shape_or_type_is_refused(
    tmp_path: Path, values: np.ndarray, make: object
) -> None:
    path = tmp_path / "t.npy"
    np.save(path, values)
    with pytest.raises(ValueError, match=r"t\.npy"):
        make(path)  # type: ignore[operator]


def test_a_truncated_table_is_refused(table: tuple[Path, np.ndarray]) -> None:
    path, _ = table
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(ValueError, match="shorter than its header says"):
        LazyRows(path)


@pytest.fixture
def fresh_model() -> Iterator[None]:
    language_module._identifier.cache_clear()
    yield
    language_module._identifier.cache_clear()


def _mapped(names: tuple[str, ...]) -> list[str]:
    maps = Path("/proc/self/maps").read_text()
    return [name for name in names if name in maps]


def test_the_model_maps_neither_big_table_and_reads_few_of_their_rows(fresh_model: None) -> None:
    """Mapped, the two tables cost a worker 30 MiB of mapped pages for ~8 MB of rows read."""
    detected = {detect_language(line) for line in seed_lines()}
    assert {"en", "ru"} <= detected
    assert _mapped(("nextmove.npy", "ptc.npy")) == []
    identifier = language_module._identifier()
    features, transitions = identifier.nb_ptc, identifier.tk_nextmove
    assert 0 < features.rows_read < features.shape[0] / 5
    assert 0 < transitions.rows_read < transitions.shape[0] / 5
