"""feedparser's start handlers (``_start_<key>``), replayed for the fast path.

Four groups, each a method (:data:`aggregator.parse.fastnames._FRAME_KEYS` and
the like name the keys of each): frames (the feed, entries, images), text
(titles, links, ids, summaries, contents), people (sources, contributors,
dates, authors, publishers) and terms (categories, keywords, languages,
stored-only elements); an element with no replayed handler is stored, or
declined when feedparser has a handler for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aggregator.parse.fastnames import (
    _AUTHOR,
    _CATEGORY,
    _CREATED,
    _DESCRIPTION,
    _HTML_TYPES,
    _LANGUAGE,
    _LINK_TYPES,
    _OTHER_CONTENT,
    _PUBLISHED,
    _PUBLISHER,
    _READ_KEYS,
    _STORE_ONLY,
    _STORED_AS,
    _SUMMARY,
    _TITLE,
    _UPDATED,
    _Decline,
    _resolve,
)
from aggregator.parse.faststate import _State


class _Starts(_State):
    """The start handlers, by group; True when the element may hold text only."""

    def _start_frame(self, key: str, attrs: dict[str, str]) -> bool | None:
        """The feed, its entries, images and text inputs: the frames others fill.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key == "rss":
            version = attrs.get("version", "")
            self.version = {
                "0.91": "rss091u",
                "0.92": "rss092",
                "0.93": "rss093",
                "0.94": "rss094",
            }.get(version) or ("rss20" if version.startswith("2.") else "rss")
        elif key in ("channel", "feed"):
            if self.infeed or self.inentry:
                raise _Decline(f"nested {key}")
            self.infeed = True
            if key == "channel" and ("lastmod" in attrs or "href" in attrs):
                raise _Decline("channel attributes")
        elif key == "rdf_rdf":
            if self.depth != 1:
                raise _Decline("nested rdf:RDF")
        elif key in ("item", "entry"):
            if self.inentry:
                raise _Decline(f"nested {key}")
            if "lastmod" in attrs or "href" in attrs:
                raise _Decline(f"{key} attributes")
            self.entries.append({})
            self.depths.append({})
            self.push("item", False)
            self.inentry = True
            self.guidislink = False
            self.title_depth = -1
            if attrs.get("rdf:about"):
                self.entries[-1]["id"] = attrs["rdf:about"]
        elif key in ("image", "textinput"):
            if self.inentry or self.inimage or self.intextinput:
                raise _Decline(f"{key} in an entry")
            self.context().setdefault(key, {})
            if key == "image":
                self.inimage = True
            else:
                self.intextinput = True
            self.title_depth = -1
            self.push(key, False)
        else:
            return None
        return False

    def _start_text(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Titles, links, ids, summaries and contents.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key in _TITLE:
            self.push_content("title", attrs, "text/plain")
            return True
        elif key == "link":
            return self.start_link(attrs)
        elif key in ("guid", "id"):
            self.guidislink = attrs.get("ispermalink", "true") == "true"
            self.push("id", True)
            return True
        elif key in _DESCRIPTION:
            if "summary" in self.context() and not self.has_content:
                self.summary_key = "content"
                self.start_content(attrs, "text/plain")
            else:
                self.push_content("description", attrs, "text/html")
            return True
        elif key in _SUMMARY:
            if "summary" in self.context() and not self.has_content:
                self.summary_key = "content"
                self.start_content(attrs, "text/plain")
            else:
                self.summary_key = "summary"
                self.push_content("summary", attrs, "text/plain")
            return True
        elif key == "content":
            if "src" in attrs:
                raise _Decline("content with src")
            self.start_content(attrs, "text/plain")
            self.push("content", True)
            return True
        elif key in ("content_encoded", "fullitem"):
            self.start_content(attrs, "text/html")
            return True
        else:
            return None
        return False

    def _start_people(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Sources, contributors, dates, authors and publishers.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key == "source":
            if self.insource:
                raise _Decline("nested source")
            if "url" in attrs:
                self.source["href"] = attrs["url"]
            self.push("source", True)
            self.insource = True
            self.title_depth = -1
            return False
        elif key == "contributor":
            self.incontributor = True
            self.context().setdefault("contributors", []).append({})
            self.push("contributor", False)
        elif key == "dc_contributor":
            self.incontributor = True
            self.context().setdefault("contributors", []).append({})
            self.push("name", False)
            return True
        elif key in _PUBLISHED or key in _UPDATED or key in _CREATED:
            self.push(self.date_key(key), True)
            return True
        elif key in _AUTHOR:
            if self.inauthor:
                raise _Decline("nested author")
            self.inauthor = True
            self.push("author", True)
            self.context().setdefault("authors", []).append({})
            return key != "author"
        elif key in _PUBLISHER:
            self.push("publisher", True)
            return True
        elif key in ("name", "email", "itunes_name", "itunes_email"):
            self.push(key.removeprefix("itunes_"), False)
            return True
        elif key in ("uri", "url", "homepage"):
            self.push("href", True)
            return True
        elif key == "itunes_owner":
            if self.inentry:
                raise _Decline("itunes:owner in an entry")
            self.inpublisher = True
            self.push("publisher", False)
        else:
            return None
        return False

    def _start_terms(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Categories, keywords, languages, other contents and stored-only elements.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key in _CATEGORY:
            term = attrs.get("text") if key == "itunes_category" else attrs.get("term")
            scheme = attrs.get("scheme", attrs.get("domain"))
            if key == "itunes_category":
                scheme = "http://www.itunes.com/"
            elif key == "media_category":
                scheme = attrs.get("scheme", "http://search.yahoo.com/mrss/category_schema")
            self.add_tag(term, scheme, None if key == "itunes_category" else attrs.get("label"))
            self.push("category", True)
            return key != "itunes_category"
        elif key in ("itunes_keywords", "media_keywords"):
            if attrs:
                raise _Decline(f"{key} with attributes")
            self.push(key, True)
            return True
        elif key in _LANGUAGE:
            self.push("language", True)
            return True
        elif key in _OTHER_CONTENT:
            self.push_content(_OTHER_CONTENT[key], attrs, "text/plain")
            return True
        elif key in _STORE_ONLY:
            return self.start_store_only(key, attrs)
        else:
            return None
        return False

    def start_other(self, key: str, attrs: dict[str, str], element: Any, *, declares: bool) -> bool:
        """An element not replayed: declined when feedparser has a handler, else stored."""
        if key in self.rules.handlers or key in _READ_KEYS:
            raise _Decline(f"element {key}")
        if attrs or declares:
            # Stored as its attributes (namespace declarations count); any text
            # it holds would go to the element open around it.
            if (element.text or "").strip() or len(element):
                raise _Decline("unknown element with attributes and content")
            self.context()[key] = attrs
        else:
            self.push(key, True)
        return False

    def start_link(self, attrs: dict[str, str]) -> bool:
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = href
        if "href" in attrs:
            attrs["href"] = _resolve(self.base, attrs["href"])  # an empty one: the base
        context = self.context()
        links = context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            links.append({k: v for k, v in attrs.items() if k not in ("xml:lang", "lang")} | {})
        if "href" in attrs:
            kind = attrs.get("type", "")
            kind = _LINK_TYPES.get(kind, kind)
            if attrs.get("rel") == "alternate" and kind in _HTML_TYPES:
                context["link"] = attrs["href"]
        else:
            self.push("link", bool(self.infeed or self.inentry))
        return True

    def start_content(self, attrs: Mapping[str, str], default: str) -> None:
        self.has_content = True
        self.push_content("content", attrs, default)

    def start_store_only(self, key: str, attrs: dict[str, str]) -> bool:
        if key == "enclosure":
            href = attrs.get("url", attrs.get("uri", attrs.get("href")))
            if href:
                attrs.pop("url", None)
                attrs.pop("uri", None)
                attrs["href"] = href
            self.context().setdefault("links", []).append({**attrs, "rel": "enclosure"})
            return True
        if key in ("media_group", "media_content"):
            return False  # containers of media elements, nothing pushed
        if key == "media_thumbnail":
            self.push("url", True)
            return True
        if key == "cloud":
            return True  # feedparser stores its attributes
        self.push(_STORED_AS.get(key, key), True)
        return True

    def date_key(self, key: str) -> str:
        if key in _PUBLISHED:
            return "published"
        return "updated" if key in _UPDATED else "created"
