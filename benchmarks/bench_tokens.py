"""The tokeniser on non-Latin text: time per token and memory held, by word-cache size.

ASCII words take a fast path; every other word is folded (script folding,
NFKD, case folding, combining marks dropped) and its tokens are kept in a
per-process LRU cache of ``text.plain.TOKEN_CACHE`` words. Every parse worker
and the main process has its own, so its size is paid once per process.

The corpus: ``--words`` words drawn from a Zipfian vocabulary of
``--vocabulary`` made-up word forms (an inflected language has hundreds of
thousands), in Cyrillic and in Perso-Arabic letters, 300 words a text, some
capitalised, some with punctuation attached (each a word of its own to the
cache), some Persian words joined by a zero-width non-joiner.

For each script and cache size: CPU microseconds per token over the corpus,
the cache's hit rate, and the memory the cache holds when the corpus is done
(``tracemalloc``, in a second pass). The peer row is the tokeniser as it was
before (marks dropped one character at a time, the script table applied to
every word, 65,536 words cached), measured in the same run.

Run: ``python benchmarks/bench_tokens.py [--words 1500000] [--vocabulary 200000]``
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import sys
import time
import tracemalloc
import unicodedata
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.text import plain

SCRIPTS = {
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "persian": "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیيك",
}
PUNCTUATION = ["", "", "", "", "", "", ",", ".", "»", ":"]


def corpus(letters: str, vocabulary: int, words: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choice(letters) for _ in range(rng.randint(3, 11))) for _ in range(vocabulary)
    ]
    drawn = rng.choices(vocab, [1 / (i + 1) for i in range(vocabulary)], k=words)
    texts = []
    for start in range(0, len(drawn), 300):
        out = []
        for j, word in enumerate(drawn[start : start + 300]):
            if j % 15 == 0:
                word = word.capitalize()
            elif j % 23 == 0:
                word += "\u200c" + rng.choice(vocab)
            out.append(word + rng.choice(PUNCTUATION))
        texts.append(" ".join(out))
    return texts


def _previous(chunk: str) -> tuple[str, ...]:
    """The word path before this benchmark: every step on every word, marks one by one."""
    folded = unicodedata.normalize(
        "NFKD", plain.cap_marks(chunk).translate(plain._SCRIPT_TABLE)
    ).casefold()
    folded = unicodedata.normalize("NFKD", folded).replace(*plain._SHORT_I)
    kept = "".join(c for c in folded if not unicodedata.category(c).startswith("M"))
    return tuple(plain._TOKEN_RE.findall(kept))


def measure(texts: list[str], word: Callable[[str], tuple[str, ...]], size: int) -> str:
    cached = functools.lru_cache(maxsize=size)(word) if size else word
    plain._unicode_tokens = cached  # type: ignore[assignment]

    def run() -> int:
        return sum(len(plain.tokens(text)) for text in texts)

    gc.collect()
    started = time.process_time()
    count = run()
    per_token = (time.process_time() - started) / count * 1e6
    if not size:
        return f"{per_token:8.2f} {'-':>8} {'-':>9}"
    info = cached.cache_info()  # type: ignore[attr-defined]
    hit_rate = info.hits / (info.hits + info.misses)
    cached.cache_clear()  # type: ignore[attr-defined]
    gc.collect()
    tracemalloc.start()
    run()
    held = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    return f"{per_token:8.2f} {hit_rate:8.3f} {held:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=1_500_000)
    parser.add_argument("--vocabulary", type=int, default=200_000)
    parser.add_argument("--sizes", default="0,1024,4096,16384,65536")
    args = parser.parse_args()
    current = plain._unicode_tokens.__wrapped__
    print(
        f"{args.words:,} words from {args.vocabulary:,} word forms; current cache: "
        f"{plain.TOKEN_CACHE:,} words"
    )
    print(
        f"{'script':>9} {'word path':>9} {'cache':>6} {'us/token':>8} {'hit rate':>8} "
        f"{'MiB held':>9}"
    )
    for script, letters in SCRIPTS.items():
        texts = corpus(letters, args.vocabulary, args.words)
        print(f"{script:>9} {'previous':>9} {65536:>6} {measure(texts, _previous, 65536)}")
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{script:>9} {'current':>9} {size:>6} {measure(texts, current, size)}")


if __name__ == "__main__":
    main()
