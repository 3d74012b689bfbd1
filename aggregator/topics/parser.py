"""The query language's lexer and parser, string and structured forms → :class:`Query` (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aggregator.errors import QuerySyntaxError
from aggregator.text.plain import tokens
from aggregator.topics.fields import _FIELD_BY_NAME, FIELDS, FieldName
from aggregator.topics.pattern import PatternError, compile_pattern
from aggregator.topics.query import (
    _AGE_RE,
    Query,
    _Age,
    _And,
    _Node,
    _Not,
    _Or,
    _Pattern,
    _Published,
    _Ref,
    _Term,
)

_WORD_END = frozenset(' \t\n\r\f\v()"')
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
# Clause kinds written `kind:value` that are not fields over text.
_CLAUSES = frozenset({"published", "age", "topic"})
_TOPIC_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class _Token:
    #: WORD PHRASE FIELD PATTERN CLAUSE LPAREN RPAREN AND OR NOT MINUS EOF
    kind: str
    text: str
    #: 1-based
    column: int
    #: a pattern's flags (``i``)
    flags: str = ""


def _field_name(word: str) -> str | None:
    """``title`` for ``title:...``; None when the word is not field-shaped."""
    name, colon, rest = word.partition(":")
    if not colon or not name.isascii() or not name.isalpha() or rest.startswith("//"):
        return None
    return name


class _Lexer:
    def __init__(self, query: str, path: str) -> None:
        self.query = query
        self.path = path

    def error(self, message: str, column: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.query, column=column, path=self.path)

    def lex(self) -> list[_Token]:
        query = self.query
        out: list[_Token] = []
        i, size = 0, len(query)
        while i < size:
            char = query[i]
            column = i + 1
            if char.isspace():
                i += 1
            elif char == "(":
                out.append(_Token("LPAREN", char, column))
                i += 1
            elif char == ")":
                out.append(_Token("RPAREN", char, column))
                i += 1
            elif char == '"':
                end = query.find('"', i + 1)
                if end < 0:
                    raise self.error("unterminated quote", column)
                out.append(_Token("PHRASE", query[i + 1 : end], column))
                i = end + 1
            elif char == "/":
                token, i = self.pattern(i)
                out.append(token)
            elif char == "-" and (i + 1 >= size or query[i + 1].isspace() or query[i + 1] == ")"):
                raise self.error("'-' needs a term right after it", column)
            elif char == "-":
                out.append(_Token("MINUS", char, column))
                i += 1
            else:
                end = i
                while end < size and query[end] not in _WORD_END:
                    end += 1
                word = query[i:end]
                name = _field_name(word)
                if word in _KEYWORDS:
                    out.append(_Token(word, word, column))
                elif name is not None and name.lower() in _CLAUSES:
                    out.append(_Token("CLAUSE", word, column))
                elif name is not None:
                    if name.lower() not in FIELDS:
                        known = ", ".join((*FIELDS, *sorted(_CLAUSES)))
                        raise self.error(f"unknown field {name!r} (fields: {known})", column)
                    out.append(_Token("FIELD", name.lower(), column))
                    # Lex what follows the colon as ordinary tokens: `title:-x`, `tag:sport`.
                    end = i + len(name) + 1
                else:
                    out.append(_Token("WORD", word, column))
                i = end
        out.append(_Token("EOF", "", size + 1))
        return out

    def pattern(self, start: int) -> tuple[_Token, int]:
        """Lex ``/source/flags`` starting at the opening slash."""
        query, size = self.query, len(self.query)
        i = start + 1
        while i < size and query[i] != "/":
            i += 2 if query[i] == "\\" else 1
        if i >= size:
            raise self.error("unterminated pattern: a pattern ends with '/'", start + 1)
        source = query[start + 1 : i]
        if not source:
            raise self.error("empty pattern", start + 1)
        end = i + 1
        while end < size and query[end] not in _WORD_END:
            end += 1
        flags = query[i + 1 : end]
        if flags not in ("", "i"):
            raise self.error(f"unknown pattern flag in {flags!r} (the only flag is i)", i + 2)
        return _Token("PATTERN", source, start + 1, flags), end


# ---------------------------------------------------------------------------
# Parser

_MAX_DEPTH = 100
_STARTS = frozenset({"WORD", "PHRASE", "FIELD", "PATTERN", "CLAUSE", "LPAREN", "NOT", "MINUS"})


def _describe(token: _Token) -> str:
    return f"'{token.text}:'" if token.kind == "FIELD" else f"'{token.text}'"


class _Parser:
    def __init__(self, query: str, path: str = "") -> None:
        self.query = query
        self.path = path
        self.tokens = _Lexer(query, path).lex()
        self.at = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def error(self, message: str, column: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.query, column=column, path=self.path)

    def fail(self, message: str, token: _Token) -> QuerySyntaxError:
        return self.error(message, token.column)

    def parse(self) -> _Node:
        if self.peek().kind == "EOF":
            raise self.error("empty query", 1)
        node = self.or_expr(None, None)
        token = self.peek()
        if token.kind == "RPAREN":
            raise self.fail("unmatched ')'", token)
        return node

    def or_expr(self, after: _Token | None, scope: FieldName | None) -> _Node:
        children = [self.and_expr(after, scope)]
        while self.peek().kind == "OR":
            operator = self.take()
            children.append(self.and_expr(operator, scope))
        return _flatten(_Or, children)

    def and_expr(self, after: _Token | None, scope: FieldName | None) -> _Node:
        children = [self.unary(after, scope)]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                operator = self.take()
                children.append(self.unary(operator, scope))
            elif kind in _STARTS:
                children.append(self.unary(None, scope))
            else:
                break
        return _flatten(_And, children)

    def unary(self, after: _Token | None, scope: FieldName | None) -> _Node:
        token = self.peek()
        self.depth += 1
        try:
            return self._unary(token, after, scope)
        finally:
            self.depth -= 1

    def _unary(self, token: _Token, after: _Token | None, scope: FieldName | None) -> _Node:
        if self.depth > _MAX_DEPTH:
            # Deeper than any real query; stop before Python's recursion limit.
            raise self.fail(f"query nests more than {_MAX_DEPTH} levels deep", token)
        if token.kind in ("NOT", "MINUS"):
            self.take()
            return _Not(self.unary(token, scope))
        if token.kind == "FIELD":
            self.take()
            return self.unary(token, _FIELD_BY_NAME[token.text])
        if token.kind == "LPAREN":
            self.take()
            inner = self.or_expr(token, scope)
            if self.peek().kind != "RPAREN":
                raise self.fail("unclosed '('", token)
            self.take()
            return inner
        if token.kind == "WORD":
            self.take()
            return self.word(token, scope)
        if token.kind == "PHRASE":
            self.take()
            words = tuple(tokens(token.text))
            if not words:
                raise self.fail("empty phrase", token)
            return _Term(scope, words, prefix=False)
        if token.kind == "PATTERN":
            self.take()
            try:
                pattern = compile_pattern(token.text, ignore_case=token.flags == "i")
            except PatternError as exc:
                raise self.fail(str(exc), token) from None
            return _Pattern(scope, pattern)
        if token.kind == "CLAUSE":
            self.take()
            if scope is not None:
                raise self.fail(f"a field ({scope}:) cannot apply to {token.text!r}", token)
            return self.clause(token)
        raise self.missing_term(token, after)

    def missing_term(self, token: _Token, after: _Token | None) -> QuerySyntaxError:
        """The error for ``token`` where a term was expected after ``after``."""
        if token.kind in ("AND", "OR"):
            return self.fail(f"'{token.text}' needs a term before it", token)
        if after is not None and after.kind == "LPAREN":
            if token.kind == "RPAREN":
                return self.fail("empty parentheses", after)
            return self.fail("unclosed '('", after)
        if after is not None:
            return self.fail(f"{_describe(after)} needs a term after it", after)
        return self.fail("unmatched ')'", token)

    def word(self, token: _Token, scope: FieldName | None) -> _Term:
        text = token.text
        prefix = text.endswith("*")
        stem = text[:-1] if prefix else text
        star = stem.find("*")
        if star >= 0:
            raise self.error("'*' is only allowed at the end of a term", token.column + star)
        if prefix and not (stem and stem[-1].isalnum()):
            raise self.fail("'*' must follow a letter or digit", token)
        words = tuple(tokens(stem))
        if not words:
            raise self.fail(f"term {text!r} has no letters or digits", token)
        return _Term(scope, words, prefix)

    def clause(self, token: _Token) -> _Node:
        kind, _, value = token.text.partition(":")
        kind = kind.lower()
        if kind == "topic":
            if not _TOPIC_NAME_RE.fullmatch(value):
                raise self.fail(f"'topic:' needs a topic name, not {value!r}", token)
            return _Ref(value, self.query, token.column, self.path)
        if kind == "age":
            found = _AGE_RE.fullmatch(value)
            if found is None:
                raise self.fail(
                    f"bad age {value!r} (use e.g. age:<7d, age:>=12h; units m h d w)", token
                )
            operator, amount, unit = found.groups()
            return _Age(operator, int(amount), unit)
        return self.published(token, value)

    def published(self, token: _Token, value: str) -> _Published:
        usage = "use published:2026-11-01, 2026-11-01..2026-11-30, >=2026-11-10, <2026-11-10"

        def day(text: str) -> datetime:
            try:
                parsed = date.fromisoformat(text)
            except ValueError:
                raise self.fail(f"bad date {text!r} in {token.text!r} ({usage})", token) from None
            if len(text) != 10:
                raise self.fail(f"bad date {text!r} in {token.text!r} ({usage})", token)
            return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)

        one_day = timedelta(days=1)
        for operator in (">=", "<=", ">", "<"):
            if value.startswith(operator):
                at = day(value[len(operator) :])
                spelling = f"{operator}{at.date().isoformat()}"
                if operator == ">=":
                    return _Published(at, None, spelling)
                if operator == ">":
                    return _Published(at + one_day, None, spelling)
                if operator == "<":
                    return _Published(None, at, spelling)
                return _Published(None, at + one_day, spelling)
        if ".." in value:
            low_text, _, high_text = value.partition("..")
            if not low_text and not high_text:
                raise self.fail(f"an empty range in {token.text!r} ({usage})", token)
            low = day(low_text) if low_text else None
            high = day(high_text) if high_text else None
            if low is not None and high is not None and high < low:
                raise self.fail(f"the range in {token.text!r} ends before it starts", token)
            ends = [at.date().isoformat() if at else "" for at in (low, high)]
            spelling = "..".join(ends)
            return _Published(low, high + one_day if high else None, spelling)
        at = day(value)
        return _Published(at, at + one_day, at.date().isoformat())


def _flatten(kind: type[_And] | type[_Or], children: list[_Node]) -> _Node:
    if len(children) == 1:
        return children[0]
    flat: list[_Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


# ---------------------------------------------------------------------------
# Structured queries

#: keys of a structured query, in the order their parts are combined
_STRUCTURED_KEYS = ("all", "any", "none")


#: an item of plain words and nothing of the query language: two words or more,
#: letters and digits joined by hyphens or apostrophes, no operator
_PLAIN_WORDS_RE = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*(?:\s+[^\W_]+(?:[-'\u2019][^\W_]+)*)+")
_OPERATORS = frozenset({"AND", "OR", "NOT"})


def _as_phrase(item: str) -> str | None:
    """A structured list's item of plain words, as the phrase query it means; else None.

    YAML drops the quotes of ``any: ["central bank", ECB]`` before we see
    them: a list item of plain words is the phrase its writer quoted, never
    ``central AND bank``. Anything with query syntax stays a query.
    """
    text = item.strip()
    if not _PLAIN_WORDS_RE.fullmatch(text) or _OPERATORS & set(text.split()):
        return None
    return f'"{text}"'


def _structure_error(message: str, path: str) -> QuerySyntaxError:
    return QuerySyntaxError(message, query="", column=None, path=path)


def _structured(value: object, path: str, depth: int) -> _Node:
    """Compile one item of a structured query: a query string or a mapping."""
    if depth > _MAX_DEPTH:
        raise _structure_error(f"query nests more than {_MAX_DEPTH} levels deep", path)
    if isinstance(value, str):
        phrase = _as_phrase(value) if depth > 0 else None
        return _Parser(phrase or value, path).parse()
    if not isinstance(value, Mapping):
        raise _structure_error(
            f"must be a query string or a mapping of all/any/none, not {type(value).__name__}",
            path,
        )
    if not value:
        raise _structure_error("an empty mapping: give all, any or none", path)
    for key in value:
        if key not in _STRUCTURED_KEYS:
            raise _structure_error(f"unknown key {key!r} (use all, any, none)", path)
    parts: list[_Node] = []
    for key in _STRUCTURED_KEYS:
        if key not in value:
            continue
        here = f"{path}.{key}" if path else key
        items = value[key]
        if not isinstance(items, list | tuple) or not items:
            raise _structure_error("must be a non-empty list", here)
        nodes = [_structured(item, f"{here}[{i}]", depth + 1) for i, item in enumerate(items)]
        combined = _flatten(_And if key == "all" else _Or, nodes)
        parts.append(_Not(combined) if key == "none" else combined)
    return _flatten(_And, parts)


def compile_query(query: str | Mapping[str, object]) -> Query:
    """Parse a topic query (see the module docstring for the language).

    Args:
        query: the query text, or a structured query: a mapping of ``all``
            (every item), ``any`` (at least one) and ``none`` (not one) lists
            whose items are query strings or nested mappings. Several keys in
            one mapping must all hold. ``{"all": ["a", "b"], "none": ["c"]}``
            compiles to the same query as ``a AND b AND NOT c``.

    Returns:
        The compiled query; ``topic:`` references stay unresolved until
        :func:`link_topics`.

    Raises:
        QuerySyntaxError: the query does not compile; ``column`` (1-based)
            points at the offending token, ``path`` at the offending item of
            a structured query (``any[1]``, ``all[0].none[2]``).
    """
    if isinstance(query, str):
        return Query(text=query, _root=_Parser(query).parse())
    root = _structured(query, "", 0)
    return Query(text=root.canonical(), _root=root)
