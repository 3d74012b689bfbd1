"""``topic:NAME`` references resolved across a set of topics: unknown names, cycles, size (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from aggregator.errors import QuerySyntaxError
from aggregator.topics.query import Query, _Node, _Ref

#: most clauses a topic may expand to through ``topic:`` references: reusing a
#: topic twice at every level doubles the work of a match, so the expansion is
#: bounded at load instead of discovered at match time
MAX_EXPANDED_CLAUSES = 10_000


def _reference_error(message: str, ref: _Ref, topic: str) -> QuerySyntaxError:
    return QuerySyntaxError(message, query=ref.query, column=ref.column, path=ref.path, topic=topic)


def _cycle(start: str, refs: Mapping[str, tuple[_Ref, ...]]) -> list[str] | None:
    """A path of references from ``start`` back to itself, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for ref in reversed(refs[name]):
            if ref.name == start:
                return [*path, start]
            if ref.name not in seen:
                seen.add(ref.name)
                stack.append((ref.name, [*path, ref.name]))
    return None


def link_topics(queries: Mapping[str, Query]) -> dict[str, Query]:
    """Resolve ``topic:NAME`` references across a set of topics.

    Args:
        queries: topic name -> compiled query, in configuration order.

    Returns:
        Topic name -> the query with its references resolved (same text).

    Raises:
        QuerySyntaxError: a reference names no topic in ``queries``, lies on
            a cycle (``a -> b -> a``), or a topic expands to more than
            :data:`MAX_EXPANDED_CLAUSES` clauses; ``topic`` names the topic
            whose query holds it (the first in order), ``column`` and
            ``path`` the reference.
    """
    refs = {
        name: tuple(n for n in query._root.walk() if isinstance(n, _Ref))
        for name, query in queries.items()
    }
    for name, found in refs.items():
        for ref in found:
            if ref.name not in queries:
                raise _reference_error(f"unknown topic {ref.name!r} in topic:{ref.name}", ref, name)
    for name, found in refs.items():
        cycle = _cycle(name, refs)
        if cycle is not None:
            first = next(r for r in found if r.name == cycle[1])
            message = f"topic:{first.name} makes a cycle: {' -> '.join(cycle)}"
            raise _reference_error(message, first, name)
    # No cycles: link in dependency order, each topic after those it reuses.
    order: list[str] = []
    placed: set[str] = set()
    for name in queries:
        pending = [(name, False)]
        while pending:
            current, ready = pending.pop()
            if current in placed:
                continue
            if ready:
                placed.add(current)
                order.append(current)
                continue
            pending.append((current, True))
            pending.extend((r.name, False) for r in refs[current] if r.name not in placed)
    linked: dict[str, _Node] = {}
    sizes: dict[str, int] = {}
    for name in order:
        root = queries[name]._root
        size = 0
        for node in root.walk():
            size += sizes[node.name] if isinstance(node, _Ref) else 1
        if size > MAX_EXPANDED_CLAUSES:
            ref = refs[name][0]
            raise _reference_error(
                f"the topic expands to {size} clauses through topic: references "
                f"(at most {MAX_EXPANDED_CLAUSES})",
                ref,
                name,
            )
        sizes[name] = size
        linked[name] = root.link(linked) if refs[name] else root
    return {name: Query(text=query.text, _root=linked[name]) for name, query in queries.items()}
