"""``aggregator add``, ``remove``, ``disable``, ``enable``: changing the sources without an editor.

Each edits the text of the config (or the file it ``include:``s that holds
the source) with :mod:`aggregator.config.edit`: comments and layout stay, the
result is checked before a file is written, and a running daemon picks the
change up (it watches those files).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import NoReturn

import click

from aggregator.cli.app import (
    EXIT_CONFIG,
    EXIT_SOURCE_FAILED,
    State,
    known_errors,
    main,
    pass_state,
)
from aggregator.cli.subscriptions import slugify
from aggregator.config import Config
from aggregator.config import edit as configedit
from aggregator.errors import AggregatorError, ConfigError, SourceError, printable
from aggregator.model import SourceKind


def _refuse(message: str) -> NoReturn:
    click.echo(f"aggregator: error: {printable(message)}", err=True)
    sys.exit(EXIT_CONFIG)


def _commit(config: Config, texts: dict[Path, str], check: configedit.Check | None) -> None:
    """Write the edit, or say in one line why nothing was written (exit 2)."""
    try:
        configedit.commit(config.path, texts, check)
    except (AggregatorError, OSError, ValueError) as exc:
        _refuse(f"{exc}; no file was changed")


def _choose(url: str, found: list[tuple[str, str | None, str]], pick: int | None, yes: bool) -> int:
    """The index of the feed to add among several: ``--pick``, ``--yes`` (the first), or asked."""
    if pick is not None:
        if not 1 <= pick <= len(found):
            _refuse(f"--pick {pick}: {url} offers {len(found)} feeds (1 to {len(found)})")
        return pick - 1
    for i, (feed, title, via) in enumerate(found, 1):
        click.echo(f"{i}. {feed}  {printable(title or '')}  ({via})", err=True)
    if yes:
        return 0
    try:
        choice: int = click.prompt(
            "Add which feed", type=click.IntRange(1, len(found)), default=1, err=True
        )
    except click.Abort:  # no answer (end of input): a script wants --pick or --yes
        _refuse(f"{url} offers {len(found)} feeds: choose one with --pick N, or --yes")
    return choice - 1


def _feed_title(config: Config, url: str) -> str | None:
    """The feed's own title (fetching it once more: a page's link title is not the feed's)."""
    from aggregator.update import discover_url

    try:
        found = asyncio.run(discover_url(config, url))
    except SourceError as exc:
        click.echo(f"aggregator: error: {printable(str(exc))}", err=True)
        sys.exit(EXIT_SOURCE_FAILED)
    own = [f for f in found if f.via == "self"]
    if not own:
        click.echo(f"aggregator: error: {url}: not a feed", err=True)
        sys.exit(EXIT_SOURCE_FAILED)
    return own[0].title


def _name_for(config: Config, given: str | None, title: str | None, url: str) -> str:
    taken = {s.name for s in config.sources}
    if given is not None:
        if given in taken:
            _refuse(f"--name: a source named {given!r} exists already")
        return given
    base = slugify(title) if title else "feed"
    if base == "feed":
        base = slugify(url.split("//", 1)[-1].split("/", 1)[0])
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    return name


@main.command("add")
@click.argument("url")
@click.option("--name", default=None, help="The source's name [default: from the feed's title].")
@click.option("--tag", "tags", multiple=True, help="A tag for its entries (repeatable).")
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write it into this sources file (included from the config) [default: the config].",
)
@click.option("--full-content", is_flag=True, help="Fetch each new entry's page for its article.")
@click.option("--pick", type=int, default=None, help="Of several feeds found, take the N-th.")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: of several feeds, take the first.")
@pass_state
def add_cmd(
    state: State,
    url: str,
    name: str | None,
    tags: tuple[str, ...],
    into: Path | None,
    full_content: bool,
    pick: int | None,
    yes: bool,
) -> None:
    """Add a feed as a source: URL is the feed, or a page whose feeds are found as discover does.

    The source is written into the config (or --into a file it includes),
    keeping comments and layout; the result is checked before any file is
    written. A running daemon picks it up and polls it at once.
    """
    from aggregator.update import discover_url

    config = state.config
    try:
        feeds = asyncio.run(discover_url(config, url))
    except SourceError as exc:
        click.echo(f"aggregator: error: {printable(str(exc))}", err=True)
        sys.exit(EXIT_SOURCE_FAILED)
    if not feeds:
        click.echo(f"aggregator: error: {url}: no feeds found", err=True)
        sys.exit(EXIT_SOURCE_FAILED)
    chosen = feeds[0]
    if len(feeds) > 1:
        chosen = feeds[_choose(url, [(f.url, f.title, f.via) for f in feeds], pick, yes)]
    configured = {s.location: s.name for s in config.sources if s.kind is SourceKind.URL}
    if chosen.url in configured:
        _refuse(f"{chosen.url} is configured already, as {configured[chosen.url]!r}")
    title = chosen.title if chosen.via == "self" else _feed_title(config, chosen.url)
    source = _name_for(config, name, title, chosen.url)
    fields = [("name", configedit.quoted(source)), ("url", configedit.quoted(chosen.url))]
    if tags:
        fields.append(("tags", "[" + ", ".join(configedit.quoted(t) for t in tags) + "]"))
    if full_content:
        fields.append(("full_content", "true"))
    try:
        target, texts = _add_texts(config, into, fields)
    except (AggregatorError, OSError, ValueError) as exc:
        _refuse(f"{exc}; no file was changed")

    def added(loaded: Config) -> None:
        if loaded.source(source) is None:
            raise ConfigError(f"{source!r} is not among the loaded sources", file=str(target))

    _commit(config, texts, added)
    click.echo(f"added {source} ({chosen.url}) to {target}")


