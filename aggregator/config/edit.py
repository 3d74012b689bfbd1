"""Editing the config's YAML as text, so comments and layout stay, and writing it safely.

Every command that changes the sources (``import-opml``, ``add``,
``remove``, ``disable``, ``enable``) edits the text of the config file or
of a file it ``include:``s: a source block is inserted after the last item of
the ``sources:`` list, at its indentation; a source's lines are removed; an
``enabled: false`` line is added to (or removed from) its mapping. Everything
else in the file stays byte for byte. :func:`commit` checks that the edited
files load (reading the new texts before any file is written) and only then
replaces each file atomically; a failed write puts back every file it had
already replaced.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aggregator.config import Config, load_config
from aggregator.config.files import ItemSpan, sources_layout
from aggregator.errors import ConfigError

__all__ = [
    "Check",
    "Edit",
    "add_include",
    "commit",
    "file_of_source",
    "include_entry",
    "insert_source",
    "quoted",
    "remove_source",
    "set_enabled",
    "source_block",
]


#: more to verify on the config loaded from an edit (the new source is in it)
Check = Callable[[Config], None]
#: (a file's text, its name for errors) -> its new text
Edit = Callable[[str, str], str]


def quoted(value: str) -> str:
    """A YAML scalar that loads back as ``value`` exactly.

    A JSON string is a valid YAML double-quoted scalar. ``${`` is written as
    ``$${`` so the config loader never expands the environment into a value
    that came from outside (a feed's title or an OPML outline could otherwise
    name a secret).
    """
    return json.dumps(value.replace("${", "$${"), ensure_ascii=False)


def source_block(fields: Sequence[tuple[str, str]], *, dash_column: int = 2) -> str:
    """A ``sources:`` item: ``- key: value`` lines, values already YAML, at ``dash_column``."""
    pad = " " * dash_column
    lines = [
        f"{pad}{'- ' if i == 0 else '  '}{key}: {value}\n" for i, (key, value) in enumerate(fields)
    ]
    return "".join(lines)


def add_include(text: str, entry: str) -> str:
    """Add ``entry`` to the config text's ``include:`` list, editing text to keep comments.

    Handles a flow list (``include: [a, b]``), a block list (``include:``
    followed by ``- a`` lines) and no ``include:`` key at all (a line is
    appended). The caller validates the result.

    Raises:
        ValueError: an ``include:`` written in a form this cannot edit.
    """
    item = quoted(entry)
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


def include_entry(config: Config, target: Path) -> str:
    """How the config's ``include:`` names ``target``: relative to the config when below it."""
    entry = os.path.relpath(target, config.path.resolve().parent)
    if entry.startswith(".."):
        entry = str(target)
    return entry.replace(os.sep, "/")


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _last_line(lines: Sequence[str], item: ItemSpan) -> int:
    """The item's last line, with the comments below it indented under it (they are its own)."""
    last = item.end_line
    for i in range(item.end_line + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped:
            continue
        indent = len(lines[i]) - len(lines[i].lstrip(" \t"))
        if not stripped.startswith("#") or indent <= item.dash_column:
            break
        last = i
    return last


def insert_source(text: str, fields: Sequence[tuple[str, str]], *, file: str) -> str:
    """The text with a source appended to its ``sources:`` list (created if there is none).

    Raises:
        ConfigError: the list is written ``[a, b]`` (flow style, not empty),
            which cannot be edited line by line.
    """
    layout = sources_layout(text, file)
    if layout.key_line is None:
        lines = _lines(text)
        return "".join(lines) + "sources:\n" + source_block(fields)
    if layout.items:
        if layout.flow:
            raise _flow_list(file)
        lines = _lines(text)
        block = source_block(fields, dash_column=layout.items[0].dash_column)
        lines.insert(_last_line(lines, layout.items[-1]) + 1, block)
        return "".join(lines)
    # "sources:" with an empty value, or "sources: []": the block goes below the key.
    value = text[layout.value_start : layout.value_end]
    if value.strip() not in ("", "[]", "~", "null"):
        raise _flow_list(file)
    head = text[: layout.value_start].rstrip(" \t") if value.strip() else text[: layout.value_start]
    rest = text[layout.value_end :]
    lines = _lines(head + rest)
    lines.insert(layout.key_line + 1, source_block(fields))
    return "".join(lines)


def _flow_list(file: str) -> ConfigError:
    return ConfigError(
        "cannot edit a sources list written as [...] by text: write it as a block list "
        "('- name: ...' lines)",
        file=file,
        key="sources",
    )


def _item(text: str, name: str, file: str) -> ItemSpan:
    found = [i for i in sources_layout(text, file).items if i.name == name]
    if not found:
        raise ConfigError(f"no source named {name!r}", file=file, key="sources")
    return found[0]


def remove_source(text: str, name: str, *, file: str) -> str:
    """The text without the source's lines (the comments above it stay).

    Raises:
        ConfigError: no such source in the text, or it shares a line with
            another (a ``[...]`` list).
    """
    item = _item(text, name, file)
    if sources_layout(text, file).flow:
        raise _flow_list(file)
    lines = _lines(text)
    del lines[item.dash_line : _last_line(lines, item) + 1]
    return "".join(lines) if text.endswith("\n") or not lines else "".join(lines).rstrip("\n")


def set_enabled(text: str, name: str, enabled: bool, *, file: str) -> str:
    """The text with the source's ``enabled: false`` added, or its ``enabled:`` key removed.

    Disabling adds a line ``enabled: false`` below the source's last key (or
    ``, enabled: false`` inside a ``{...}`` mapping); enabling removes that
    key again, so disable then enable gives back the same bytes. A key that
    cannot go without disturbing another line gets the value ``true`` instead.

    Raises:
        ConfigError: no such source in the text.
    """
    item = _item(text, name, file)
    span = item.key("enabled")
    if span is not None:
        if not enabled:
            return text[: span.value_start] + "false" + text[span.value_end :]
        return _drop_key(text, item, span.key_start, span.value_end, span.key_line)
    if enabled:
        return text
    if item.flow:
        close = text.rindex("}", 0, item.end)
        before = text[:close].rstrip()
        return before + ", enabled: false" + text[len(before) :]
    lines = _lines(text)
    lines.insert(item.end_line + 1, " " * item.key_column + "enabled: false\n")
    return "".join(lines)


def _drop_key(text: str, item: ItemSpan, start: int, end: int, line: int) -> str:
    """The text without one ``key: value`` of the item, or with the value ``true``."""
    keys = [s for _k, s in item.keys]
    index = next(i for i, s in enumerate(keys) if s.key_start == start)
    if item.flow and index > 0:
        # ", enabled: false": from the end of the value before it.
        return text[: keys[index - 1].value_end] + text[end:]
    own_line = line != item.dash_line and keys[index].value_end_line == line
    if not item.flow and own_line:
        lines = _lines(text)
        del lines[line]
        return "".join(lines)
    value_start = keys[index].value_start
    return text[:value_start] + "true" + text[end:]


def file_of_source(config: Config, name: str) -> Path:
    """The file whose ``sources:`` list holds ``name``: the config, or a file it includes.

    Raises:
        ConfigError: no file holds it (or a file cannot be read).
    """
    for path in (config.path, *config.included):
        text = _read(path)
        if any(i.name == name for i in sources_layout(text, str(path)).items):
            return path
    raise ConfigError(f"no source named {name!r}", file=str(config.path), key="sources")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from None


def commit(
    config_path: Path,
    texts: Mapping[Path, str],
    check: Check | None = None,
) -> Config:
    """Check that the config loads with the new texts, then write them, each atomically.

    Nothing is written unless the config, read with ``texts`` in place of
    those files, loads and passes ``check``. A write that fails puts back the
    files already replaced, byte for byte.

    Args:
        config_path: the config file.
        texts: path -> its new text (a path that does not exist yet is created).
        check: more to verify on the loaded config (the new source is in it).

    Returns:
        The config as loaded from the new texts.

    Raises:
        ConfigError: the result does not load, or fails ``check``.
        OSError: a file could not be written (the others are restored).
    """
    pending = {path.resolve(): text for path, text in texts.items()}
    loaded = load_config(config_path, pending=pending)
    if check is not None:
        check(loaded)
    # Included files first: the config that names a new file is written last,
    # so a daemon reloading in between never reads an include that is missing.
    order = sorted(pending, key=lambda p: p == config_path.resolve())
    done: list[tuple[Path, bytes | None]] = []
    try:
        for path in order:
            old = path.read_bytes() if path.exists() else None
            _replace(path, pending[path].encode("utf-8"))
            done.append((path, old))
    except OSError:
        for path, old in reversed(done):
            if old is None:
                path.unlink(missing_ok=True)
            else:
                _replace(path, old)
        raise
    return loaded


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
