"""Which language an entry is written in, when its source does not say (pure).

py3langid (a maintained fork of langid.py: a naive Bayes model over byte
n-grams, 97 languages, shipped inside the package) and numpy (its arrays) are
imported here and nowhere else. It was chosen over lingua after measuring both on short news
texts in the languages regional agencies write (``benchmarks/bench_langdetect.py``):
lingua's high-accuracy mode is as accurate on those texts but loads hundreds
of megabytes of models per process and is an order of magnitude slower per
text; py3langid loads a few megabytes once and classifies a title and lead in
well under a millisecond, which matters in every worker of the parse pool.
"""

from __future__ import annotations

import functools
import os
import tempfile
import unicodedata
from array import array
from collections import Counter
from pathlib import Path

import numpy as np
import py3langid
from py3langid.langid import MODEL_DIR, MODEL_FILE, RAW_FLOOR, LanguageIdentifier
from py3langid.modelio import load_model

from aggregator.text.rows import LazyRows, TransitionRows

__all__ = ["MIN_CONFIDENCE", "MIN_LETTERS", "detect_language"]

#: Below this probability the detector's answer is not published. py3langid
#: tempers its probabilities by the text's length and splits them between close
#: relatives (Arabic and its dialects ary/arz, English and Nigerian Pidgin), so
#: a right answer on a headline often scores 0.4-0.8 while a wrong one on
#: a name or a number ("Baku 2026") scores under 0.1.
MIN_CONFIDENCE = 0.3
#: Texts with fewer letters than this are not classified: too little evidence.
MIN_LETTERS = 12
# Enough text to be sure; more only costs time.
_SAMPLE = 1200

# The model's arrays, as py3langid's loader returns them.
_ARRAYS = ("ptc", "pc", "classes", "nextmove", "row", "output")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    # The package's own version string: importlib.metadata would bring the email
    # package (1 MiB) into every parsing process.
    return Path(base) / "aggregator" / f"py3langid-{py3langid.__version__}"


def _write_cache(folder: Path) -> None:
    """Decompress the shipped model once into ``folder`` (one ``.npy`` per array)."""
    ptc, pc, classes, nextmove, row, output = load_model(MODEL_DIR / MODEL_FILE)
    values = (ptc, pc, np.array(classes), np.asarray(nextmove), np.asarray(row), output)
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    for name, value in zip(_ARRAYS, values, strict=True):
        np.save(staging / f"{name}.npy", np.asarray(value), allow_pickle=False)
    try:
        staging.rename(folder)
    except OSError:  # another process got there first: theirs is as good
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()


class _Identifier(LanguageIdentifier):  # type: ignore[misc]  # py3langid is untyped
    """py3langid's identifier, walking its automaton over transition rows read on first use.

    The walk is py3langid's ``visit_counts`` with ``tk_nextmove.rows[tk_row[state]]``
    (:class:`~aggregator.text.rows.TransitionRows`) for its
    ``nextmove[rowbase[state] + byte]``: the same states, features and scores
    (``tests/test_scripts.py`` compares them with the shipped model's).
    """

    __slots__ = ()

    def _raw_score(self, text: bytes) -> np.ndarray:
        visits = self._visits(text)
        if visits:
            scores: np.ndarray = self._sparse_score(visits, self.nb_ptc)
            return scores
        return np.full(len(self.nb_classes), 0.0 if self._norm_probs else RAW_FLOOR, np.float32)

    def _visits(self, text: bytes) -> Counter[int] | None:
        rows, read = self.tk_nextmove.rows, self.tk_nextmove.read
        row_of, out = self.tk_row, self.tk_output
        state, found = 0, list[int]()
        append = found.append
        for letter in text:
            row = rows[row_of[state]] or read(row_of[state])
            state = row[letter]
            feature = out[state]
            if feature >= 0:
                append(feature)
        return Counter(found) if found else None


def _from_cache(folder: Path) -> LanguageIdentifier:
    """The identifier over the cached arrays: the two big tables read a row at a time as texts
    need them (:mod:`aggregator.text.rows`), the small ones memory-mapped."""
    small = ("pc", "classes", "output", "row")
    loaded = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in small}
    row_of = array("I", loaded["row"].astype(np.uint32).tobytes())
    identifier = _Identifier(
        LazyRows(folder / "ptc.npy"),
        np.asarray(loaded["pc"]),
        loaded["classes"].tolist(),
        TransitionRows(folder / "nextmove.npy", 256),
        # the state -> feature table mapped: as a list of ints it was 3.7 MiB per process
        np.ascontiguousarray(loaded["output"], dtype=np.int64).data,
        norm_probs=True,
        # empty here: py3langid would make a list of 104,583 pre-shifted row
        # offsets from it (3.7 MiB), which the walk above does not use
        tk_row=array("I"),
    )
    identifier.tk_row = row_of
    return identifier


@functools.cache
def _identifier() -> LanguageIdentifier:
    # Decompressing the shipped model (LZMA, 68 MB of arrays) takes seconds, in
    # every process that detects a language: do it once per user and version,
    # then map it. norm_probs makes the score a probability.
    folder = _cache_dir()
    try:
        if not folder.is_dir():
            _write_cache(folder)
        return _from_cache(folder)
    except (OSError, ValueError):
        # No writable cache (a read-only home) or a damaged one: the slow way.
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _letters(text: str) -> int:
    return sum(1 for c in text if c.isalpha())


def detect_language(text: str) -> str | None:
    """The language of ``text`` as a BCP 47 primary subtag, when the model is sure.

    Args:
        text: plain text (a title and the start of the content is plenty).

    Returns:
        ``"ru"``, ``"fa"``, ``"az"``...; None when the text is too short or
        the model's probability is below :data:`MIN_CONFIDENCE`.
    """
    sample = unicodedata.normalize("NFC", " ".join(text.split())[:_SAMPLE])
    letters = _letters(sample)
    if letters < MIN_LETTERS:
        return None
    language, probability = _identifier().classify(sample)
    if probability < MIN_CONFIDENCE:
        return None
    return str(language)
