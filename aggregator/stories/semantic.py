"""The semantic signal's model: wordllama's shipped static embeddings, loaded offline.

The only module importing ``wordllama`` (the ``semantic`` extra). The wheel
ships a 256-dimension static embedding matrix (``weights/l2_supercat_256.safetensors``)
and its tokenizer (``tokenizers/l2_supercat_tokenizer_config.json``). Its own
``WordLlama.load()`` looks for the tokenizer under ``tokenizer/`` and, not
finding it, goes to the network; so both files are opened here by path, and
nothing is ever downloaded. An embedding is the mean of the text's token
vectors, normalised (as ``WordLlamaInference.embed``), and travels as a
:class:`Vector`: int8 components with one scale (cosine error below 0.005),
and the 256 sign bits the index searches by Hamming distance first.

Imported only when ``dedup: {semantic: true}``: numpy and the model stay out
of a daemon that does not use them.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np

from aggregator.model import Vector

__all__ = ["DIM", "Model", "Vector", "cosine", "load", "model_files"]

#: components of an embedding
DIM = 256
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
#: tokens embedded per text: the title and lead say what the story is
_MAX_TOKENS = 256


class MissingModel(RuntimeError):
    """The ``semantic`` extra is not installed, or its files are not where the wheel puts them."""


def model_files() -> tuple[Path, Path]:
    """The shipped weights and tokenizer files, found without importing the package."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise MissingModel(
            "dedup.semantic: the model is not installed (pip install 'aggregator[semantic]')"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / _WEIGHTS, root / _TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise MissingModel(f"dedup.semantic: {path} is missing from the wordllama package")
    return weights, tokenizer


class Model:
    """Static embeddings: a token matrix and its tokenizer."""

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        with safe_open(str(weights), framework="np", device="cpu") as f:
            matrix = f.get_tensor("embedding.weight")
        # Kept as shipped (float16: 16 MB); a text's rows are averaged in float32.
        self._matrix = np.ascontiguousarray(matrix)
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_MAX_TOKENS)

    @property
    def nbytes(self) -> int:
        """The size of the token matrix in memory."""
        return int(self._matrix.nbytes)

    def embed(self, texts: list[str]) -> list[Vector]:
        """One normalised, quantised embedding per text (an empty text's is all zeros)."""
        encoded = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        out: list[Vector] = []
        top = self._matrix.shape[0] - 1
        for enc in encoded:
            ids = np.clip(np.asarray(enc.ids, dtype=np.int64), 0, top)
            if ids.size:
                pooled = self._matrix[ids].mean(axis=0, dtype=np.float32)
            else:
                pooled = np.zeros(DIM, dtype=np.float32)
            out.append(quantise(pooled))
        return out


def quantise(vector: np.ndarray) -> Vector:
    """A float vector as a stored :class:`Vector` (normalised first)."""
    norm = float(np.linalg.norm(vector))
    unit = vector / norm if norm > 0 else vector
    peak = float(np.abs(unit).max()) if norm > 0 else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    values = np.round(unit / scale).astype(np.int8)
    code = np.packbits(unit > 0).tobytes()
    return Vector(values.tobytes(), scale, code)


def cosine(a: Vector, b: Vector) -> float:
    """The cosine similarity of two stored vectors (numpy; :func:`aggregator.model.Vector.cosine`
    gives the same without it)."""
    x = np.frombuffer(a.values, dtype=np.int8).astype(np.float32)
    y = np.frombuffer(b.values, dtype=np.int8).astype(np.float32)
    return float(x @ y) * a.scale * b.scale


@functools.cache
def load() -> Model:
    """The model, loaded once per process from the installed package's files (no network)."""
    weights, tokenizer = model_files()
    logging.getLogger(__name__).info("semantic model loaded from %s", weights.parent.parent)
    return Model(weights, tokenizer)
