"""The topic query language: parse once, match many documents (pure).

Matching is token-based, case- and accent-insensitive: text and query are both
split with :func:`tokens`, so ``Nagorno-Karabakh`` matches "Nagorno Karabakh",
"Nagorno- Karabakh" and "nagorno-karabakh", and ``cafe`` matches "Café".

Grammar (keywords are upper-case; ``and``/``or``/``not`` are ordinary words)::

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*          adjacent terms: implicit AND
    unary   := ("NOT" | "-") unary | [field] primary-or-unary
    primary := word | word* | "quoted phrase" | "(" or_expr ")"
    field   := title: | content: | author: | tag: | source:

Precedence: NOT > AND > OR. A word containing separators (``Nagorno-Karabakh``,
``9/11``) is a phrase of its tokens; tokens of a phrase must be adjacent and in
order. ``econom*`` matches any token starting with ``econom``; in a phrase
(``nagorno-kar*``) only the last token is a prefix. Inside quotes ``*`` is
punctuation.

Fields: no field = title + content + summary + dateline place (never the
related headlines); ``title:``; ``content:`` = content + summary + dateline;
``author:`` = any author's name contains the phrase; ``tag:`` and ``source:``
match a *whole* tag or source name (the configured source name or the feed's
title) by tokens: ``tag:sport`` matches the tag "Sport" but not "Sports news".
A field applies to the next term, phrase or parenthesised group
(``title:(a OR b)``); an inner field overrides an outer one.

Build a :class:`Document` once per item and a :class:`Query` once per topic;
matching a document against a query looks tokens up in per-field position
indexes and never rescans text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aggregator._text import html_to_text, tokens
from aggregator.errors import QuerySyntaxError
from aggregator.model import Item

__all__ = [
    "FIELDS",
    "Document",
    "Explanation",
    "Query",
    "compile_query",
    "document",
    "tokens",
]

FieldName = Literal["title", "content", "author", "tag", "source"]
#: Field names a query may use, as in ``title:word``.
FIELDS: tuple[FieldName, ...] = ("title", "content", "author", "tag", "source")
_FIELD_BY_NAME: dict[str, FieldName] = {name: name for name in FIELDS}
# Fields whose values must match whole (tag:sport is not "Sports news").
_WHOLE_FIELDS = frozenset({"tag", "source"})


# ---------------------------------------------------------------------------
# Documents


@dataclass(frozen=True, slots=True, eq=False)
class _Segment:
    """One indexed text: a title, a content body, one author, one tag..."""

    #: what the text is, for explanations: "title", "summary", "tag"...
    label: str
    #: the text as given (explanations quote it for whole-value fields)
    text: str
    tokens: tuple[str, ...]
    #: token → its positions in ``tokens``, ascending
    positions: Mapping[str, tuple[int, ...]]
    #: sorted distinct tokens, for prefix lookups by bisection
    vocabulary: tuple[str, ...]

    @classmethod
    def build(cls, label: str, text: str) -> _Segment:
        words = tuple(tokens(text))
        index: dict[str, list[int]] = {}
        for position, word in enumerate(words):
            index.setdefault(word, []).append(position)
        positions = {word: tuple(found) for word, found in index.items()}
        return cls(label, text, words, positions, tuple(sorted(positions)))

    def prefixed(self, prefix: str) -> str | None:
        """The first token (alphabetically) that starts with ``prefix``."""
        at = bisect.bisect_left(self.vocabulary, prefix)
        if at < len(self.vocabulary) and self.vocabulary[at].startswith(prefix):
            return self.vocabulary[at]
        return None

    def find(self, words: tuple[str, ...], prefix: bool) -> tuple[str, ...] | None:
        """Where the phrase occurs, the tokens it matched; else None."""
        last = words[-1]
        if len(words) == 1:
            if not prefix:
                return words if last in self.positions else None
            hit = self.prefixed(last)
            return (hit,) if hit is not None else None
        size = len(words)
        head = words[:-1]
        positions = self.positions
        if any(word not in positions for word in head):
            return None  # cheap rejection before walking positions
        own = self.tokens
        for start in positions[words[0]]:
            end = start + size
            if end > len(own):
                break
            if own[start : end - 1] == head:
                candidate = own[end - 1]
                if candidate == last or (prefix and candidate.startswith(last)):
                    return own[start:end]
        return None

    def whole(self, words: tuple[str, ...], prefix: bool) -> bool:
        """Whether the phrase is this segment's entire token sequence."""
        own = self.tokens
        if not prefix:
            return own == words
        return len(own) == len(words) and own[:-1] == words[:-1] and own[-1].startswith(words[-1])


