"""Bytes to text: the one place that decides how a document is encoded.

Order of evidence, strongest first:

1. a byte-order mark (UTF-32, UTF-8, UTF-16);
2. UTF-16/32 without a BOM, recognised by its pattern of NUL bytes;
3. valid UTF-8 (multi-byte UTF-8 is practically never valid by accident, so it
   beats a legacy declaration that contradicts it);
4. a declared charset (XML declaration, HTML ``<meta>``, Markdown front matter,
   an HTTP ``Content-Type`` given by the caller), if the bytes decode with it;
5. for undeclared legacy bytes, a small scorer over the usual single-byte
   encodings (cp1252, ISO-8859-2/15, cp1250, KOI8-R, cp1251...): which
   decoding yields letters that belong together in one language; then
   charset-normalizer for everything else (CJK multi-byte encodings).

charset-normalizer alone mislabels short Western texts (a French cp1252
paragraph comes back as cp1250, "à" as "ŕ"), which is why the scorer exists.

After decoding, line ends become ``\\n`` and control characters are removed.
Non-breaking spaces are kept: whether they mean anything is the caller's call.
"""

# Typographic quotes, dashes and non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from aggregator.text.plain import cap_marks

__all__ = [
    "DecodeError",
    "DecodedText",
    "clean_text",
    "declared_charset",
    "decode",
    "looks_binary",
]


class DecodeError(Exception):
    """The bytes are not text we can decode; ``str()`` is the reason."""


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text decoded from bytes, and how."""

    text: str
    #: Python codec name actually used (``utf-8``, ``cp1252``, ``koi8-r``...)
    encoding: str
    #: one-line notes: guessed encoding, contradicted declaration, truncation
    warnings: tuple[str, ...] = ()


_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Magic numbers of formats people drop into folders by mistake.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "an executable"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_FRONT_MATTER_CHARSET = re.compile(
    rb"\A(?:\xef\xbb\xbf)?---[ \t]*\r?\n(?:.*?\r?\n)*?(?:charset|encoding)[ \t]*:[ \t]*"
    rb"[\"']?([A-Za-z0-9._:-]+)",
)
_EMACS_CODING = re.compile(rb"\A[^\n]*-\*-.*?coding:\s*([A-Za-z0-9._-]+)")

# Control characters to drop: C0 except TAB and LF, DEL, C1, and stray BOMs or
# zero-width no-break spaces inside the text. CR is handled before this runs.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe]")

# Single-byte encodings the scorer tries, in order of prior likelihood; ties
# go to the earlier one.
_CANDIDATES: tuple[str, ...] = (
    "cp1252",
    "iso-8859-15",
    "iso-8859-2",
    "cp1250",
    "iso-8859-9",
    "cp1257",
    "iso-8859-13",
    "koi8-r",
    "koi8-u",
    "cp1251",
    "iso-8859-5",
    "cp866",
    "iso-8859-7",
    "cp1253",
    "mac-roman",
)

# Extra letters of the languages written with those encodings. A correct
# decoding uses letters of one language; a wrong one mixes alphabets
# (French "à" read as cp1250 is Slovak "ŕ" beside French "é").
_ALPHABETS: tuple[str, ...] = (
    "àâæçéèêëîïôœùûüÿ",  # French
    "äöüß",  # German
    "áéíñóúü",  # Spanish
    "ãõáâàçéêíóôú",  # Portuguese
    "àèéìíîòóù",  # Italian
    "ąćęłńóśźż",  # Polish
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "áéíóöőúüű",  # Hungarian
    "ăâîșțşţ",  # Romanian
    "čćđšž",  # Croatian, Slovenian, Bosnian
    "çğıöşüi̇",  # Turkish
    "åäöæøéü",  # Nordic
    "éëïöüèáóú",  # Dutch, Afrikaans
    "ąčęėįšųūž",  # Lithuanian
    "āčēģīķļņšūž",  # Latvian
    "äõöüšž",  # Estonian
    "áðéíóúýþæö",  # Icelandic
    "ŵŷâêîôû",  # Welsh
    "áéíóú",  # Irish
)
_ALPHABET_SETS: tuple[frozenset[str], ...] = tuple(frozenset(a) for a in _ALPHABETS)

# Punctuation and symbols that legitimately appear in news text.
_COMMON_SYMBOLS = frozenset(
    "\u00a0\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u20ac\u00ab\u00bb\u00b0"
    "\u00b7\u00a7\u00a9\u00ae\u2122\u00a3\u00a5\u00b1\u00bd\u00bc\u00be\u00d7\u2022\u2032"
    "\u2033\u00b2\u00b3\u00b5\u00bf\u00a1\u2039\u203a\u00ba\u00aa\u2020"
)


def looks_binary(data: bytes) -> str | None:
    """Say why ``data`` is not text, or return None when it may be text.

    Args:
        data: the raw bytes (only the first 8 KiB are examined).

    Returns:
        A short reason such as ``"binary file (a PNG image)"``, or None.
    """
    head = data[:8192]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return f"binary file ({name}), not a text document"
    if _bom_encoding(head) is not None or _utf16_without_bom(head) is not None:
        return None
    if b"\x00" in head:
        return "binary file (contains NUL bytes), not a text document"
    controls = sum(1 for b in head if b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))
    if head and controls / len(head) > 0.05:
        return "binary file (mostly control bytes), not a text document"
    return None


def declared_charset(data: bytes) -> str | None:
    """Find a charset the document declares about itself.

    Looks at an XML declaration, an HTML ``<meta charset>`` or
    ``http-equiv`` tag in the first 4 KiB, a ``charset:``/``encoding:`` key in
    YAML front matter, and an Emacs ``-*- coding: x -*-`` first line.

    Args:
        data: the raw bytes.

    Returns:
        The declared charset as written (lower-cased), or None.
    """
    head = data[:4096]
    for pattern in (_XML_DECL, _FRONT_MATTER_CHARSET, _EMACS_CODING, _META_CHARSET):
        match = pattern.search(head)
        if match:
            return match.group(1).decode("ascii").lower()
    return None


def decode(data: bytes, *, declared: str | None = None) -> DecodedText:
    """Decode document bytes to clean text (LF line ends, no control characters).

    Args:
        data: the raw bytes of the document.
        declared: a charset declared outside the document (HTTP header); the
            document's own declaration is looked up when this is None.

    Returns:
        The decoded, cleaned text with the encoding used and any warnings.

    Raises:
        DecodeError: the bytes are binary or no encoding fits them.
    """
    reason = looks_binary(data)
    if reason:
        raise DecodeError(reason)
    text, encoding, warnings = _decode_raw(data, declared or declared_charset(data))
    return DecodedText(clean_text(text), encoding, tuple(warnings))


def clean_text(text: str) -> str:
    """Normalise line ends to LF and drop control characters, keeping tabs.

    Args:
        text: decoded text.

    Returns:
        The text in NFC with ``\\r\\n``/``\\r`` turned into ``\\n`` and C0/C1
        controls (except TAB and LF), DEL and stray BOMs removed.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Form feeds and vertical tabs separate pages or paragraphs: keep the break.
    text = text.replace("\x0c", "\n\n").replace("\x0b", "\n")
    return unicodedata.normalize("NFC", cap_marks(_CONTROL.sub("", text)))


