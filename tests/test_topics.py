"""Tests of aggregator.topics: tokens, the query language, documents, explanations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import AggregatorError, QuerySyntaxError
from aggregator.model import Dateline, Item, Origin, Related
from aggregator.topics import (
    FIELDS,
    Document,
    Explanation,
    compile_query,
    document,
    tokens,
)

DATA = Path(__file__).parent / "data" / "topics"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------
# tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nagorno-Karabakh", ["nagorno", "karabakh"]),
        ("Nagorno- Karabakh", ["nagorno", "karabakh"]),
        ("NAGORNO KARABAKH", ["nagorno", "karabakh"]),
        ("Café", ["cafe"]),
        ("Cafe\u0301", ["cafe"]),
        ("Straße", ["strasse"]),
        ("Iran's", ["iran", "s"]),
        ("Iran\u2019s", ["iran", "s"]),
        ("naïve Zoë Ångström", ["naive", "zoe", "angstrom"]),
        ("ﬁnance", ["finance"]),  # compatibility ligature
        ("\uff26\uff55\uff4c\uff4c", ["full"]),  # fullwidth forms
        ("COVID-19, 9/11", ["covid", "19", "9", "11"]),
        ("snake_case", ["snake", "case"]),
        ("İstanbul", ["istanbul"]),
        ("Ελληνικά", ["ελληνικα"]),
        ("Москва", ["москва"]),
        ("تهران", ["تهران"]),
        ("  ...  —  ", []),
        ("", []),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_tokens_are_stable(text: str) -> None:
    words = tokens(text)
    assert tokens(" ".join(words)) == words
    assert all(word and word == word.casefold() for word in words)


# ---------------------------------------------------------------------------
# The query table


def _documents() -> dict[str, Document]:
    raw: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "documents.yaml").read_text("utf-8"))
    return {name: Document.from_fields(**fields) for name, fields in raw.items()}


DOCUMENTS = _documents()


def _query_cases() -> list[Any]:
    cases = []
    lines = (DATA / "queries.txt").read_text("utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        expected, name, query = line.split(maxsplit=2)
        assert expected in ("yes", "no"), f"queries.txt:{number}: bad expectation {expected!r}"
        assert name in DOCUMENTS, f"queries.txt:{number}: unknown document {name!r}"
        cases.append(pytest.param(query, name, expected == "yes", id=f"{number}:{name}:{query}"))
    return cases


QUERY_CASES = _query_cases()


def test_query_table_is_big_enough() -> None:
    assert len(QUERY_CASES) >= 40


@pytest.mark.parametrize(("query", "name", "expected"), QUERY_CASES)
def test_query_table(query: str, name: str, expected: bool) -> None:
    compiled = compile_query(query)
    doc = DOCUMENTS[name]
    assert compiled.matches(doc) is expected
    explanation = compiled.explain(doc)
    assert explanation.matched is expected
    assert explanation.reasons
    # The canonical form means the same thing.
    assert compile_query(str(compiled)).matches(doc) is expected


# ---------------------------------------------------------------------------
# Syntax errors


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("(a OR b", 1, "unclosed '('"),
        ("x AND (a OR (b)", 7, "unclosed '('"),
        ("a OR b)", 7, "unmatched ')'"),
        (")", 1, "unmatched ')'"),
        ("()", 1, "empty parentheses"),
        ("a ()", 3, "empty parentheses"),
        ("a AND", 3, "'AND' needs a term after it"),
        ("a OR", 3, "'OR' needs a term after it"),
        ("(a OR )", 4, "'OR' needs a term after it"),
        ("OR b", 1, "'OR' needs a term before it"),
        ("AND b", 1, "'AND' needs a term before it"),
        ("a OR OR b", 6, "'OR' needs a term before it"),
        ("a AND OR b", 7, "'OR' needs a term before it"),
        ("(AND b)", 2, "'AND' needs a term before it"),
        ("NOT", 1, "'NOT' needs a term after it"),
        ("a NOT", 3, "'NOT' needs a term after it"),
        ("a -", 3, "'-' needs a term right after it"),
        ("(a -)", 4, "'-' needs a term right after it"),
        ("titel:x", 1, "unknown field 'titel'"),
        ("a OR Titel:(b)", 6, "unknown field 'Titel'"),
        ("tags:sport", 1, "unknown field 'tags'"),
        ("title:", 1, "'title:' needs a term after it"),
        ("a tag:", 3, "'tag:' needs a term after it"),
        ("title:AND x", 7, "'AND' needs a term before it"),
        ('"unterminated', 1, "unterminated quote"),
        ('a "b c" "d', 9, "unterminated quote"),
        ('""', 1, "empty phrase"),
        ('a "--"', 3, "empty phrase"),
        ("ec*nom", 3, "'*' is only allowed at the end of a term"),
        ("a econ**", 7, "'*' is only allowed at the end of a term"),
        ("*", 1, "'*' must follow a letter or digit"),
        ("nagorno-*", 1, "'*' must follow a letter or digit"),
        ("a &", 3, "term '&' has no letters or digits"),
        ("(" * 101 + "a" + ")" * 101, 101, "query nests more than 100 levels deep"),
        ("NOT " * 101 + "a", 401, "query nests more than 100 levels deep"),
    ],
)
def test_syntax_errors(query: str, column: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query(query)
    error = caught.value
    assert error.column == column
    assert message in error.message
    assert error.query == query
    assert str(error) == f"{error.message} at column {column}"
    assert isinstance(error, AggregatorError)


def test_deep_but_allowed_nesting() -> None:
    doc = DOCUMENTS["words"]
    assert compile_query("(" * 99 + "rock" + ")" * 99).matches(doc)
    assert compile_query("NOT " * 98 + "rock").matches(doc)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", "b", "AND", "OR", "NOT", "-", "(", ")", '"', "title:", "tag:", "x*", "*", " "]
        )
        | st.text(max_size=3),
        max_size=12,
    ).map(" ".join)
)
def test_any_text_compiles_or_raises_a_syntax_error(query: str) -> None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError as error:
        assert 1 <= error.column <= len(query) + 1
    else:
        assert str(compile_query(str(compiled))) == str(compiled)


# ---------------------------------------------------------------------------
# Canonical form


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("Nagorno-Karabakh", '"nagorno karabakh"'),
        ("a b", "a AND b"),
        ("a OR b c", "a OR b AND c"),
        ("(a OR b) c", "(a OR b) AND c"),
        ("NOT (a OR b)", "NOT (a OR b)"),
        ("NOT a OR b", "NOT a OR b"),
        ("-a", "NOT a"),
        ("-(a b)", "NOT (a AND b)"),
        ("NOT NOT a", "NOT NOT a"),
        ("((a))", "a"),
        ("a AND (b AND c)", "a AND b AND c"),
        ("a OR (b OR c)", "a OR b OR c"),
        ("title:(a OR b)", "title:a OR title:b"),
        ("title:(a b) OR c", "title:a AND title:b OR c"),
        ("title:(a OR author:b)", "title:a OR author:b"),
        ("Title: x", "title:x"),
        ('tag:"Middle East"', 'tag:"middle east"'),
        ("Café*", "cafe*"),
        ("nagorno-kar*", "nagorno-kar*"),
        ('"a" "b c"', 'a AND "b c"'),
        ("and or not", "and AND or AND not"),
        ('"AND"', "and"),
        ("http://example.com/x", '"http example com x"'),
    ],
)
def test_canonical_form(query: str, canonical: str) -> None:
    compiled = compile_query(query)
    assert str(compiled) == canonical
    assert compiled.text == query
    assert str(compile_query(canonical)) == canonical


_TERMS = st.sampled_from(
    ["iran", "Café", "nagorno-karabakh", '"middle east"', "econom*", "tag:sport", "x"]
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map(lambda p: f"{p[0]} OR {p[1]}"),
        st.tuples(children, children).map(lambda p: f"{p[0]} AND {p[1]}"),
        st.tuples(children, children).map(lambda p: f"{p[0]} {p[1]}"),
        children.map(lambda c: f"NOT {c}"),
        children.map(lambda c: f"-({c})"),
        children.map(lambda c: f"({c})"),
        children.map(lambda c: f"title:({c})"),
    )


_QUERIES = st.recursive(_TERMS, _combine, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_QUERIES, st.sampled_from(sorted(DOCUMENTS)))
def test_canonical_form_means_the_same(query: str, name: str) -> None:
    compiled = compile_query(query)
    again = compile_query(str(compiled))
    assert str(again) == str(compiled)
    doc = DOCUMENTS[name]
    assert again.matches(doc) is compiled.matches(doc) is compiled.explain(doc).matched


# ---------------------------------------------------------------------------
# Documents from items; related headlines; explanations


def _item(**changes: Any) -> Item:
    fields: dict[str, Any] = {
        "source": "iran-press",
        "identity": "a42e47609101a1fc",
        "title": "Iranian Deputy Foreign Minister: Iran concerned",
        "link": "https://iranpress.example/1",
        "content_html": "<p>Emphasizing that <b>Nagorno-Karabakh</b> is a concern&nbsp;of Iran</p>",
        "summary": "Emphasizing that Nagorno-Karabakh is a concern of Iran",
        "published": NOW,
        "updated": NOW,
        "authors": ("Araghchi",),
        "tags": ("World",),
        "dateline": Dateline("Qom", "IP"),
        "related": (
            Related("New US administration willing to return to JCPOA: Araghchi"),
            Related("Time to preserve JCPOA is coming to an end"),
        ),
        "origin": Origin(source="iran-press", title="Iran Press News"),
    }
    fields.update(changes)
    return Item(**fields)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("JCPOA", False),
        ("content:jcpoa", False),
        ("title:jcpoa", False),
        ('"new us administration"', False),
        ("administration", False),
        ("Nagorno-Karabakh", True),
        ("concern of iran", True),
        ("qom", True),
        ("content:qom", True),
        ("ip", False),  # the agency code is not searchable text
        ("tag:world", True),
        ("source:iran-press", True),
        ('source:"iran press news"', True),
        ("author:araghchi", True),
        ("<b>", False),
        ("b", False),  # markup is not text
    ],
)
def test_document_from_item(query: str, expected: bool) -> None:
    assert compile_query(query).matches(document(_item())) is expected


def test_term_only_in_related_does_not_match() -> None:
    doc = document(_item())
    query = compile_query("JCPOA OR preserve")
    assert not query.matches(doc)
    assert query.explain(doc) == Explanation(
        matched=False, reasons=("no match for jcpoa", "no match for preserve")
    )
    # The same words in the body do match: the test above is about `related`.
    moved = _item(content_html="<p>JCPOA</p>", related=())
    assert query.matches(document(moved))


def test_document_without_optional_fields() -> None:
    doc = document(_item(dateline=None, origin=None, authors=(), tags=(), related=()))
    assert compile_query("source:iran-press").matches(doc)
    assert not compile_query('source:"iran press news"').matches(doc)
    assert not compile_query("qom").matches(doc)


@pytest.mark.parametrize(
    ("query", "name", "matched", "reasons"),
    [
        (
            "Nagorno-Karabakh",
            "karabakh_split",
            True,
            ('content contains "nagorno karabakh"',),
        ),
        ("nagorno-karabakh", "karabakh_hyphen", True, ('title contains "nagorno karabakh"',)),
        ("talks", "karabakh_hyphen", True, ('content contains "talks"',)),
        ("qom", "karabakh_hyphen", True, ('dateline contains "qom"',)),
        ("econom*", "economy", True, ('content contains "economic" (econom*)',)),
        ("NOT tag:sport", "karabakh_hyphen", True, ("NOT tag:sport satisfied",)),
        (
            "NOT tag:sport",
            "sport",
            False,
            ('NOT tag:sport failed: tag "Sport" matches tag:sport',),
        ),
        (
            "iran AND tag:world",
            "karabakh_hyphen",
            True,
            ('title contains "iran"', 'tag "World" matches tag:world'),
        ),
        (
            "iran AND cafe AND truce",
            "karabakh_hyphen",
            False,
            ("no match for cafe", "no match for truce"),
        ),
        (
            "cafe OR iran OR calm",
            "karabakh_hyphen",
            True,
            ('title contains "iran"', 'title contains "calm"'),
        ),
        ("author:zoe", "cafe", True, ('author contains "zoe"',)),
        (
            'source:"iran press news"',
            "karabakh_hyphen",
            True,
            ('source "Iran Press News" matches source:"iran press news"',),
        ),
    ],
)
def test_explain(query: str, name: str, matched: bool, reasons: tuple[str, ...]) -> None:
    explanation = compile_query(query).explain(DOCUMENTS[name])
    assert explanation == Explanation(matched=matched, reasons=reasons)


def test_query_value_semantics() -> None:
    a = compile_query("a OR b")
    assert a == compile_query("a OR b")
    assert hash(a) == hash(compile_query("a OR b"))
    assert a.text == "a OR b"
    assert "a OR b" in repr(a)
    with pytest.raises(AttributeError):
        a.text = "c"  # type: ignore[misc]


def test_fields_constant() -> None:
    assert FIELDS == ("title", "content", "author", "tag", "source")


def test_many_documents_many_queries() -> None:
    """A query is reusable across documents and a document across queries."""
    queries = [compile_query(q) for q in ("iran", "tag:sport", "econom*", "NOT x", '"a b"')]
    docs = list(DOCUMENTS.values())
    first = [[q.matches(d) for d in docs] for q in queries]
    second = [[q.matches(d) for d in docs] for q in queries]
    assert first == second
    assert [row.count(True) for row in first] == [1, 1, 3, len(docs), 0]


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("_text", set()),
        ("topics", {"aggregator._text", "aggregator.errors", "aggregator.model"}),
        ("normalise", {"aggregator._text", "aggregator.language", "aggregator.model", "nh3"}),
    ],
)
def test_pure_modules_import_one_way(module: str, allowed: set[str]) -> None:
    """topics and normalise share `_text` and never import each other or I/O libraries."""
    import ast
    import sys

    source = (Path(__file__).parents[1] / "aggregator" / f"{module}.py").read_text("utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    non_stdlib = {
        name for name in imported if name.split(".")[0] not in sys.stdlib_module_names
    } - {"__future__"}
    assert non_stdlib == allowed
