"""Reading a configuration file: YAML with a safe loader and a bound on alias expansion,
``${VAR}`` interpolation, and key paths for error messages (``topics[1].query``).

The one module importing PyYAML for the configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
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


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
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
