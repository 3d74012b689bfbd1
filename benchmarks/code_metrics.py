"""Structure metrics of the ``aggregator`` package against the targets of issue 29.

Measured with :mod:`ast` alone:

- lines per module (target: none over 700);
- internal modules each module imports (target: none over 10), counting
  ``from aggregator.x import y`` as ``aggregator.x`` and relative imports
  resolved, imports under ``TYPE_CHECKING`` included;
- the share of functions over 50 lines, its docstring left out (target: at
  most 2.0 %);
- cyclomatic complexity per function, as radon counts it (1, plus one per
  ``if``/``elif``, loop, ``except``, ``with``-less boolean operator, comprehension
  ``if``/``for``, conditional expression, ``assert`` and ``match`` case; target:
  none over 30).

``python benchmarks/code_metrics.py`` prints the worst offenders and exits 1
when a target is missed; ``--json`` prints everything.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aggregator"

MAX_MODULE_LINES = 700
MAX_INTERNAL_IMPORTS = 10
LONG_FUNCTION = 50
MAX_LONG_SHARE = 0.02
MAX_COMPLEXITY = 30


@dataclass(frozen=True)
class Function:
    module: str
    name: str
    line: int
    lines: int
    complexity: int


@dataclass(frozen=True)
class Module:
    name: str
    lines: int
    imports: tuple[str, ...]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _internal_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "aggregator")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "aggregator":
                continue
            if target == "aggregator" or _is_package(target):
                # ``from aggregator import dedup`` or ``from aggregator.store import x``:
                # a submodule when one of that name exists, else the package itself
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if _exists(sub) else target)
            else:
                found.add(target)
    found.discard(name)
    return found


def _exists(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _is_package(name: str) -> bool:
    return (PACKAGE.parent.joinpath(*name.split(".")) / "__init__.py").is_file()


_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler, ast.Assert)


def complexity(func: ast.AST) -> int:
    """Cyclomatic complexity of a function's own body (nested functions count apart)."""
    score = 1
    todo = list(ast.iter_child_nodes(func))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(
            node,
            ast.If
            | ast.For
            | ast.AsyncFor
            | ast.While
            | ast.IfExp
            | ast.ExceptHandler
            | ast.Assert,
        ):
            score += 1
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            score += 1 + len(node.ifs)
        elif isinstance(node, ast.match_case):
            score += 1
        elif isinstance(node, ast.Try):
            score += bool(node.orelse)
        todo.extend(ast.iter_child_nodes(node))
    return score


def _lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The function's lines, from its ``def`` to its end, without its docstring."""
    lines = (func.end_lineno or func.lineno) - func.lineno + 1
    first = func.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def measure() -> tuple[list[Module], list[Function]]:
    modules: list[Module] = []
    functions: list[Function] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        name = module_name(path)
        imports = _internal_imports(tree, name, path.name == "__init__.py")
        modules.append(Module(name, len(text.splitlines()), tuple(sorted(imports))))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append(
                    Function(name, node.name, node.lineno, _lines(node), complexity(node))
                )
    return modules, functions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="print every measure as JSON")
    args = parser.parse_args()
    modules, functions = measure()
    long = [f for f in functions if f.lines > LONG_FUNCTION]
    share = len(long) / len(functions)
    big = [m for m in modules if m.lines > MAX_MODULE_LINES]
    hubs = [m for m in modules if len(m.imports) > MAX_INTERNAL_IMPORTS]
    tangled = [f for f in functions if f.complexity > MAX_COMPLEXITY]
    if args.json:
        out = {"modules": [asdict(m) for m in modules], "functions": [asdict(f) for f in functions]}
        print(json.dumps(out, indent=1))
    else:
        print(f"{len(modules)} modules, {len(functions)} functions")
        print(f"modules over {MAX_MODULE_LINES} lines: {len(big)}")
        for m in sorted(big, key=lambda m: -m.lines):
            print(f"  {m.lines:5d}  {m.name}")
        print(f"modules importing over {MAX_INTERNAL_IMPORTS} internal modules: {len(hubs)}")
        for m in sorted(hubs, key=lambda m: -len(m.imports)):
            print(f"  {len(m.imports):5d}  {m.name}")
        print(f"functions over {LONG_FUNCTION} lines: {len(long)} ({share:.2%})")
        print(f"functions over complexity {MAX_COMPLEXITY}: {len(tangled)}")
        for f in sorted(tangled, key=lambda f: -f.complexity):
            print(f"  {f.complexity:5d}  {f.module}.{f.name} (line {f.line})")
    missed = big or hubs or tangled or share > MAX_LONG_SHARE
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
