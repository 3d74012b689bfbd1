"""Our MinHash gives datasketch's signatures bit for bit, so stored band keys stay valid.

The band keys of every stored story (``story_index``) were computed with
datasketch 2's ``affine32`` MinHash before it was replaced by a few numpy
lines (datasketch pulled scipy into every parse worker). Any drift would
split stories across the switch, so datasketch stays a test dependency and
is the reference here.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.stories import minhash, neardup
from aggregator.stories.neardup import NearDupSettings


def _reference(shingles: list[int], num_perm: int) -> np.ndarray:
    mh = MinHash(num_perm=num_perm, seed=minhash._SEED, hashfunc=lambda v: v)
    mh.update_batch(shingles)
    return mh.hashvalues


@settings(max_examples=300, deadline=None)
@given(
    shingles=st.lists(st.integers(0, 2**32 - 1), max_size=400),
    num_perm=st.sampled_from([1, 3, 48, 64, 128]),
)
def test_signature_equals_datasketch(shingles: list[int], num_perm: int) -> None:
    ours = minhash.minhash(np.array(shingles, dtype=np.uint32), num_perm)
    assert ours.dtype == np.uint32
    assert ours.tobytes() == _reference(shingles, num_perm).astype(np.uint32).tobytes()


def test_repeats_and_order_change_nothing() -> None:
    values = np.array([5, 9, 2**32 - 1, 0, 9, 5], dtype=np.uint32)
    once = minhash.minhash(np.unique(values), 48)
    assert minhash.minhash(values, 48).tobytes() == once.tobytes()
    assert minhash.minhash(values[::-1].copy(), 48).tobytes() == once.tobytes()


def test_input_is_not_changed() -> None:
    values = np.array([1, 2, 3], dtype=np.uint32)
    minhash.minhash(values, 16)
    assert values.tolist() == [1, 2, 3]


def _band_keys_through_datasketch(text: str, near: NearDupSettings) -> tuple[int, ...]:
    """The band keys as the datasketch-based code computed them (its steps, verbatim)."""
    import zlib

    from aggregator.topics import tokens

    all_words = tokens(text)
    words = [w for w in all_words if w not in neardup._STOPWORDS] or all_words
    k = near.shingle_words
    body = [zlib.crc32(" ".join(words[i : i + k]).encode()) for i in range(len(words) - k + 1)]
    lead = words[: near.lead_words]
    lead_sh = [zlib.crc32(" ".join(lead[i : i + k]).encode()) for i in range(len(lead) - k + 1)]
    keys: list[int] = []
    for family, shingles in ((0, set(body)), (1, set(lead_sh))):
        values = _reference(list(shingles), near.bands * near.rows)
        r = near.rows
        keys += [
            minhash._band_key(family * 1000 + b, values[b * r : (b + 1) * r])
            for b in range(near.bands)
        ]
    return tuple(keys)


@pytest.mark.parametrize(
    "near",
    [NearDupSettings(), NearDupSettings(shingle_words=3, bands=8, rows=4, lead_words=10)],
    ids=["default", "custom"],
)
def test_band_keys_unchanged(near: NearDupSettings) -> None:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(3000)] + ["the", "of", "said", "and", "3", "2026"]
    for n in [25, 26, 30, 61, 62, 200, 900]:
        text = " ".join(rng.choice(vocab) for _ in range(n))
        found = neardup.sketch_text(text, near)
        assert found is not None
        assert found.bands == _band_keys_through_datasketch(text, near)


def test_a_stored_text_is_sketched_without_numpy_as_numpy_would() -> None:
    # The writer only compares stored texts (no bands): it must not load numpy
    # for them, and its packed shingles must be the ones a worker's sketch has.
    code = (
        "import sys\n"
        "from aggregator.stories import neardup\n"
        "from aggregator.stories.neardup import NearDupSettings\n"
        "text = ' '.join(f'talks{i % 37} city{i % 11} round{i}' for i in range(200))\n"
        "sketch = neardup.sketch_text(text, NearDupSettings(), bands=False)\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
        "print(sketch.packed.hex())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    text = " ".join(f"talks{i % 37} city{i % 11} round{i}" for i in range(200))
    banded = neardup.sketch_text(text, NearDupSettings(), bands=True)
    assert banded is not None and banded.bands
    assert bytes.fromhex(done.stdout.strip()) == banded.packed


@pytest.mark.parametrize(
    "label", ["Related stories:", "Читайте также", "بیشتر بخوانید:", "Daha fazla oku"]
)
def test_a_related_list_is_cut_from_the_body_in_every_table_language(label: str) -> None:
    # One table of labels per language (text/lang/*.toml) serves the seed
    # readers and the near-duplicate body alike.
    from aggregator.text.labels import labels

    assert labels().related_line.match(label), label
    body = "<p>The council voted on Monday.</p><p>The bill passed 12 to 3.</p>"
    tail = f"<p>{label}</p><p>Another headline entirely</p><p>And one more</p>"
    assert neardup.body_text_html(body + tail) == neardup.body_text_html(body)
    assert "Another headline" not in neardup.body_text_html(body + tail)
