"""feedparser's end handlers (``_end_<key>``), replayed for the fast path.

The same four groups as the start handlers (:mod:`aggregator.parse.faststart`):
frames, text, people and terms. Each pops what its start pushed and stores
the value where feedparser stores it.
"""

from __future__ import annotations

from aggregator.parse.fastnames import (
    _AUTHOR,
    _CATEGORY,
    _CREATED,
    _DESCRIPTION,
    _HTML_TYPES,
    _LANGUAGE,
    _OTHER_CONTENT,
    _PUBLISHED,
    _PUBLISHER,
    _STORE_ONLY,
    _STORED_AS,
    _SUMMARY,
    _TEXT_TYPES,
    _TITLE,
    _UPDATED,
)
from aggregator.parse.faststart import _Starts


class _Ends(_Starts):
    """The end handlers, by group; each False when ``key`` is not of its group."""

    def _end_frame(self, key: str) -> bool:
        """The feed, its entries, images and text inputs. False when ``key`` is not one of these."""
        if key in ("channel", "feed"):
            self.infeed = False
        elif key in ("item", "entry"):
            self.pop("item")
            self.inentry = False
            self.has_content = False
        elif key in ("image", "textinput"):
            self.pop(key)
            if key == "image":
                self.inimage = False
            else:
                self.intextinput = False
        else:
            return False
        return True

    def _end_text(self, key: str) -> bool:
        """Titles, links, ids, summaries and contents. False when ``key`` is not one of these."""
        if key in _TITLE:
            title_depth = self.title_depth
            value = self.pop_content("title")
            if value:
                self.title_depth = self.depth
            if key == "media_title":
                self.title_depth = title_depth
        elif key == "link":
            self.pop("link")
        elif key in ("guid", "id"):
            value = self.pop("id")
            self.save("guidislink", self.guidislink and "link" not in self.context())
            if self.guidislink:
                self.save("link", value)
        elif key in _DESCRIPTION:
            if self.summary_key == "content":
                self.end_content()
            else:
                self.pop_content("description")
            self.summary_key = None
        elif key in _SUMMARY:
            if self.summary_key == "content":
                self.end_content()
            else:
                self.pop_content(self.summary_key or "summary")
            self.summary_key = None
        elif key in ("content", "content_encoded", "fullitem"):
            self.end_content()
        else:
            return False
        return True

    def _end_people(self, key: str) -> bool:
        """Sources, contributors, dates, authors, publishers; False for any other key."""
        if key == "source":
            self.insource = False
            value = self.pop("source")
            if value:
                self.source["title"] = value
            self.context()["source"] = dict(self.source)
            self.source = {}
        elif key == "contributor":
            self.pop("contributor")
            self.incontributor = False
        elif key == "dc_contributor":
            self.pop("name")  # feedparser's contributor name: never read
            self.incontributor = False
        elif key in _PUBLISHED or key in _UPDATED or key in _CREATED:
            name = self.date_key(key)
            # The document's string: parse.feeds reads it with feedparser's date reader.
            self.save(f"{name}_raw", self.pop(name), overwrite=True)
        elif key in _AUTHOR:
            self.pop("author")
            self.inauthor = False
            self.sync_author()
        elif key in _PUBLISHER:
            self.pop("publisher")
            self.sync_author("publisher")
        elif key in ("name", "email", "itunes_name", "itunes_email"):
            name = key.removeprefix("itunes_")
            value = self.pop(name)
            if self.inpublisher:
                self.save_author(name, value, "publisher")
            elif self.inauthor:
                self.save_author(name, value)
            elif self.incontributor:
                self.context().setdefault("contributors", [{}])[-1][name] = value
            elif self.intextinput and name == "name":
                self.context()["name"] = value
        elif key in ("uri", "url", "homepage"):
            value = self.pop("href")
            if self.inauthor:
                self.save_author("href", value)
            elif self.incontributor:
                self.context().setdefault("contributors", [{}])[-1]["href"] = value
        elif key == "itunes_owner":
            self.pop("publisher")
            self.inpublisher = False
            self.sync_author("publisher")
        else:
            return False
        return True

    def _end_terms(self, key: str) -> bool:
        """Categories, keywords, languages, other and stored-only elements; False otherwise."""
        if key in _CATEGORY:
            self.end_category()
        elif key in ("itunes_keywords", "media_keywords"):
            value = self.pop(key) or ""
            scheme = "http://www.itunes.com/" if key == "itunes_keywords" else None
            for term in value.split(","):
                if term.strip():
                    self.add_tag(term.strip(), scheme, None)
        elif key in _LANGUAGE:
            self.lang = self.pop("language")
        elif key in _OTHER_CONTENT:
            self.pop_content(_OTHER_CONTENT[key])
        elif key == "media_thumbnail":
            self.pop("url")
        elif key in _STORE_ONLY:
            if key not in ("enclosure", "media_group", "media_content", "cloud"):
                self.pop(_STORED_AS.get(key, key))
        else:
            return False
        return True

    def end_content(self) -> None:
        copy_to_summary = self.params.get("type") in _TEXT_TYPES | _HTML_TYPES
        value = self.pop_content("content")
        if copy_to_summary:
            self.save("summary", value)

    def end_category(self) -> None:
        value = self.pop("category")
        if not value:
            return
        tags = self.context()["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self.add_tag(value, None, None)
