"""HTML sanitising with nh3 (ammonia): the final security gate for entry HTML (pure).

nh3 is imported here and nowhere else. Re-exported by :mod:`aggregator.normalise`.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from urllib.parse import urljoin, urlsplit

import nh3

from aggregator.normalise.urls import _http_base
from aggregator.text.bounds import bound_html

__all__ = ["sanitize_html"]

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite",
        "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small",
        "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
        # kept only for their text: ammonia drops what is inside a foreign
        # element it does not allow; :func:`sanitize_html` turns them into spans
        "math", "svg",
    }
)  # fmt: skip

# Removed together with everything inside them: their content is code, a
# plugin's fallback or form controls, never article text. MathML and SVG are
# not here: their elements go, their text (`<mi>`, `<mtext>`, `<desc>`...)
# stays, as feedparser keeps it.
_DROPPED_WITH_CONTENT = frozenset(
    {
        "applet", "button", "embed", "form", "frame", "frameset", "iframe", "noembed",
        "noframes", "noscript", "object", "script", "select", "style", "template", "textarea",
        "xmp",
    }
)  # fmt: skip

_GLOBAL_ATTRIBUTES = frozenset({"lang", "dir", "title"})
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": set(_GLOBAL_ATTRIBUTES),
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "ol": {"start", "reversed"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "abbr": {"title"},
}
# Re-cleaning converges in one or two passes; this only bounds pathological input.
_MAX_PASSES = 4
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "noopener noreferrer nofollow"
# Remove C0 controls, space and DEL wherever they occur in a URL: browsers
# ignore tab/newline inside a scheme (`java\tscript:`), so must we.
_URL_JUNK_RE = re.compile(r"[\x00-\x20\x7f]+")


def _safe_cite(value: str, base: str | None) -> str | None:
    """Validate a ``cite`` URL, which ammonia does not scheme-check itself."""
    url = _URL_JUNK_RE.sub("", value)
    if not url:
        return None
    try:
        parts = urlsplit(url)
        if not parts.scheme:
            if base is None:
                return None
            url = urljoin(base, url)
            parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _new_cleaner(base: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=_ALLOWED_ATTRIBUTES,
        strip_comments=True,
        link_rel=_LINK_REL,
        url_schemes=set(_URL_SCHEMES),
        url_relative=("rewrite_with_base", base) if base else "deny",
    )


_DENY_RELATIVE = _new_cleaner(None)
#: Cleaners kept (one per base URL, most recent first). A parse worker digests
#: one feed at a time, so a few serve every entry of it; keeping one per feed
#: of the whole poll (256 before) held ~15 KB each in every parsing process
#: (4-5 MiB) to save ~60 us per feed.
CLEANERS_KEPT = 8


@functools.lru_cache(maxsize=CLEANERS_KEPT)
def _cleaner_for(base: str | None) -> nh3.Cleaner:
    """One cleaner per base URL, built once per feed: building one costs more than cleaning.

    The base is part of ammonia's settings, and the entries of one feed share
    theirs, so a small cache serves a whole poll.
    """
    if base is None:
        return _DENY_RELATIVE
    try:
        return _new_cleaner(base)
    except ValueError:
        # ammonia's URL parser is stricter than ours about some hosts; without
        # a base, relative URLs are dropped instead of resolved.
        return _DENY_RELATIVE


# An element that may carry ``cite``, as html5ever serialises it: attributes
# are always ``name="value"`` with ``"`` escaped, and text never holds a raw
# ``<``, so this matches whole start tags of the output and nothing else.
_CITE_TAG_RE = re.compile(r'<(?:blockquote|q|del|ins)(?: [^\s"\'>/=]+="[^"]*")*>')
_CITE_ATTR_RE = re.compile(r' cite="([^"]*)"')


def _check_cites(cleaned: str, base: str | None) -> str:
    """Resolve or drop each ``cite`` URL of sanitised HTML, in one pass.

    ammonia checks schemes only on ``href`` and ``src``; doing ``cite`` here,
    after cleaning, keeps the per-attribute Python callback (which re-takes
    the GIL for every attribute of every element) out of nh3.
    """

    def fix_attr(match: re.Match[str]) -> str:
        safe = _safe_cite(html_lib.unescape(match.group(1)), base)
        if safe is None:
            return ""
        # Escaped exactly as html5ever escapes attribute values, so a second
        # sanitising pass leaves the bytes alone.
        escaped = safe.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")
        escaped = escaped.replace("<", "&lt;").replace(">", "&gt;")
        return f' cite="{escaped}"'

    def fix_tag(match: re.Match[str]) -> str:
        return _CITE_ATTR_RE.sub(fix_attr, match.group(0))

    return _CITE_TAG_RE.sub(fix_tag, cleaned) if " cite=" in cleaned else cleaned


# A MathML or SVG root as html5ever serialises it (its children, not allowed,
# are unwrapped to their text): a span, so the text reads inline.
_FOREIGN_ROOT_RE = re.compile(r"<(/?)(?:math|svg)((?: [^\s\"'>/=]+=\"[^\"]*\")*)>")

# Text nh3 returns as it is (but for the strip): nothing it parses as markup or
# escapes, no character its input stream drops or rewrites (NUL, CR, a leading
# BOM), no lone surrogate (nh3 refuses those: the caller gets the error).
_NO_MARKUP = re.compile("[^<>&\x00\r\xa0\ufeff\ud800-\udfff]*")


def sanitize_html(html: str, *, base_url: str | None = None) -> str:
    """Reduce untrusted HTML to a safe allowlist of article markup.

    Keeps paragraphs, links, emphasis, lists, quotes, headings, images
    (``src``/``alt``), figures, code, simple tables and ``<time>``. Removes
    script/style/iframe/object/embed/form elements with their content, every
    event handler and ``style``/``class``/``id`` attribute, comments, and URLs
    other than http(s) (and ``mailto:`` for links), however they are encoded.
    Relative ``href``/``src``/``cite`` URLs are resolved against ``base_url``,
    or dropped when there is no usable base. Links get
    ``rel="noopener noreferrer nofollow"``. Input is first bounded by
    :func:`aggregator.text.bounds.bound_html` (size, nesting depth). Idempotent.

    Args:
        html: an untrusted HTML fragment.
        base_url: absolute http(s) URL of the document the fragment came from.

    Returns:
        The sanitised fragment.
    """
    # Bounded first: nh3's time grows with nesting depth times size.
    html = bound_html(html).html
    if _NO_MARKUP.fullmatch(html):
        return html.strip()  # what nh3 returns for it, at a fraction of the cost
    return _clean(html, base_url)


def _clean(html: str, base_url: str | None) -> str:
    """:func:`sanitize_html` of bounded HTML with nh3, whatever it holds."""
    base = _http_base(base_url)
    cleaner = _cleaner_for(base)
    if cleaner is _DENY_RELATIVE:
        base = None
    # Serialised HTML does not always parse back to the same tree (`<a><table>
    # <a>` nests anchors that a parser then splits): clean until the output is
    # a fixed point, so the result is idempotent and no mutation survives.
    # The MathML and SVG roots become spans inside the loop: in foreign
    # content a parser nests what it splits in a span (`<a><svg><a>`).
    cleaned = _clean_once(cleaner, html)
    for _ in range(_MAX_PASSES):
        again = _clean_once(cleaner, cleaned)
        if again == cleaned:
            break
        cleaned = again
    return _check_cites(cleaned, base)


def _clean_once(cleaner: nh3.Cleaner, html: str) -> str:
    cleaned: str = cleaner.clean(html).strip()
    if "<math" in cleaned or "<svg" in cleaned:
        cleaned = _FOREIGN_ROOT_RE.sub(r"<\1span\2>", cleaned)
    return cleaned
