"""feedparser's parser state and element stack, replayed for the fast path.

:class:`_State` holds what feedparser's parser holds while it reads (where it
is: feed, entry, image, source, author...; the element depth; ``xml:lang``;
the stack of open elements and their text) and replays its stack operations:
``push``, ``pop`` (what an element's text becomes and where it is stored) and
the storing of authors and tags. The start and end handlers
(:mod:`aggregator.parse.faststart`, :mod:`aggregator.parse.fastend`) build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aggregator.parse.fastnames import (
    _CONTENT_TYPES,
    _LINK_ENTITY,
    _RDF_NS,
    _TEXT_TYPES,
    _URI_KEYS,
    _XML_NS,
    Rules,
    _Decline,
    _person,
    _resolve,
)


@dataclass(slots=True)
class _Frame:
    """One open element: what feedparser pushed for it."""

    key: str
    expecting_text: bool
    pieces: list[str] = field(default_factory=list)


class _State:
    """feedparser's parser state and its stack operations, over an lxml tree."""

    def __init__(self, rules: Rules, base: str, language: str | None) -> None:
        self.rules = rules
        self.base = base
        self.version = ""
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.depths: list[dict[str, int]] = []
        self.lang = language
        if language:
            self.feed["language"] = language.replace("_", "-")
        self.depth = 0
        self.infeed = self.inentry = self.inimage = self.intextinput = False
        self.inauthor = self.inpublisher = self.incontributor = self.insource = False
        self.source: dict[str, Any] = {}
        self.incontent = 0
        self.has_content = False
        self.title_depth = -1
        self.guidislink = False
        self.summary_key: str | None = None
        self.params: dict[str, Any] = {}
        self.stack: list[_Frame] = []
        self.prefixes: dict[str | None, str] = {}
        self.keys: dict[str, str] = {}

    def key(self, element: Any) -> str:
        """feedparser's name for an element: its namespace's prefix, "_", its lower-cased name."""
        tag = element.tag
        if not isinstance(tag, str):
            raise _Decline("entity reference")
        namespace, _, local = tag[1:].rpartition("}") if tag[0] == "{" else ("", "", tag)
        lowered = namespace.lower()
        if "backend.userland.com/rss" in lowered:
            lowered = "http://backend.userland.com/rss"
        prefix = self.rules.namespaces.get(lowered)
        known = prefix is not None
        if prefix is None:
            prefix = element.prefix or ""  # the document's own: not cached
        # feedparser maps a prefix again through every declaration it has seen
        # that binds a prefix of that name to a namespace it knows.
        prefix = self.prefixes.get(prefix, prefix)
        key = f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()
        if known:
            self.keys[tag] = key
        return key

    def attributes(self, items: list[tuple[str, str]]) -> dict[str, str]:
        """Attributes as feedparser sees them: names lower-cased, ``rel``/``type`` values too."""
        found: dict[str, str] = {}
        for name, value in items:
            if name[0] == "{":
                namespace, _, local = name[1:].partition("}")
                if namespace == _XML_NS and local == "lang":
                    found["xml:lang"] = value
                    continue
                if namespace == _RDF_NS and local in ("about", "resource"):
                    found[f"rdf:{local}"] = value
                    continue
                raise _Decline("namespaced attribute")
            key = name.lower()
            found[key] = value.lower() if key in ("rel", "type") else value
        return found

    def track(self, namespaces: Mapping[str | None, str]) -> None:
        """Note which prefixes name namespaces feedparser knows (its ``namespacemap``)."""
        for prefix, uri in namespaces.items():
            known = self.rules.namespaces.get(uri.lower())
            if known is not None and prefix is not None and self.prefixes.get(prefix) != known:
                self.prefixes[prefix] = known
                self.keys.clear()  # an element's key may change with the map

    # --- feedparser's stack -------------------------------------------------

    def push(self, key: str, expecting_text: bool) -> None:
        self.stack.append(_Frame(key, expecting_text))

    def context(self) -> dict[str, Any]:
        if self.insource:
            return self.source
        if self.inimage and "image" in self.feed:
            image: dict[str, Any] = self.feed["image"]
            return image
        if self.intextinput:
            textinput: dict[str, Any] = self.feed["textinput"]
            return textinput
        if self.inentry:
            return self.entries[-1]
        return self.feed

    def push_content(self, key: str, attrs: Mapping[str, str], default: str) -> None:
        self.incontent += 1
        if self.lang:
            self.lang = self.lang.replace("_", "-")
        kind = attrs.get("type", default).lower()
        kind = _CONTENT_TYPES.get(kind, kind)
        if kind not in _TEXT_TYPES or attrs.get("mode") == "base64":
            raise _Decline(f"{key} of type {'xhtml' if 'xhtml' in kind else 'other'}")
        self.params = {"type": kind, "language": self.lang, "base": self.base}
        self.stack.append(_Frame(key, True))

    def pop(self, key: str) -> str | None:
        stack = self.stack
        if not stack or stack[-1].key != key:
            return None
        frame = stack.pop()
        output = "".join(frame.pieces).strip()
        if not frame.expecting_text:
            return output
        if key in _URI_KEYS and output and (key != "id" or self.guidislink):
            output = _resolve(self.base, output)
        if (
            self.params.get("type") == "text/plain"
            and not self.version.startswith("atom")
            and self.rules.looks_like_html(output)
        ):
            self.params["type"] = "text/html"
        if not output.isascii():
            output = self.rules.fix_text(output)
        if key in ("category", "itunes_keywords", "media_keywords"):
            return output
        if key == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry and not self.insource:
            self.store_in_entry(key, output)
        elif self.infeed or self.insource:
            self.store_in_feed(key, output)
        return output

    def store_in_entry(self, key: str, output: str) -> None:
        entry = self.entries[-1]
        if key == "content":
            entry.setdefault("content", []).append({**self.params, "value": output})
        elif key == "link":
            if not self.inimage:
                output = output.replace("&amp;", "&")
                if "&" in output:
                    output = _LINK_ENTITY.sub(r"&\g<1>", output)
                entry["link"] = output
                if output:
                    entry["links"][-1]["href"] = output
        else:
            if key == "description":
                key = "summary"
            depths = self.depths[-1]
            old = depths.get(key)
            if old is None or self.depth <= old:
                depths[key] = self.depth
                entry[key] = output
            if self.incontent:
                entry[f"{key}_detail"] = {**self.params, "value": output}

    def store_in_feed(self, key: str, output: str) -> None:
        context = self.context()
        if key == "description":
            key = "subtitle"
        context[key] = output
        if key == "link":
            output = _LINK_ENTITY.sub(r"&\g<1>", output)
            context[key] = output
            context["links"][-1]["href"] = output
        elif self.incontent:
            context[f"{key}_detail"] = {**self.params, "value": output}

    def pop_content(self, key: str) -> str | None:
        value = self.pop(key)
        self.incontent -= 1
        self.params = {}
        return value

    def save(self, key: str, value: Any, *, overwrite: bool = False) -> None:
        if overwrite:
            self.context()[key] = value
        else:
            self.context().setdefault(key, value)

    def sync_author(self, key: str = "author") -> None:
        context = self.context()
        details = context.get(f"{key}s", [{}])
        detail = details[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                context[key] = f"{name} ({email})"
            elif name or email:
                context[key] = name or email
            return
        author = context.get(key)
        if not author:
            return
        person = _person(author)
        if person:
            context.setdefault(f"{key}_detail", detail)
        detail.update(person)

    def save_author(self, key: str, value: str | None, prefix: str = "author") -> None:
        context = self.context()
        context.setdefault(f"{prefix}_detail", {})[key] = value
        self.sync_author()
        context.setdefault("authors", [{}])
        context["authors"][-1][key] = value

    def add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self.context().setdefault("tags", [])
        if not (term or scheme or label):
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)