@dataclass(frozen=True, slots=True, eq=False)
class Document:
    """An item's text, tokenised and indexed per field, ready for many queries.

    Build it with :func:`document` (from an :class:`~aggregator.model.Item`)
    or :meth:`from_fields` (from plain text).
    """

    title: tuple[_Segment, ...]
    #: content, summary and dateline place
    content: tuple[_Segment, ...]
    #: one segment per author
    author: tuple[_Segment, ...]
    #: one segment per tag
    tag: tuple[_Segment, ...]
    #: the source name and the feed's title
    source: tuple[_Segment, ...]
    #: what a term without a field searches: title + content
    default: tuple[_Segment, ...] = field(default=())

    @classmethod
    def from_fields(
        cls,
        *,
        title: str = "",
        content_text: str = "",
        summary: str = "",
        dateline: str = "",
        authors: Iterable[str] = (),
        tags: Iterable[str] = (),
        source: str = "",
        feed_title: str | None = None,
    ) -> Document:
        """Index plain-text fields.

        Args:
            title: plain-text title.
            content_text: plain-text body (strip HTML first).
            summary: plain-text summary.
            dateline: the dateline's place.
            authors: author names.
            tags: tags.
            source: the configured source's name.
            feed_title: the source feed's own title; ``source:`` matches it too.

        Returns:
            The indexed document.
        """
        title_part = (_Segment.build("title", title),)
        content_part = tuple(
            _Segment.build(label, text)
            for label, text in (
                ("content", content_text),
                ("summary", summary),
                ("dateline", dateline),
            )
            if text
        )
        sources = dict.fromkeys(name for name in (source, feed_title) if name)
        return cls(
            title=title_part,
            content=content_part,
            author=tuple(_Segment.build("author", a) for a in authors if a),
            tag=tuple(_Segment.build("tag", t) for t in tags if t),
            source=tuple(_Segment.build("source", name) for name in sources),
            default=title_part + content_part,
        )

    def segments(self, name: FieldName | None) -> tuple[_Segment, ...]:
        """The segments a term with field ``name`` (None: default) searches."""
        if name is None:
            return self.default
        segments: tuple[_Segment, ...] = getattr(self, name)
        return segments


def document(item: Item) -> Document:
    """Index an item for matching: everything but its related headlines.

    Args:
        item: a normalised item.

    Returns:
        The document; ``source:`` matches the configured source name and the
        origin feed's title.
    """
    return Document.from_fields(
        title=item.title,
        content_text=html_to_text(item.content_html),
        summary=item.summary,
        dateline=item.dateline.place if item.dateline else "",
        authors=item.authors,
        tags=item.tags,
        source=item.source,
        feed_title=item.origin.title if item.origin else None,
    )


