"""Decoding: BOMs, declarations, legacy encodings, cleaning."""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from aggregator.parse.text import DecodeError, decode

SAMPLES = {
    "cp1252": "The minister said: “We won’t accept this” — a café in Zürich, naïve résumé, 5€.",
    "iso-8859-2": "Minister powiedział, że rozmowy w Łodzi i Gdańsku będą kontynuowane.",
    "cp1250": "Ministr zahraničí řekl, že jednání v Brně budou pokračovat příští týden.",
    "koi8-r": "Министр иностранных дел заявил, что переговоры продолжатся.",
    "cp1251": "Министр иностранных дел заявил, что переговоры продолжатся.",
    "iso-8859-7": "Ο υπουργός Εξωτερικών δήλωσε ότι οι συνομιλίες θα συνεχιστούν.",
    "iso-8859-9": "Dışişleri Bakanı, görüşmelerin İstanbul'da süreceğini söyledi.",
    "shift_jis": "外務大臣は、交渉が来週も続くと述べた。東京で記者会見が行われた。",
}


@pytest.mark.parametrize("encoding", sorted(SAMPLES))
def test_undeclared_legacy_encodings_decode_exactly(encoding: str) -> None:
    text = SAMPLES[encoding]
    decoded = decode(text.encode(encoding))
    assert decoded.text == text
    assert decoded.warnings and "guessed" in decoded.warnings[0]


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_byte_order_marks(codec: str) -> None:
    text = "Ереван — Yerevan — Երևան"
    data = text.encode(codec)
    if codec in ("utf-16-be", "utf-32-be"):
        data = ("\ufeff" + text).encode(codec)
    assert decode(data).text == text


def test_declared_charset_wins_and_latin1_means_cp1252() -> None:
    data = '<?xml version="1.0" encoding="iso-8859-1"?><p>“x”</p>'.encode("cp1252")
    assert "“x”" in decode(data).text
    html = '<meta charset="koi8-r"><p>Да</p>'.encode("koi8-r")
    assert "Да" in decode(html).text


def test_line_ends_and_controls() -> None:
    prose = b" A sentence long enough to be text." * 3
    assert decode(b"a\r\nb\rc\x07d\x1b\x7f\ttab" + prose).text == "a\nb\ncd\ttab" + prose.decode()


def test_binary_is_refused() -> None:
    with pytest.raises(DecodeError, match="PDF"):
        decode(b"%PDF-1.7\n...")
