"""Tests of aggregator.topics: tokens, the query language, documents, explanations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import AggregatorError, QuerySyntaxError
from aggregator.model import Dateline, Item, Origin, Related, TopicSpec
from aggregator.topics import (
    FIELDS,
    Explanation,
    Hit,
    TopicMatcher,
    TopicSet,
    compile_query,
    compile_topics,
    document,
    link_topics,
    tokens,
)
from aggregator.topics import (
    FieldIndex as Document,
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
    for fields in raw.values():
        if "published" in fields:
            fields["published"] = datetime.fromisoformat(fields["published"])
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
    assert len(QUERY_CASES) >= 120


@pytest.mark.parametrize(("query", "name", "expected"), QUERY_CASES)
def test_query_table(query: str, name: str, expected: bool) -> None:
    compiled = compile_query(query)
    doc = DOCUMENTS[name]
    assert compiled.matches(doc, NOW) is expected
    explanation = compiled.explain(doc, NOW)
    assert explanation.matched is expected
    assert explanation.reasons
    # Every hit names a clause of the query and a field it found it in.
    for hit in explanation.hits:
        assert hit.field and hit.matched
    # The canonical form means the same thing.
    assert compile_query(str(compiled)).matches(doc, NOW) is expected


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
        ("/abc", 1, "unterminated pattern"),
        ("a /b c", 3, "unterminated pattern"),
        ("//", 1, "empty pattern"),
        ("/a/x", 4, "unknown pattern flag in 'x'"),
        ("title:/a/ig", 10, "unknown pattern flag in 'ig'"),
        ("/(a)\\1/", 1, "pattern refused: invalid escape sequence"),
        ("/(?=a)b/", 1, "pattern refused: invalid perl operator"),
        ("x /(?<!a)b/", 3, "pattern refused"),
        ("/a{1001}/", 1, "pattern refused: invalid repetition size"),
        ("/\\pL{1000}/", 1, "pattern refused: pattern too large"),
        ("/" + "a" * 1001 + "/", 1, "pattern longer than 1000 characters"),
        ("published:2024-13-01", 1, "bad date '2024-13-01'"),
        ("published:yesterday", 1, "bad date 'yesterday'"),
        ("published:20240501", 1, "bad date '20240501'"),
        ("published:2024-05-01..2024-04-01", 1, "ends before it starts"),
        ("published:..", 1, "an empty range"),
        ("a published:>=", 3, "bad date ''"),
        ("age:7d", 1, "bad age '7d'"),
        ("age:<7y", 1, "bad age '<7y'"),
        ("age:<", 1, "bad age '<'"),
        ("title:age:<7d", 7, "a field (title:) cannot apply to 'age:<7d'"),
        ("tag:(a OR published:2024-01-01)", 11, "a field (tag:) cannot apply"),
        ("topic:", 1, "'topic:' needs a topic name, not ''"),
        ("topic:Bad!", 1, "'topic:' needs a topic name"),
        ("x publishd:2024-01-01", 3, "unknown field 'publishd'"),
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
        ("Title:/^Breaking/i", "title:/^Breaking/i"),
        ("/a\\/b/ OR c", "/a\\/b/ OR c"),
        ("published:2024-04-01..2024-04-30", "published:2024-04-01..2024-04-30"),
        ("Published:>=2024-4-1", None),
        ("published:2024-04-01..", "published:2024-04-01.."),
        ("AGE:<7d -age:>1w", "age:<7d AND NOT age:>1w"),
        ("topic:caucasus OR x", "topic:caucasus OR x"),
    ],
)
def test_canonical_form(query: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(QuerySyntaxError):
            compile_query(query)
        return
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
    assert (explanation.matched, explanation.reasons) == (matched, reasons)


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
        ("text/plain", set()),
        (
            "topics",
            {
                "aggregator.text.plain",
                "aggregator.errors",
                "aggregator.model",
                "re2",
            },
        ),
        (
            "normalise",
            {
                "aggregator.text.plain",
                "aggregator.text.bounds",
                "aggregator.text.language",
                "aggregator.text.tags",
                "aggregator.model",
                "nh3",
            },
        ),
        ("text/bounds", {"aggregator.model"}),
        ("text/tags", set()),
    ],
)
def test_pure_modules_import_one_way(module: str, allowed: set[str]) -> None:
    """topics and normalise share `text.plain` and never import each other or I/O libraries."""
    import ast
    import sys

    path = Path(__file__).parents[1] / "aggregator" / module
    # A package (topics/) counts as one module: its own parts import each other.
    files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    imported: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    own = "aggregator." + module.replace("/", ".")
    non_stdlib = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names
        and name != own
        and not name.startswith(own + ".")
    } - {"__future__"}
    assert non_stdlib == allowed


# ---------------------------------------------------------------------------
# Structured queries (tests/data/topics/structured.yaml)

STRUCTURED = yaml.safe_load((DATA / "structured.yaml").read_text("utf-8"))


@pytest.mark.parametrize("case", STRUCTURED["equivalent"], ids=lambda case: str(case["string"]))
def test_structured_and_string_forms_compile_to_the_same_query(case: dict[str, Any]) -> None:
    structured = compile_query(case["structured"])
    string = compile_query(case["string"])
    assert str(structured) == str(string)
    assert structured.text == str(string)
    for name, doc in DOCUMENTS.items():
        assert structured.matches(doc, NOW) is string.matches(doc, NOW), name
        assert structured.explain(doc, NOW) == string.explain(doc, NOW), name


@pytest.mark.parametrize("case", STRUCTURED["errors"], ids=lambda case: str(case["path"]))
def test_structured_errors_name_their_path(case: dict[str, Any]) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_query(case["structured"])
    error = caught.value
    assert error.path == case["path"]
    assert case["message"] in error.detail
    # str() is a complete line: the path (when there is one), then the detail.
    assert str(error) == (f"{error.path}: {error.detail}" if error.path else error.detail)


def test_structured_nesting_is_bounded() -> None:
    query: Any = "rock"
    for _ in range(101):
        query = {"all": [query]}
    with pytest.raises(QuerySyntaxError, match="nests more than 100 levels"):
        compile_query(query)


# ---------------------------------------------------------------------------
# topic: references (tests/data/topics/references.yaml)

REFERENCES = yaml.safe_load((DATA / "references.yaml").read_text("utf-8"))


@pytest.mark.parametrize("case", REFERENCES, ids=lambda case: ",".join(case["topics"]))
def test_topic_references(case: dict[str, Any]) -> None:
    compiled = {name: compile_query(query) for name, query in case["topics"].items()}
    if "error" in case:
        expected = case["error"]
        with pytest.raises(QuerySyntaxError) as caught:
            link_topics(compiled)
        error = caught.value
        assert (error.topic, error.detail) == (expected["topic"], expected["message"])
        assert error.path == expected.get("path", "")
        return
    linked = link_topics(compiled)
    assert list(linked) == list(case["topics"])
    for doc_name, expected_in in case["in"].items():
        doc = DOCUMENTS[doc_name]
        assert [n for n, q in linked.items() if q.matches(doc, NOW)] == expected_in, doc_name
    # A reference keeps its name in the canonical form and in explanations.
    for name, query in linked.items():
        assert str(query) == str(compiled[name])


def test_unlinked_reference_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="topic:a is not resolved"):
        compile_query("topic:a OR x").matches(DOCUMENTS["cafe"])


def test_reference_expansion_is_bounded() -> None:
    queries = {"t0": compile_query("x OR y")}
    for i in range(1, 16):
        queries[f"t{i}"] = compile_query(f"topic:t{i - 1} AND topic:t{i - 1}")
    with pytest.raises(QuerySyntaxError) as caught:
        link_topics(queries)
    assert caught.value.topic == "t12"
    assert "expands to 16383 clauses through topic: references (at most 10000)" in str(caught.value)
    del queries["t15"], queries["t14"], queries["t13"], queries["t12"]
    assert link_topics(queries)["t11"].matches(DOCUMENTS["cafe"]) is False


# ---------------------------------------------------------------------------
# Patterns: linear time, refused when they cannot be bounded


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"(a+)+$", "a" * 50_000 + "!"),
        (r"(a|aa)+$", "a" * 50_000 + "!"),
        (r"(a*)*b", "a" * 50_000),
        (r"(x+x+)+y", "x" * 50_000),
        (r"^(\w+\s?)*$", "word " * 10_000 + "!"),
    ],
)
def test_catastrophic_patterns_run_in_linear_time(pattern: str, text: str) -> None:
    """Each would take longer than the age of the universe on a backtracking engine;
    RE2 answers at once (pytest-timeout fails the test if it does not)."""
    query = compile_query(f"content:/{pattern}/")
    doc = Document.from_fields(title="t", content_text=text)
    assert query.matches(doc) is False
    assert query.explain(doc).matched is False


def test_pattern_explanation_quotes_the_match() -> None:
    explanation = compile_query("title:/^breaking/i").explain(DOCUMENTS["breaking"])
    assert explanation.reasons == ('title matches title:/^breaking/i: "BREAKING"',)
    assert explanation.hits == (Hit("title:/^breaking/i", "title", "BREAKING"),)


# ---------------------------------------------------------------------------
# Dates need now


def test_age_needs_now() -> None:
    query = compile_query("x OR age:<7d")
    assert query.needs_now and not compile_query("published:2024-01-01").needs_now
    with pytest.raises(ValueError, match="age:<7d needs the current time"):
        query.matches(DOCUMENTS["sport"])
    assert query.matches(DOCUMENTS["sport"], NOW)
    # The same story, a week later, is no longer younger than seven days.
    assert not query.matches(DOCUMENTS["sport"], NOW + timedelta(days=7))


def test_date_explanations() -> None:
    doc = DOCUMENTS["karabakh_hyphen"]
    assert compile_query("age:<7d").explain(doc, NOW).reasons == (
        "published 2024-04-30T08:00:00+00:00 (1d 4h ago) matches age:<7d",
    )
    assert compile_query("published:>=2024-05-01").explain(doc, NOW).reasons == (
        "published 2024-04-30T08:00:00+00:00 is outside published:>=2024-05-01",
    )
    assert compile_query("age:<7d").explain(DOCUMENTS["cafe"], NOW).reasons == (
        "no publication date for age:<7d",
    )


def test_document_rejects_naive_dates() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        Document.from_fields(title="x", published=datetime(2024, 1, 1))


# ---------------------------------------------------------------------------
# Topics: scope, explanation, prefilter


def _topic(query: str, **scope: Any) -> TopicMatcher:
    return compile_topics([TopicSpec(name="t", title="t", query=query, **scope)])["t"]


@pytest.mark.parametrize(
    ("scope", "name", "expected", "reason"),
    [
        ({"sources": ("iran-press",)}, "karabakh_hyphen", True, None),
        (
            {"sources": ("sports-wire", "other")},
            "karabakh_hyphen",
            False,
            'source "iran-press" is not one of the topic\'s sources (other, sports-wire)',
        ),
        ({"lang": ("en",)}, "karabakh_hyphen", True, None),
        ({"lang": ("EN-us", "fa")}, "karabakh_hyphen", False, None),
        (
            {"lang": ("fa",)},
            "karabakh_hyphen",
            False,
            'language "en" is not one of the topic\'s (fa)',
        ),
        (
            {"lang": ("en",)},
            "karabakh_space",
            False,
            "language unknown is not one of the topic's (en)",
        ),
        ({"max_age": timedelta(days=2)}, "karabakh_hyphen", True, None),
        (
            {"max_age": timedelta(days=1)},
            "karabakh_hyphen",
            False,
            "published 2024-04-30T08:00:00+00:00 is older than the topic's max_age "
            "(1 day, 0:00:00)",
        ),
        ({"max_age": timedelta(days=1)}, "cafe", False, None),
    ],
)
def test_topic_scope(scope: dict[str, Any], name: str, expected: bool, reason: str | None) -> None:
    topic = _topic("NOT zzz", **scope)
    doc = DOCUMENTS[name]
    assert topic.matches(doc, NOW) is expected
    explanation = topic.explain(doc, NOW)
    assert explanation.matched is expected
    if reason is not None:
        assert explanation.reasons[0] == reason
    assert topic.needs_now is ("max_age" in scope)


def test_en_admits_regional_variants() -> None:
    doc = Document.from_fields(title="x", language="en-GB")
    assert _topic("x", lang=("en",)).matches(doc)
    assert not _topic("x", lang=("en-us",)).matches(doc)
    assert not _topic("x", lang=("e",)).matches(doc)


def test_signature_changes_with_everything_membership_depends_on() -> None:
    specs = [
        TopicSpec(name="a", title="a", query="x"),
        TopicSpec(name="b", title="b", query="topic:a OR y"),
    ]
    plain = compile_topics(specs)
    assert plain["a"].signature == "x"  # a plain query keeps its text: no re-match on upgrade
    changed = compile_topics([replace(specs[0], query="z"), specs[1]])
    assert changed["b"].signature != plain["b"].signature
    for scope in ({"sources": ("s",)}, {"max_age": timedelta(days=1)}, {"lang": ("en",)}):
        scoped = compile_topics([replace(specs[0], **scope), specs[1]])
        assert scoped["a"].signature != plain["a"].signature
        assert scoped["b"].signature == plain["b"].signature  # b reuses a's query, not its scope


@settings(max_examples=300, deadline=None)
@given(st.lists(_QUERIES, min_size=1, max_size=6), st.sampled_from(sorted(DOCUMENTS)))
def test_prefilter_never_drops_a_matching_topic(queries: list[str], name: str) -> None:
    specs = [TopicSpec(name=f"t{i}", title="t", query=q) for i, q in enumerate(queries)]
    topics = TopicSet(compile_topics(specs))
    doc = DOCUMENTS[name]
    candidates = topics.candidates(doc)
    for topic_name, topic in topics.topics.items():
        if topic.matches(doc, NOW):
            assert topic_name in candidates


def test_prefilter_skips_topics_whose_words_are_absent() -> None:
    specs = [
        TopicSpec(name="words", title="t", query="Nagorno-Karabakh OR (cafe AND culture)"),
        TopicSpec(name="negation", title="t", query="NOT football"),
        TopicSpec(name="pattern", title="t", query="/x/ OR azerbaijan"),
    ]
    topics = TopicSet(compile_topics(specs))
    assert topics.candidates(DOCUMENTS["sport"]) == {"negation", "pattern"}
    assert topics.candidates(DOCUMENTS["cafe"]) == {"words", "negation", "pattern"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # YAML drops the quotes: `any: ["concern of iran"]` is that phrase...
        ("concern of iran", True),
        ("iran concern", False),  # ...not `iran AND concern`, which this text holds
        ("Deputy Foreign Minister", True),
        # query syntax stays a query
        ("iran AND concern", True),
        ("title:iran concern", True),
        ("concern*", True),
    ],
)
def test_a_structured_list_item_of_plain_words_is_a_phrase(item: str, expected: bool) -> None:
    doc = document(_item())
    assert compile_query({"any": [item]}).matches(doc) is expected
    assert compile_query({"all": [item, "tag:world"]}).matches(doc) is expected
