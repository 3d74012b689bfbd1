"""Subscriptions in and out of the config: OPML export, and OPML import by editing YAML text.

An import adds the outlines' feeds as sources in a YAML file that the config
includes (``sources.d/imported.yaml`` by default), editing the config's text
so its comments stay (:mod:`aggregator.config.edit`); the result is validated
before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from aggregator.config import Config
from aggregator.config.edit import add_include, commit, include_entry, quoted
from aggregator.errors import ConfigError
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


_q = quoted


def _source_yaml(name: str, outline: OpmlOutline) -> str:
    tags = ", ".join(_q(t) for t in outline.categories)
    # An outline without a title got its URL as title: leave the feed's own.
    title = f"    title: {_q(outline.title)}\n" if outline.title != outline.xml_url else ""
    return f"  - name: {_q(name)}\n    url: {_q(outline.xml_url)}\n{title}    tags: [{tags}]\n"


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

    Nothing is written unless the result loads with every added source (see
    :func:`aggregator.config.edit.commit`).

    Raises:
        AggregatorError, OSError, ValueError: the result could not be written
            or does not load; every file is as it was.
    """
    target = plan.target
    old_target = target.read_text() if target.exists() else None
    if old_target is None or not old_target.strip():
        header = f"# Sources imported from {opml_name} by aggregator import-opml.\nsources:\n"
        text = header + "".join(plan.blocks)
    else:
        text = (old_target if old_target.endswith("\n") else old_target + "\n") + "".join(
            plan.blocks
        )
    texts = {target: text}
    if target.resolve() not in {p.resolve() for p in config.included}:
        texts[config.path] = add_include(config.path.read_text(), include_entry(config, target))

    def has_added(loaded: Config) -> None:
        names = {s.name for s in loaded.sources}
        if not all(n in names for n in plan.added):
            raise ConfigError(
                "the imported sources do not appear after adding the include",
                file=str(config.path),
                key="include",
            )

    commit(config.path, texts, has_added)
