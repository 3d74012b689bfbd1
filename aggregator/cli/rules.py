"""How ``sources``, ``status`` and ``explain`` show a source at rest and what its rules dropped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aggregator.cli.app import iso, out_console
from aggregator.errors import redact_urls
from aggregator.model import SourceSpec, SourceState

if TYPE_CHECKING:
    from aggregator.store.values import RuleStats

__all__ = ["print_rest", "print_rest_and_rules", "print_rule_drops", "rules_row", "source_rest"]


def source_rest(spec: SourceSpec, st: SourceState | None) -> dict[str, Any]:
    """A source's ``enabled`` and, when it is not polled, why and since when."""
    disabled = None
    if st is not None and st.disabled_at is not None:
        disabled = redact_urls(f"put to rest: {st.disabled_reason or 'no reason recorded'}")
    elif not spec.enabled:
        disabled = "disabled in the config (enabled: false)"
    return {
        "enabled": spec.enabled,
        "disabled": disabled,
        "disabled_at": iso(st.disabled_at) if st is not None else None,
    }


def rules_row(spec: SourceSpec, stats: RuleStats | None) -> dict[str, Any] | None:
    """A source's rules and what they dropped since they last changed; None without rules."""
    if spec.rules is None:
        return None
    return {
        "block": spec.rules.block,
        "keep": spec.rules.keep,
        "blocked": stats.blocked if stats else 0,
        "unkept": stats.unkept if stats else 0,
        "since": iso(stats.changed_at) if stats else None,
        "examples": list(stats.examples) if stats else [],
    }


def print_rest(sources: Iterable[tuple[str, str | None, str | None]]) -> None:
    """One ``disabled:`` line per (name, why, since) of a source not polled."""
    for name, why, since in sources:
        if why:
            when = f" since {since}" if since else ""
            out_console.print(f"disabled: {name}{when}: {why}", markup=False, highlight=False)


def print_rest_and_rules(rows: list[dict[str, Any]]) -> None:
    """One ``disabled:`` line per source not polled, then each source's rules and drops."""
    print_rest((r["name"], r["disabled"], r["disabled_at"]) for r in rows)
    for r in rows:
        if r["rules"]:
            print_rule_drops(r["name"], r["rules"], examples=1)


def print_rule_drops(name: str, rules: dict[str, Any], *, examples: int) -> None:
    """``rules: NAME: block ... dropped N; keep ... dropped M``, then the last drops."""
    parts = []
    if rules["block"]:
        parts.append(f"block {rules['block']!r} dropped {rules['blocked']}")
    if rules["keep"]:
        parts.append(f"keep {rules['keep']!r} dropped {rules['unkept']}")
    out_console.print(f"rules: {name}: {'; '.join(parts)}", markup=False, highlight=False)
    for ex in rules["examples"][:examples]:
        out_console.print(
            f"  dropped {ex['at']}: {ex['title']!r} ({ex['rule']}: {ex['reason']})",
            markup=False,
            highlight=False,
        )