# ---------------------------------------------------------------------------
# Compiled queries


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a query matched a document, or why not."""

    matched: bool
    #: one line per deciding term, e.g. ``title contains "nagorno karabakh"``
    reasons: tuple[str, ...]


_OR, _AND, _NOT, _TERM = 1, 2, 3, 4  # precedence, for minimal parentheses


class _Node:
    __slots__ = ()
    precedence = _TERM

    def matches(self, doc: Document) -> bool:
        raise NotImplementedError

    def explain(self, doc: Document) -> tuple[bool, list[str]]:
        raise NotImplementedError

    def canonical(self) -> str:
        raise NotImplementedError

    def wrapped(self, outer: int) -> str:
        """Canonical form, parenthesised when it binds looser than ``outer``."""
        text = self.canonical()
        return f"({text})" if self.precedence < outer else text


@dataclass(frozen=True, slots=True, eq=False)
class _Term(_Node):
    field: FieldName | None
    words: tuple[str, ...]
    prefix: bool

    def matches(self, doc: Document) -> bool:
        if self.field in _WHOLE_FIELDS:
            return any(s.whole(self.words, self.prefix) for s in doc.segments(self.field))
        return any(s.find(self.words, self.prefix) is not None for s in doc.segments(self.field))

    def explain(self, doc: Document) -> tuple[bool, list[str]]:
        for segment in doc.segments(self.field):
            if self.field in _WHOLE_FIELDS:
                if segment.whole(self.words, self.prefix):
                    return True, [f'{segment.label} "{segment.text}" matches {self.canonical()}']
                continue
            found = segment.find(self.words, self.prefix)
            if found is not None:
                reason = f'{segment.label} contains "{" ".join(found)}"'
                if self.prefix:
                    reason += f" ({self.canonical()})"
                return True, [reason]
        return False, [f"no match for {self.canonical()}"]

    def canonical(self) -> str:
        if len(self.words) == 1:
            body = self.words[0] + ("*" if self.prefix else "")
        elif self.prefix:
            # A quoted phrase has no wildcard, so write the hyphenated form.
            body = "-".join(self.words) + "*"
        else:
            body = '"' + " ".join(self.words) + '"'
        return f"{self.field}:{body}" if self.field else body


@dataclass(frozen=True, slots=True, eq=False)
class _Not(_Node):
    child: _Node
    precedence = _NOT

    def matches(self, doc: Document) -> bool:
        return not self.child.matches(doc)

    def explain(self, doc: Document) -> tuple[bool, list[str]]:
        matched, reasons = self.child.explain(doc)
        text = self.canonical()
        if matched:
            return False, [f"{text} failed: {'; '.join(reasons)}"]
        return True, [f"{text} satisfied"]

    def canonical(self) -> str:
        return "NOT " + self.child.wrapped(_NOT)


@dataclass(frozen=True, slots=True, eq=False)
class _And(_Node):
    children: tuple[_Node, ...]
    precedence = _AND

    def matches(self, doc: Document) -> bool:
        return all(child.matches(doc) for child in self.children)

    def explain(self, doc: Document) -> tuple[bool, list[str]]:
        results = [child.explain(doc) for child in self.children]
        matched = all(ok for ok, _ in results)
        # Matched: every child's reason. Not matched: only the failing ones.
        return matched, [r for ok, rs in results if ok == matched for r in rs]

    def canonical(self) -> str:
        return " AND ".join(child.wrapped(_AND + 1) for child in self.children)


@dataclass(frozen=True, slots=True, eq=False)
class _Or(_Node):
    children: tuple[_Node, ...]
    precedence = _OR

    def matches(self, doc: Document) -> bool:
        return any(child.matches(doc) for child in self.children)

    def explain(self, doc: Document) -> tuple[bool, list[str]]:
        results = [child.explain(doc) for child in self.children]
        matched = any(ok for ok, _ in results)
        # Matched: the reasons of the children that matched. Not matched: all.
        return matched, [r for ok, rs in results if ok == matched for r in rs]

    def canonical(self) -> str:
        return " OR ".join(child.wrapped(_OR + 1) for child in self.children)


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled topic query. Build it with :func:`compile_query`.

    ``str(query)`` is the canonical form: normalised tokens, explicit
    ``AND``/``NOT``, fields pushed down onto terms, minimal parentheses;
    compiling it again gives the same query.
    """

    #: the query as written
    text: str
    _root: _Node = field(repr=False, compare=False)

    def matches(self, doc: Document) -> bool:
        """Whether ``doc`` satisfies the query.

        Args:
            doc: an indexed document (see :func:`document`).

        Returns:
            True when it matches.
        """
        return self._root.matches(doc)

    def explain(self, doc: Document) -> Explanation:
        """Say why ``doc`` matches the query or not.

        Args:
            doc: an indexed document.

        Returns:
            ``matched`` (same as :meth:`matches`) and the deciding reasons.
        """
        matched, reasons = self._root.explain(doc)
        return Explanation(matched=matched, reasons=tuple(reasons))

    def __str__(self) -> str:
        return self._root.canonical()


