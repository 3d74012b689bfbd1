"""Content-Encoding decoders (gzip, deflate, br) whose output per step is bounded, so a
compression bomb stops at the fetcher's byte cap having used about that much memory.

The one module importing brotli.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Protocol

import brotli  # type: ignore[import-untyped]

#: what a decoder raises on a corrupt stream
DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error, brotli.error)

# Largest piece a decoder emits per step: bounds memory per step of a bomb.
_CHUNK = 64 * 1024


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _ZlibDecoder:
    """gzip (also multi-member, also zlib-wrapped) or deflate, in bounded steps."""

    def __init__(self, *, gzip: bool) -> None:
        # 47 = auto-detect gzip or zlib header; deflate starts zlib-wrapped and
        # falls back to raw deflate, as servers send either.
        self._gzip = gzip
        self._wbits = 47 if gzip else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._started = False
        self._done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._done:
            try:
                out = self._obj.decompress(data, _CHUNK)
            except zlib.error:
                if self._gzip or self._started:
                    raise
                self._wbits = -zlib.MAX_WBITS
                self._obj = zlib.decompressobj(self._wbits)
                out = self._obj.decompress(data, _CHUNK)
            self._started = True
            if out:
                yield out
            if self._obj.eof:
                rest = self._obj.unused_data
                if self._gzip and rest.lstrip(b"\0"):
                    self._obj = zlib.decompressobj(self._wbits)
                    data = rest
                    continue
                self._done = True
                return
            data = self._obj.unconsumed_tail
            # All input taken but the output step was full: more may be pending.
            while not data and len(out) == _CHUNK:
                out = self._obj.decompress(b"", _CHUNK)
                if out:
                    yield out

    def flush(self) -> Iterator[bytes]:
        if not self._done:
            out = self._obj.flush()
            if out:
                yield out


class _BrotliDecoder:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj.is_finished():
            return
        out: bytes = self._obj.process(data, output_buffer_limit=_CHUNK)
        # With a limit, brotli keeps the rest of its output back until asked
        # again with empty input; drain it before taking more input.
        while out:
            yield out
            if self._obj.is_finished():
                return
            out = self._obj.process(b"", output_buffer_limit=_CHUNK)

    def flush(self) -> Iterator[bytes]:
        return iter(())


def _decoders(content_encoding: str) -> list[_Decoder]:
    """Decoders for a Content-Encoding list, in decoding (reverse) order."""
    decoders: list[_Decoder] = []
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            decoders.append(_ZlibDecoder(gzip=True))
        elif coding == "deflate":
            decoders.append(_ZlibDecoder(gzip=False))
        elif coding == "br":
            decoders.append(_BrotliDecoder())
        else:
            raise ValueError(f"unsupported Content-Encoding {coding!r}")
    return decoders


def _through(decoder: _Decoder, chunks: Iterator[bytes], final: bool) -> Iterator[bytes]:
    for chunk in chunks:
        yield from decoder.feed(chunk)
    if final:
        yield from decoder.flush()


def _decode(decoders: Sequence[_Decoder], data: bytes, *, final: bool) -> Iterator[bytes]:
    """Push ``data`` through the decoder chain lazily, one bounded step at a time."""
    stream: Iterator[bytes] = iter((data,))
    for decoder in decoders:
        stream = _through(decoder, stream, final)
    return stream