def _bom_encoding(data: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    """Recognise BOM-less UTF-16/32 of mostly-Latin text by its NUL pattern."""
    sample = data[:4096]
    if len(sample) < 8:
        return None
    n = len(sample) - len(sample) % 4
    zeros = [sample[i:n:4].count(0) for i in range(4)]
    quarter = n // 4
    if zeros[1] > 0.9 * quarter and zeros[2] > 0.9 * quarter and zeros[3] > 0.9 * quarter:
        return "utf-32-le"
    if zeros[0] > 0.9 * quarter and zeros[1] > 0.9 * quarter and zeros[2] > 0.9 * quarter:
        return "utf-32-be"
    even = sample[0:n:2].count(0)
    odd = sample[1:n:2].count(0)
    half = n // 2
    if odd > 0.6 * half and even < 0.1 * half:
        return "utf-16-le"
    if even > 0.6 * half and odd < 0.1 * half:
        return "utf-16-be"
    return None


def _codec_name(charset: str) -> str | None:
    """Map a declared charset label to a Python codec, or None if unknown."""
    label = charset.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # Browsers read these labels as windows-1252 (WHATWG Encoding): documents
    # that say Latin-1 or ASCII routinely hold cp1252 quotes and dashes.
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return name


def _decode_raw(data: bytes, declared: str | None) -> tuple[str, str, list[str]]:
    warnings: list[str] = []
    bom = _bom_encoding(data)
    if bom:
        encoding, skip = bom
        try:
            return data[skip:].decode(encoding), encoding.replace("-le", "").replace("-be", ""), []
        except UnicodeDecodeError as exc:
            return _truncated_or_fail(data[skip:], encoding, exc)
    nobom = _utf16_without_bom(data)
    if nobom:
        try:
            return data.decode(nobom), nobom, [f"no byte-order mark; read as {nobom}"]
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        utf8_error = exc
    # A file cut in the middle of a multi-byte character: keep what is whole.
    if utf8_error.start >= len(data) - 3 and utf8_error.reason == "unexpected end of data":
        return _truncated_or_fail(data, "utf-8", utf8_error)

    codec = _codec_name(declared) if declared else None
    if declared and codec is None:
        warnings.append(f"unknown declared charset {declared!r} ignored")
    if codec and codec != "utf-8":
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            warnings.append(f"declared charset {declared} does not fit the bytes")
        else:
            if codec != "cp1252" or _score(text) > 0.5:
                return text, codec, warnings
    elif codec == "utf-8":
        warnings.append(f"declared charset {declared} but the bytes are not valid UTF-8")

    mixed = _mixed_utf8(data)
    if mixed is not None:
        warnings.append("mostly UTF-8 with some Windows-1252 bytes; decoded each part as such")
        return mixed, "utf-8", warnings

    best: tuple[float, int, str, str] | None = None
    for rank, candidate in enumerate(_CANDIDATES):
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        score = _score(text)
        if best is None or score > best[0]:
            best = (score, -rank, candidate, text)
    if best is not None and best[0] >= 0.8:
        warnings.append(f"no usable charset declared; guessed {best[2]}")
        return best[3], best[2], warnings

    # Imported for the last resort only: most text declares or is UTF-8.
    from charset_normalizer import from_bytes

    match = from_bytes(data).best()
    if match is not None and match.encoding and match.chaos < 0.2:
        warnings.append(f"no usable charset declared; guessed {match.encoding}")
        return str(match), match.encoding, warnings
    raise DecodeError("cannot determine the text encoding (not UTF-8, no usable declaration)")


def _truncated_or_fail(
    data: bytes, encoding: str, exc: UnicodeDecodeError
) -> tuple[str, str, list[str]]:
    if exc.reason in ("unexpected end of data", "truncated data") and exc.start >= len(data) - 4:
        text = data[: exc.start].decode(encoding)
        name = encoding.replace("-le", "").replace("-be", "").upper()
        return text, encoding, [f"file ends in the middle of a {name} character (truncated?)"]
    raise DecodeError(
        f"not valid {encoding} despite its byte-order mark (bad byte at offset {exc.start})"
    )


def _mixed_utf8(data: bytes) -> str | None:
    """Decode UTF-8 text with a few stray cp1252 bytes (pasted from elsewhere).

    Only when the valid multi-byte UTF-8 sequences clearly outnumber the
    invalid bytes; otherwise the file is legacy-encoded throughout.
    """
    pieces: list[str] = []
    valid_multibyte = 0
    invalid = 0
    pos = 0
    while pos < len(data):
        try:
            chunk = data[pos:].decode("utf-8")
        except UnicodeDecodeError as exc:
            good = data[pos : pos + exc.start].decode("utf-8")
            pieces.append(good)
            valid_multibyte += sum(1 for ch in good if ord(ch) > 0x7F)
            bad = data[pos + exc.start : pos + exc.end]
            invalid += len(bad)
            try:
                pieces.append(bad.decode("cp1252"))
            except UnicodeDecodeError:
                return None
            pos += exc.end
        else:
            pieces.append(chunk)
            valid_multibyte += sum(1 for ch in chunk if ord(ch) > 0x7F)
            break
    if valid_multibyte >= 2 and valid_multibyte >= 2 * invalid:
        return "".join(pieces)
    return None


def _score(text: str) -> float:
    """How plausible is this decoding? 1.0 = every non-ASCII character fits.

    Latin letters must come from one language's alphabet; Cyrillic and Greek
    words must be consistently cased (KOI8-R read as cp1251 swaps cases);
    symbols must be ordinary news punctuation; controls and odd symbols count
    against.
    """
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii:
        return 1.0
    latin: dict[str, int] = {}
    good = 0
    bad = 0
    for ch in non_ascii:
        if ch in _COMMON_SYMBOLS:
            good += 1
            continue
        category = unicodedata.category(ch)
        if not category.startswith("L"):
            bad += 1
            continue
        name = unicodedata.name(ch, "")
        if name.startswith("LATIN"):
            low = ch.lower()
            latin[low] = latin.get(low, 0) + 1
        elif name.startswith(("CYRILLIC", "GREEK")):
            continue  # scored by word below
        else:
            bad += 1
    if latin:
        total = sum(latin.values())
        fit = max(
            sum(n for ch, n in latin.items() if ch in alphabet) for alphabet in _ALPHABET_SETS
        )
        good += fit
        bad += total - fit
    words = re.findall(r"[^\W\d_]+", text)
    for word in words:
        if not any(ord(ch) > 0x36F for ch in word):
            continue
        if any(ch.isascii() for ch in word):
            bad += len(word)  # Latin and Cyrillic letters glued into one word
        elif word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower()):
            good += len(word)
        else:
            bad += len(word)
    return good / max(1, good + bad)
