"""Names a package exports from its modules, each module imported on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["load"]


def load(package: str, table: Mapping[str, str], namespace: dict[str, Any], name: str) -> Any:
    """The value of ``name`` from the module ``table`` names for it, kept in ``namespace``.

    Raises:
        AttributeError: ``name`` is not in ``table`` (as a module's ``__getattr__`` must).
    """
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value
