"""Subscriptions in and out of the config: OPML export, and OPML import by editing YAML text.

An import adds the outlines' feeds as sources in a YAML file that the config
includes (``sources.d/imported.yaml`` by default), editing the config's text
so its comments stay; the result is validated, and both files are restored
when it does not load.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from aggregator.config import Config, load_config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.model import SourceKind
from aggregator.sources.opml import OpmlOutline, render_opml

__all__ = [
    "IMPORTED_SOURCES",
    "ImportPlan",
    "add_include",
    "export_opml",
    "plan_import",
    "slugify",
    "write_import",
]


def export_opml(config: Config) -> tuple[bytes, int]:
    """The configured URL sources as an OPML subscription list, and how many there are."""
    outlines = [
        OpmlOutline(title=s.title or s.name, xml_url=s.location, categories=s.tags)
        for s in config.sources
        if s.kind is SourceKind.URL
    ]
    return render_opml(outlines, title=f"{config.site.title} sources"), len(outlines)


IMPORTED_SOURCES = Path("sources.d") / "imported.yaml"


def slugify(text: str) -> str:
    """A source name from a title: lower-case ASCII letters, digits and dashes, at most 60."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")
    return slug or "feed"


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


def _q(value: str) -> str:
    """A YAML scalar that loads back as ``value`` exactly.

    A JSON string is a valid YAML double-quoted scalar. ``${`` is written as
    ``$${`` so the config loader never expands the environment into a value
    that came from a file (an OPML outline could otherwise name a secret).
    """
    return json.dumps(value.replace("${", "$${"), ensure_ascii=False)


def _source_yaml(name: str, outline: OpmlOutline) -> str:
    tags = ", ".join(_q(t) for t in outline.categories)
    # An outline without a title got its URL as title: leave the feed's own.
    title = f"    title: {_q(outline.title)}\n" if outline.title != outline.xml_url else ""
    return f"  - name: {_q(name)}\n    url: {_q(outline.xml_url)}\n{title}    tags: [{tags}]\n"


def add_include(text: str, entry: str) -> str:
    """Add ``entry`` to the config text's ``include:`` list, editing text to keep comments.

    Handles a flow list (``include: [a, b]``), a block list (``include:``
    followed by ``- a`` lines) and no ``include:`` key at all (a line is
    appended). The caller validates the result.
    """
    item = _q(entry)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = re.match(r"include:[ \t]*(.*?)(\r?\n)?$", line)
        if match is None:
            continue
        rest = match.group(1)
        newline = match.group(2) or ""
        flow = re.match(r"\[(.*?)\](.*)$", rest)
        if flow is not None:
            inner = flow.group(1).strip()
            items = f"{inner}, {item}" if inner else item
            lines[i] = f"include: [{items}]{flow.group(2)}{newline}"
            return "".join(lines)
        if rest and not rest.startswith("#"):
            raise ValueError(f"cannot edit 'include: {rest.strip()}' by text")
        # A block list: insert after its last "- item" line, at that indent.
        last, indent = i, "  "
        for j in range(i + 1, len(lines)):
            stripped = lines[j].strip()
            item_match = re.match(r"([ \t]*)- ", lines[j])
            if item_match is not None:
                last, indent = j, item_match.group(1)
            elif stripped and not stripped.startswith("#"):
                break
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, f"{indent}- {item}\n")
        return "".join(lines)
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}include: [{item}]\n"


@dataclass(frozen=True)
class ImportPlan:
    """What an import adds: the sources file, the new sources' names and YAML, the skipped."""

    #: the sources file to write (absolute)
    target: Path
    #: names of the sources added, in outline order
    added: tuple[str, ...]
    #: one YAML block per added source
    blocks: tuple[str, ...]
    #: outlines whose feed is configured already
    skipped: int


def plan_import(config: Config, outlines: list[OpmlOutline], into: Path | None) -> ImportPlan:
    """Name the outlines' feeds that are not configured yet (same URL: skipped)."""
    config_dir = config.path.resolve().parent
    target = (into if into is not None else config_dir / IMPORTED_SOURCES).resolve()
    configured = {s.location for s in config.sources if s.kind is SourceKind.URL}
    taken = {s.name for s in config.sources}
    added: list[str] = []
    blocks: list[str] = []
    skipped = 0
    for outline in outlines:
        if outline.xml_url in configured:
            skipped += 1
            continue
        configured.add(outline.xml_url)
        titled = outline.title != outline.xml_url
        base = slugify(outline.title) if titled else "feed"
        if base == "feed":
            # No usable title: the host says more than "feed".
            base = slugify(outline.xml_url.split("//", 1)[-1].split("/", 1)[0])
        name = _unique(base, taken)
        added.append(name)
        blocks.append(_source_yaml(name, outline))
    return ImportPlan(target, tuple(added), tuple(blocks), skipped)


def write_import(config: Config, plan: ImportPlan, *, opml_name: str) -> None:
    """Write the planned sources and, when needed, the config's ``include:``; check it loads.

    Raises:
        AggregatorError, OSError, ValueError: the result could not be written
            or does not load; both files are restored first.
    """
    target = plan.target
    config_dir = config.path.resolve().parent
    old_target = target.read_text() if target.exists() else None
    old_config = config.path.read_text()

    def restore() -> None:
        if old_target is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(old_target)
        config.path.write_text(old_config)

    added = list(plan.added)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if old_target is None or not old_target.strip():
            header = f"# Sources imported from {opml_name} by aggregator import-opml.\nsources:\n"
            target.write_text(header + "".join(plan.blocks))
        else:
            text = old_target if old_target.endswith("\n") else old_target + "\n"
            target.write_text(text + "".join(plan.blocks))
        if not _loads_sources(config.path, added):
            entry = os.path.relpath(target, config_dir)
            if entry.startswith(".."):
                entry = str(target)
            config.path.write_text(add_include(old_config, entry.replace(os.sep, "/")))
            if not _loads_sources(config.path, added):
                raise ConfigError(
                    "the imported sources do not appear after adding the include",
                    file=str(config.path),
                    key="include",
                )
    except (AggregatorError, OSError, ValueError):
        restore()
        raise


def _loads_sources(path: Path, names: list[str]) -> bool:
    """Whether the config at ``path`` loads and holds every named source.

    Raises:
        ConfigError: the config does not load.
    """
    loaded = {s.name for s in load_config(path).sources}
    return all(n in loaded for n in names)