def _add_texts(
    config: Config, into: Path | None, fields: list[tuple[str, str]]
) -> tuple[Path, dict[Path, str]]:
    """The file the source goes into, and the new text of each file that changes."""
    target = (into if into is not None else config.path).resolve()
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    texts = {target: configedit.insert_source(old, fields, file=str(target))}
    included = {p.resolve() for p in config.included}
    if target != config.path.resolve() and target not in included:
        text = config.path.read_text(encoding="utf-8")
        texts[config.path] = configedit.add_include(text, configedit.include_entry(config, target))
    return target, texts


def _edited(config: Config, name: str, edit: configedit.Edit) -> tuple[Path, dict[Path, str]]:
    """The file holding the source, and its new text after ``edit``; exits 2 for an unknown name."""
    if config.source(name) is None:
        _refuse(f"unknown source {name!r} (see aggregator sources)")
    with known_errors():
        path = configedit.file_of_source(config, name)
        text = path.read_text(encoding="utf-8")
        return path, {path: edit(text, str(path))}


@main.command("remove")
@click.argument("name")
@click.option(
    "--keep-stories", is_flag=True, help="Keep its stories in the topic feeds (until retention)."
)
@pass_state
def remove_cmd(state: State, name: str, keep_stories: bool) -> None:
    """Remove a source from the config (or the included file that holds it).

    Its entries go with it (its stories leave the feeds at the next reload),
    unless --keep-stories.
    """
    config = state.config
    path, texts = _edited(
        config, name, lambda text, file: configedit.remove_source(text, name, file=file)
    )
    from aggregator.store import open_store

    with known_errors():
        store = open_store(config.store_url, near=config.dedup)
    try:
        # Marked before the config changes: a daemon reloading at once keeps them.
        with known_errors():
            store.keep_stories(name, keep_stories)

        def removed(loaded: Config) -> None:
            if loaded.source(name) is not None:
                raise ConfigError(f"{name!r} is still configured (twice?)", file=str(path))

        try:
            configedit.commit(config.path, texts, removed)
        except (AggregatorError, OSError, ValueError) as exc:
            store.keep_stories(name, False)
            _refuse(f"{exc}; no file was changed")
    finally:
        store.close()
    kept = "its stories are kept" if keep_stories else "its stories leave the feeds"
    click.echo(f"removed {name} from {path}; {kept}")


@main.command("disable")
@click.argument("name")
@pass_state
def disable_cmd(state: State, name: str) -> None:
    """Stop polling a source (``enabled: false``); its stories stay."""
    config = state.config
    spec = config.source(name)
    if spec is not None and not spec.enabled:
        click.echo(f"{name} is disabled already")
        return
    path, texts = _edited(
        config, name, lambda text, file: configedit.set_enabled(text, name, False, file=file)
    )
    _commit(config, texts, _enabled_is(name, False))
    click.echo(f"disabled {name} in {path}")


@main.command("enable")
@click.argument("name")
@pass_state
def enable_cmd(state: State, name: str) -> None:
    """Poll a source again: disabled in the config, or put to rest as a dead feed."""
    from aggregator.store import open_store

    config = state.config
    spec = config.source(name)
    done = []
    if spec is not None and not spec.enabled:
        path, texts = _edited(
            config, name, lambda text, file: configedit.set_enabled(text, name, True, file=file)
        )
        _commit(config, texts, _enabled_is(name, True))
        done.append(f"enabled {name} in {path}")
    elif spec is None:
        _refuse(f"unknown source {name!r} (see aggregator sources)")
    with known_errors():
        store = open_store(config.store_url, near=config.dedup)
        try:
            st = store.get_state(name)
            if st is not None and (st.disabled_at is not None or st.gone):
                store.enable_source(name)
                done.append(f"{name} is no longer put to rest ({st.disabled_reason or 'gone'})")
        finally:
            store.close()
    if not done:
        click.echo(f"{name} is enabled already")
        return
    for line in done:
        click.echo(line)


def _enabled_is(name: str, enabled: bool) -> configedit.Check:
    def check(loaded: Config) -> None:
        spec = loaded.source(name)
        if spec is None or spec.enabled is not enabled:
            raise ConfigError(f"{name!r}: enabled is not {str(enabled).lower()} after the edit")

    return check
