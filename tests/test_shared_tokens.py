"""An entry's body is tokenised once and shared: the shortcuts give what the long way gives.

The content key, the topic document and the near-duplicate sketch all need
the tokens of the same body. They now share one tokenisation, which rests on
two facts checked here: no token spans whitespace (so the tokens of
"title\\nbody" are the title's then the body's), and the body the sketch reads
differs from the content's text only in whitespace unless a breadcrumb or a
related list was cut.
"""

# Non-Latin letters and typographic marks here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.normalise import html_to_text, text_fingerprint, tokens
from aggregator.stories import dedup, neardup
from aggregator.stories.neardup import NearDupSettings

from .factories import make_item

_PIECES = st.sampled_from(
    [
        "Iran", "Tehran's", "Nagorno-Karabakh", "Straße", "İstanbul", "ılık", "й", "café",
        "قم", "ایران‌پرس", "٢٠٢٦", "Москва", "ﬁnance", "x\u0301", "—", "“quoted”", "9/11",
        "2026", "foo_bar", " ", "\n", "\u00a0", "\u2003", "\t", ".", "",
    ]
)  # fmt: skip
_TEXT = st.lists(_PIECES, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(title=_TEXT, body=_TEXT)
def test_tokens_never_span_a_line_break(title: str, body: str) -> None:
    assert tokens(f"{title}\n{body}") == tokens(title) + tokens(body)


_VOCABULARY = ["Iran", "talks", "in", "Tehran", "on", "Monday", "42", "“the”", "Ārmenia"]
_WORDS = st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=12).map(" ".join)
_BLOCKS = st.lists(
    st.one_of(
        _WORDS.map(lambda w: f"<p>{w}</p>"),
        _WORDS.map(lambda w: f"<li>{w}</li>"),
        st.just("<p>Home › World › Middle East</p>"),
        st.just("<p>Related stories:</p>"),
        st.just("<p>Read more</p>"),
        st.just("<br>"),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(title=_WORDS, content=_BLOCKS)
def test_content_key_and_sketch_equal_the_long_way(title: str, content: str) -> None:
    item = replace(make_item(title=title), content_html=content)
    assert dedup.content_key(item) == text_fingerprint(f"{title}\n{html_to_text(content)}")
    near = NearDupSettings(min_words=5)
    assert neardup.sketch(item, near) == neardup.sketch_text(neardup.body_text(item), near)
