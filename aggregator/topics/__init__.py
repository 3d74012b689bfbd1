"""The topic query language: parse once, match many documents (pure).

Matching is token-based, case- and accent-insensitive: text and query are both
split with :func:`tokens`, so ``Nagorno-Karabakh`` matches "Nagorno Karabakh",
"Nagorno- Karabakh" and "nagorno-karabakh", and ``cafe`` matches "Café".

Grammar (keywords are upper-case; ``and``/``or``/``not`` are ordinary words)::

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*          adjacent terms: implicit AND
    unary   := ("NOT" | "-") unary | [field] primary-or-unary
    primary := word | word* | "quoted phrase" | /pattern/[i] | "(" or_expr ")"
             | published:DATES | age:AGE | topic:NAME
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
A field applies to the next term, phrase, pattern or parenthesised group
(``title:(a OR b)``); an inner field overrides an outer one.

Patterns: ``/regex/`` (``/regex/i``: case-insensitive) searches the text of
each segment of its field as written (not tokenised or accent-folded), on RE2,
which matches in linear time; a pattern RE2 cannot run that way
(backreferences, lookaround) or over the size bounds does not compile. A ``/``
inside the pattern is written ``\\/``.

Dates, in UTC days: ``published:2026-11-01`` (that day),
``published:2026-11-01..2026-11-30`` (inclusive; either end may be left
open), ``published:>=2026-11-10`` (also ``>``, ``<``, ``<=``). Age, against
the ``now`` the caller passes: ``age:<7d`` (younger than seven days; also
``<=``, ``>``, ``>=``; units ``m`` ``h`` ``d`` ``w``).

``topic:NAME`` stands for another topic's query; :func:`link_topics` resolves
references across a set of topics and refuses unknown names and cycles.

A query may also be *structured*: a mapping of ``all:`` (AND), ``any:`` (OR)
and ``none:`` (NOT any) lists whose items are query strings or nested
mappings; it compiles to the same tree as the string form (see
:func:`compile_query`), and errors name their place (``any[1]``).

Build a :class:`FieldIndex` once per item and a :class:`Query` once per topic;
matching a document against a query looks tokens up in per-field position
indexes and never rescans text (patterns excepted). A :class:`TopicMatcher`
adds a topic's scope (sources, maximum age, languages) to its query.

The package, one concern a module: :mod:`~aggregator.topics.fields` (the
field index), :mod:`~aggregator.topics.query` (the compiled tree: matching
and explaining), :mod:`~aggregator.topics.parser` (the lexer and parser,
string and structured forms), :mod:`~aggregator.topics.linking` (``topic:``
references) and :mod:`~aggregator.topics.matchers` (a topic's scope, and
many topics with a word prefilter).
"""

from __future__ import annotations

from aggregator.text.plain import tokens
from aggregator.topics.fields import FIELDS, FieldIndex, FieldName, document
from aggregator.topics.linking import MAX_EXPANDED_CLAUSES, link_topics
from aggregator.topics.matchers import Scope, TopicMatcher, TopicSet, compile_topics
from aggregator.topics.parser import compile_query
from aggregator.topics.query import Explanation, Hit, Query

__all__ = [
    "FIELDS",
    "MAX_EXPANDED_CLAUSES",
    "Explanation",
    "FieldIndex",
    "FieldName",
    "Hit",
    "Query",
    "Scope",
    "TopicMatcher",
    "TopicSet",
    "compile_query",
    "compile_topics",
    "document",
    "link_topics",
    "tokens",
]
