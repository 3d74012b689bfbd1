"""MinHash signatures and LSH band keys of shingle hashes, in numpy (pure).

The one module besides :mod:`aggregator.text.language` that imports numpy, and
only :mod:`aggregator.stories.neardup` imports it, when it first sketches a text: a
pass with nothing new to compare (every feed answered 304) never loads numpy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["minhash", "shingles_and_bands"]

#: the permutations' seed: every process and every restart computes the same
#: band keys for the same text (they are stored)
_SEED = 20261128
#: MurmurHash3's 32-bit finaliser: shifts and multipliers
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine maps ``h -> a*h + b mod 2**32`` (odd ``a``), one per MinHash slot.

    Drawn as datasketch 2's ``affine32`` scheme draws them from the same
    seed, so the band keys stored before datasketch was dropped stay valid
    (``tests/test_minhash.py`` compares the two).
    """
    gen = np.random.RandomState(_SEED)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def minhash(shingles: np.ndarray, num_perm: int) -> np.ndarray:
    """The MinHash signature of 32-bit shingle hashes (repeats change nothing).

    Each hash is first mixed by MurmurHash3's finaliser (CRC-32 values of
    similar shingles are close), then each slot keeps the least of its affine
    map over the set. Arithmetic wraps modulo 2**32.

    Returns:
        ``num_perm`` unsigned 32-bit values; all ones for an empty set.
    """
    if not len(shingles):
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    s1, m1, s2, m2, s3 = _FMIX32
    hv = shingles.astype(np.uint32)  # a copy: mixed in place below
    hv ^= hv >> np.uint32(s1)
    hv *= np.uint32(m1)
    hv ^= hv >> np.uint32(s2)
    hv *= np.uint32(m2)
    hv ^= hv >> np.uint32(s3)
    a, b = _permutations(num_perm)
    signature: np.ndarray = (hv[:, None] * a + b).min(axis=0)
    return signature


def _band_key(band: int, values: np.ndarray) -> int:
    digest = hashlib.blake2b(values.tobytes(), digest_size=8, person=b"band%04d" % band).digest()
    return int.from_bytes(digest, "big", signed=True)


def _bands(shingles: np.ndarray, bands: int, rows: int, *, family: int) -> tuple[int, ...]:
    values = minhash(shingles, bands * rows)
    return tuple(
        _band_key(family * 1000 + b, values[b * rows : (b + 1) * rows]) for b in range(bands)
    )


def shingles_and_bands(
    hashes: Sequence[int], *, lead_shingles: int, bands: int, rows: int
) -> tuple[bytes, tuple[int, ...]]:
    """A text's distinct shingles, packed, and its band keys.

    Args:
        hashes: the text's 32-bit shingle hashes, in order.
        lead_shingles: how many of the first ones are the lead's, banded
            apart (family 1) from the whole text's (family 0).
        bands: LSH bands per family; 0 for none (a stored text only compared).
        rows: MinHash values per band.

    Returns:
        The sorted distinct hashes as packed unsigned 32-bit values, and
        ``2 * bands`` signed 64-bit band keys.
    """
    values = np.array(hashes, dtype=np.uint32)
    shingles = np.unique(values)  # sorted
    keys = (
        _bands(shingles, bands, rows, family=0)
        + _bands(values[:lead_shingles], bands, rows, family=1)
        if bands
        else ()
    )
    return shingles.tobytes(), keys
