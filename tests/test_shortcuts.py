"""Each shortcut of the first pass gives what the steps it skips give.

Normalisation skips work for the text most feeds carry (no markup, plain
URLs, no long runs of combining marks, HTML as a sanitiser writes it); each
shortcut here is compared with the full steps on generated input, so it can
never change an item.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.normalise import canonical_url, clean_text, sanitize_html
from aggregator.normalise import sanitise as sanitise_module
from aggregator.normalise import urls as urls_module
from aggregator.parse import feeds
from aggregator.text import plain as _text
from aggregator.text.bounds import bound_html

# Text of many scripts, with the characters each shortcut looks out for.
_TRICKY = (
    "<>&\"'\x00\r\n\t \xa0\ufeff\u200b\u00ad\u202e\u2066\u2069\u0301\u0308\u05b0"
    "\u0e31\U0001d167\U0001f600\x85\x9f\x0b\x0c\u3000/;?#%:@.-_~é"
)
_ALPHABET = st.one_of(
    st.sampled_from(_TRICKY),
    st.characters(codec="utf-8"),
    st.sampled_from("abcXYZ019 Москва政府قره‌باغ"),
)
texts = st.text(alphabet=_ALPHABET, max_size=60)


def _marks_the_long_way(text: str) -> str:
    return _text._mark_run().sub(lambda m: m.group()[: _text.MAX_MARKS], text)


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(
        texts,
        st.builds(
            lambda a, n, mark, b: a + mark * n + b,
            texts,
            st.integers(0, 45),
            st.sampled_from(["\u0301", "\U0001d167", "\u0e31", "\u05b0"]),
            texts,
        ),
    )
)
@example(text="a" + "\u0301" * 20 + "\U0001d167" * 20)
def test_cap_marks_shortcut_is_the_full_search(text: str) -> None:
    assert _text.cap_marks(text) == _marks_the_long_way(text)


def _extractor(html: str) -> str:
    parser = _text._TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


_TAGS = st.sampled_from(["p", "P", "br", "li", "td", "a", "b", "div", "h1", "span", "tr", "x1"])
_HIDDEN = st.sampled_from(["script", "style", "title", "noscript", "template", "head"])
_ATTRIBUTE = st.builds(
    lambda name, value: f' {name}="{value}"',
    st.sampled_from(["href", "title", "data-x", "lang", "x:y"]),
    st.text(alphabet="ab &;#'<>é", max_size=8),
)
_PART = st.one_of(
    st.builds(
        lambda tag, attrs: f"<{tag}{''.join(attrs)}>", _TAGS, st.lists(_ATTRIBUTE, max_size=2)
    ),
    st.builds(lambda tag: f"</{tag}>", _TAGS),
    st.builds(lambda tag: f"<{tag}>", _HIDDEN),
    st.sampled_from(["<br/>", "<!-- c -->", "< p>", "<p", "</p x>", "<p title='x'>"]),
    st.lists(
        st.sampled_from(list("ab é&;#<>\x00\n\r"))
        | st.sampled_from(["&amp;", "&nbsp;", "&#8230;", "&#x41;", "&amp", "&bogus;", "&lt;p&gt;"]),
        max_size=6,
    ).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(_PART, max_size=10))
def test_simple_html_reads_as_the_extractor_reads_it(parts: list[str]) -> None:
    html = "".join(parts)
    simple = _text._simple_text(html)
    if simple is not None:
        assert simple == _extractor(html)


def test_html_the_scan_cannot_read_goes_to_the_extractor() -> None:
    for html in ("<script>a</script>b", "a < b", "<p>x<!-- y --></p>", "<br/>", "<p a='b'>c"):
        assert _text._simple_text(html) is None
    assert _text._simple_text('<p title="t">a &amp; b</p>') == "\x00Pa & b\x00P"
    # Not matched is not slow: the scan is linear (a backtracking one took minutes here).
    assert _text._simple_text("<p>" + "word &amp; été " * 5000 + "</p") is None


_URL_PARTS = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@/%?#[] \t\\éß", max_size=20)
_URLS = st.one_of(
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}{path}",
        st.sampled_from(["http", "https", "HTTP", "ftp"]),
        st.sampled_from(
            [
                "a.example",
                "A.example",
                "a.example.",
                "xn--d1a.example",
                "a-b.c",
                "é.example",
                "[::1]",
                "a.example:80",
                "u@a.example",
            ]
        ),
        _URL_PARTS,
    ),
    _URL_PARTS,
)
_BASES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "https://base.example/a/b",
            "http://[bad",
            "https://é.example/",
            " https://b.example/ ",
            "mailto:x",
        ]
    ),
    _URL_PARTS,
)


@settings(max_examples=800, deadline=None)
@given(url=_URLS, base=_BASES)
@example(url="https://a.example/x;", base="https://b.example/")
@example(url="https://a.example/./x", base=None)
@example(url="https://a.example", base="http://[bad")
def test_plain_urls_are_canonical_as_the_steps_make_them(url: str, base: str | None) -> None:
    assert canonical_url(url, base=base) == urls_module._canonical_steps(url, base)


@settings(max_examples=500, deadline=None)
@given(text=texts, base=st.sampled_from([None, "https://base.example/a/"]))
@example(text="\ufeffa", base=None)
@example(text="a\r\nb", base=None)
@example(text=" plain words ", base=None)
def test_text_without_markup_sanitises_as_nh3_cleans_it(text: str, base: str | None) -> None:
    try:
        expected = sanitise_module._clean(bound_html(text).html, base)
    except UnicodeEncodeError:  # a lone surrogate: nh3 refuses it, and so must we
        if re.search("[\ud800-\udfff]", text) is None:
            raise
        return
    assert sanitize_html(text, base_url=base) == expected


def test_clean_text_is_the_same_from_its_cache() -> None:
    for text in ("Author <b>1</b>", "Tag&nbsp;3", "  Москва  ", "Tag&nbsp;3"):
        assert clean_text(text) == clean_text.__wrapped__(text)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_looks_like_html_shortcut_is_feedparsers_guess(text: str) -> None:
    assert feeds._looks_like_html(text) == bool(feeds._FeedParserMixin.looks_like_html(text))


def _tidy_the_long_way(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ")
    text = _text._BREAKS_RE.sub(_text._join_breaks, text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return _text._EXTRA_BREAKS_RE.sub("\n\n", text).strip()


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=40))
@example(text=" a\r\n\u2028b\x85 ")
def test_text_without_breaks_is_tidied_to_one_line(text: str) -> None:
    assert _text._tidy(text) == _tidy_the_long_way(text)
