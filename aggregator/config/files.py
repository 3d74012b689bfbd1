"""Reading a configuration file: YAML with a safe loader and a bound on alias expansion,
``${VAR}`` interpolation, and key paths for error messages (``topics[1].query``).

The one module importing PyYAML for the configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aggregator.errors import ConfigError

#: libyaml's safe loader when PyYAML was built with it (about 10x faster), else the Python one
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# ``$${`` is a literal ``${`` (how import-opml writes values it must not
# expand); it is matched first so an escaped reference is never expanded.
_ENV_RE = re.compile(r"\$(\$)\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _interpolate(value: Any, loc: tuple[int | str, ...], file: str) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string scalar."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1):
                return "${"
            name, default = m.group(2), m.group(3)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set", file=file, key=_key_path(loc)
            )

        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, str(k)), file) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), file) for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path, pending: Mapping[Path, str] | None = None) -> Any:
    """The YAML document at ``path``, or ``pending``'s text for it (an edit not yet written)."""
    try:
        staged = pending.get(path.resolve()) if pending else None
        text = staged if staged is not None else path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=str(path)) from None
    try:
        document = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}invalid YAML: {problem}", file=str(path)) from None
    if _too_many_values(document):
        raise ConfigError(
            f"the document expands to more than {MAX_CONFIG_VALUES:,} values (aliases of aliases?)",
            file=str(path),
        )
    return document


#: Values a config document may hold once its aliases are expanded. YAML
#: aliases share one object, but every step after loading (interpolation,
#: validation) walks the expanded tree: 633 bytes of nested aliases expand to
#: hundreds of millions of values. 10,000 sources are about 100,000.
MAX_CONFIG_VALUES = 1_000_000


def _too_many_values(document: Any) -> bool:
    """Whether ``document``, its aliases expanded, holds more than :data:`MAX_CONFIG_VALUES`."""
    seen = 0
    pending = [document]
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_CONFIG_VALUES:
            return True
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


@dataclass(frozen=True, slots=True)
class KeySpan:
    """Where one ``key: value`` of a mapping sits in the text (character offsets, 0-based lines)."""

    key_start: int
    key_line: int
    value_start: int
    #: the end of the value's text (a block value: of its last scalar, not of trailing comments)
    value_end: int
    value_end_line: int


@dataclass(frozen=True, slots=True)
class ItemSpan:
    """One item of a ``sources:`` list: its name, its lines, its keys."""

    name: str | None
    #: the line of its ``-`` and the dash's column
    dash_line: int
    dash_column: int
    #: the last line holding its text (trailing comments and blank lines excluded)
    end_line: int
    #: a ``{...}`` mapping (on one line or several)
    flow: bool
    #: the column of its keys (a block mapping's indentation)
    key_column: int
    #: the offset just after a flow mapping's ``}``
    end: int
    keys: tuple[tuple[str, KeySpan], ...]

    def key(self, name: str) -> KeySpan | None:
        return next((span for k, span in self.keys if k == name), None)


@dataclass(frozen=True, slots=True)
class SourcesLayout:
    """Where a YAML file's top-level ``sources:`` list and its items are, for editing its text."""

    #: the line of the ``sources:`` key; None: the file has none
    key_line: int | None
    #: the list is written ``[...]`` (None when there is no list)
    flow: bool
    #: the list's value text span (a flow list's brackets, or an empty value)
    value_start: int
    value_end: int
    items: tuple[ItemSpan, ...]


def _content_end(node: yaml.Node) -> yaml.Mark:
    """Where a node's own text ends: a block collection's end mark runs on over comments."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark
    last = node.value[-1]
    return _content_end(last[1] if isinstance(node, yaml.MappingNode) else last)


def _item_span(text: str, node: yaml.Node) -> ItemSpan:
    start = node.start_mark
    line_start = text.rfind("\n", 0, start.index) + 1
    dash = text.rfind("-", line_start, start.index)
    dash_line = start.line
    if dash < 0:  # "-" alone on a line above the item
        dash = text.rfind("-", 0, start.index)
        dash_line = text.count("\n", 0, dash)
    dash_column = dash - (text.rfind("\n", 0, dash) + 1)
    keys: list[tuple[str, KeySpan]] = []
    name = None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            end = _content_end(value)
            if isinstance(key, yaml.ScalarNode):
                keys.append(
                    (
                        key.value,
                        KeySpan(
                            key.start_mark.index,
                            key.start_mark.line,
                            value.start_mark.index,
                            end.index,
                            end.line if end.column else end.line - 1,
                        ),
                    )
                )
                if key.value == "name" and isinstance(value, yaml.ScalarNode):
                    name = value.value
    end = _content_end(node)
    flow = bool(getattr(node, "flow_style", False))
    return ItemSpan(
        name=name,
        dash_line=dash_line,
        dash_column=dash_column,
        end_line=end.line if end.column else end.line - 1,
        flow=flow,
        key_column=start.column,
        end=end.index,
        keys=tuple(keys),
    )


def sources_layout(text: str, file: str) -> SourcesLayout:
    """Locate the top-level ``sources:`` list of a YAML text and each of its items.

    Raises:
        ConfigError: the text is not YAML, or its top level is not a mapping.
    """
    try:
        # The Python loader: its marks count characters, as str offsets do.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}".splitlines()[0], file=file) from None
    if root is None:
        return SourcesLayout(None, False, len(text), len(text), ())
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("the top level must be a mapping", file=file)
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "sources":
            items = value.value if isinstance(value, yaml.SequenceNode) else []
            return SourcesLayout(
                key_line=key.start_mark.line,
                flow=bool(getattr(value, "flow_style", False)),
                value_start=value.start_mark.index,
                value_end=_content_end(value).index,
                items=tuple(_item_span(text, item) for item in items),
            )
    return SourcesLayout(None, False, len(text), len(text), ())