# ---------------------------------------------------------------------------
# Lexer

_WORD_END = frozenset(' \t\n\r\f\v()"')
_KEYWORDS = frozenset({"AND", "OR", "NOT"})


@dataclass(frozen=True, slots=True)
class _Token:
    #: WORD PHRASE FIELD LPAREN RPAREN AND OR NOT MINUS EOF
    kind: str
    text: str
    #: 1-based
    column: int


def _error(message: str, query: str, column: int) -> QuerySyntaxError:
    return QuerySyntaxError(message, query=query, column=column)


def _field_name(word: str) -> str | None:
    """``title`` for ``title:...``; None when the word is not field-shaped."""
    name, colon, rest = word.partition(":")
    if not colon or not name.isascii() or not name.isalpha() or rest.startswith("//"):
        return None
    return name


def _lex(query: str) -> list[_Token]:
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
                raise _error("unterminated quote", query, column)
            out.append(_Token("PHRASE", query[i + 1 : end], column))
            i = end + 1
        elif char == "-" and (i + 1 >= size or query[i + 1].isspace() or query[i + 1] == ")"):
            raise _error("'-' needs a term right after it", query, column)
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
            elif name is not None:
                if name.lower() not in FIELDS:
                    raise _error(
                        f"unknown field {name!r} (fields: {', '.join(FIELDS)})", query, column
                    )
                out.append(_Token("FIELD", name.lower(), column))
                # Lex what follows the colon as ordinary tokens: `title:-x`, `tag:sport`.
                end = i + len(name) + 1
            else:
                out.append(_Token("WORD", word, column))
            i = end
    out.append(_Token("EOF", "", size + 1))
    return out


# ---------------------------------------------------------------------------
# Parser

_MAX_DEPTH = 100
_STARTS = frozenset({"WORD", "PHRASE", "FIELD", "LPAREN", "NOT", "MINUS"})


def _describe(token: _Token) -> str:
    return f"'{token.text}:'" if token.kind == "FIELD" else f"'{token.text}'"


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.at = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, message: str, token: _Token) -> QuerySyntaxError:
        return _error(message, self.query, token.column)

    def parse(self) -> _Node:
        if self.peek().kind == "EOF":
            raise _error("empty query", self.query, 1)
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
            message = "'*' is only allowed at the end of a term"
            raise _error(message, self.query, token.column + star)
        if prefix and not (stem and stem[-1].isalnum()):
            raise self.fail("'*' must follow a letter or digit", token)
        words = tuple(tokens(stem))
        if not words:
            raise self.fail(f"term {text!r} has no letters or digits", token)
        return _Term(scope, words, prefix)


def _flatten(kind: type[_And] | type[_Or], children: list[_Node]) -> _Node:
    if len(children) == 1:
        return children[0]
    flat: list[_Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


def compile_query(query: str) -> Query:
    """Parse a topic query (see the module docstring for the language).

    Args:
        query: the query text.

    Returns:
        The compiled query.

    Raises:
        QuerySyntaxError: the query does not parse; ``column`` (1-based)
            points at the offending token.
    """
    return Query(text=query, _root=_Parser(query).parse())
