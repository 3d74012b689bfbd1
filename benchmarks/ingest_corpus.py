"""A seeded corpus of feeds for the ingest benchmark (``bench_ingest.py``).

``generate(folder, feeds=1000, seed=1)`` writes one file per feed and a
``manifest.json`` the loopback server (``ingest_server.py``) reads. The same
seed gives the same feeds (dates are relative to the day of generation, so
retention never prunes them).

What it aims to look like, per feed:

* format: RSS 2.0 (55 %), Atom (35 %), JSON Feed (10 %);
* entries: log-normal count, mean about 58, from 1 to 300;
* content: summary-only feeds (a paragraph or two), full-article feeds
  (paragraphs, links, images, figures, lists, block quotes, some tables and
  the odd ``<script>``/``style=`` a sanitiser must remove), a few long-read
  feeds (20-40 KB articles) and a few feeds with deep nesting (threaded
  comments quoted 40-150 levels deep);
* behaviour on the server: mostly plain (ETag and/or Last-Modified, 304 on a
  match, gzip when asked), some slow (0.3-2.5 s before answering), some
  failing (404, 500, or no answer until the client's timeout).

Links and images point at ``.example``/``.test`` hosts, which never resolve.
"""

from __future__ import annotations

import html
import json
import math
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

#: topic words (so the benchmark's topics match something) among ordinary news words
_TEXT = (
    "the of and to in a for on that with as at by from said was were has have will would "
    "government minister talks border ceasefire election parliament court ruling budget "
    "market prices inflation energy climate emissions drought glacier renewable solar wind "
    "technology software open source startup semiconductor chips model data privacy "
    "Armenia Azerbaijan Georgia Caucasus Iran Tehran diplomacy sanctions agreement "
    "football match season league coach injury transfer final "
    "city council housing schools hospital doctors nurses strike workers union wages "
    "report study researchers university science space mission satellite launch "
    "river flood storm heat record summer winter farmers harvest water supply "
    "police investigation suspect arrested trial judge prison appeal lawyer "
    "company profits shares investors bank rates loans growth exports imports trade "
    "president prime opposition protest rally vote campaign coalition reform law "
    "museum festival film music book author artist exhibition theatre concert "
    "on Tuesday Monday Wednesday Thursday Friday weekend morning evening officials "
    "spokesperson statement interview according sources confirmed denied expected "
    "million billion percent year years month week day people country region capital"
)
WORDS = tuple(_TEXT.split())

RSS_SHARE, ATOM_SHARE = 0.55, 0.35  # the rest is JSON Feed
SLOW_SHARE, E404_SHARE, E500_SHARE, HANG_SHARE = 0.03, 0.02, 0.02, 0.01


@dataclass(frozen=True, slots=True)
class FeedFile:
    """One feed of the corpus, as the server and the benchmark see it."""

    #: URL path on the server
    path: str
    #: file name in the corpus folder
    file: str
    content_type: str
    #: "ok", "slow", "404", "500" or "hang"
    behaviour: str
    #: seconds before a slow feed answers
    delay: float
    etag: str | None
    last_modified: str | None
    gzip: bool
    entries: int
    format: str
    size: int


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _sentence(rng: random.Random) -> str:
    text = _words(rng, 8, 24)
    return text[0].upper() + text[1:] + "."


def _inline(rng: random.Random, feed: int) -> str:
    """A paragraph's inner HTML: sentences with links, emphasis and the odd entity."""
    parts = []
    for _ in range(rng.randint(1, 5)):
        sentence = html.escape(_sentence(rng), quote=False)
        roll = rng.random()
        if roll < 0.25:
            words = sentence.split(" ")
            cut = rng.randint(1, max(1, len(words) - 1))
            href = (
                f"https://news{rng.randint(1, 400)}.example/{rng.randint(2019, 2026)}/"
                f"{'-'.join(rng.choices(WORDS, k=3)).lower()}"
                if rng.random() < 0.8
                else f"/archive/{feed}/{rng.randint(1, 9999)}.html"  # relative: resolved
            )
            sentence = (
                " ".join(words[:cut])
                + f' <a href="{html.escape(href)}">{" ".join(words[cut : cut + 3])}</a> '
                + " ".join(words[cut + 3 :])
            )
        elif roll < 0.35:
            sentence = f"<em>{sentence}</em>"
        elif roll < 0.42:
            sentence = f"<strong>{sentence}</strong> &mdash; &#8220;quoted&#8221; &amp; more"
        parts.append(sentence)
    return " ".join(parts)


def _image(rng: random.Random) -> str:
    n = rng.randint(1, 10**6)
    img = (
        f'<img src="https://cdn{n % 7}.example/img/{n}.jpg" alt="{_words(rng, 2, 6)}" '
        f'width="{rng.choice((640, 800, 1200))}" height="{rng.choice((360, 450, 675))}"'
        + (' loading="lazy"' if rng.random() < 0.5 else "")
        + ">"
    )
    if rng.random() < 0.5:
        return f"<figure>{img}<figcaption>{_sentence(rng)}</figcaption></figure>"
    return f"<p>{img}</p>"


def _block(rng: random.Random, feed: int, depth: int = 0) -> str:
    roll = rng.random()
    if roll < 0.62 or depth > 2:
        return f"<p>{_inline(rng, feed)}</p>"
    if roll < 0.72:
        return _image(rng)
    if roll < 0.80:
        items = "".join(
            f"<li>{_inline(rng, feed)}"
            + (f"<ul><li>{_sentence(rng)}</li></ul>" if rng.random() < 0.3 else "")
            + "</li>"
            for _ in range(rng.randint(2, 5))
        )
        tag = rng.choice(("ul", "ol"))
        return f"<{tag}>{items}</{tag}>"
    if roll < 0.87:
        inner = "".join(_block(rng, feed, depth + 1) for _ in range(rng.randint(1, 3)))
        return f'<blockquote class="quote">{inner}</blockquote>'
    if roll < 0.92:
        inner = "".join(_block(rng, feed, depth + 1) for _ in range(rng.randint(2, 4)))
        return (
            f'<div class="section" style="margin:0 1em"><h2>{_words(rng, 3, 7)}</h2>{inner}</div>'
        )
    if roll < 0.95:
        rows = "".join(
            "<tr>" + "".join(f"<td>{_words(rng, 1, 3)}</td>" for _ in range(4)) + "</tr>"
            for _ in range(rng.randint(2, 8))
        )
        head = "<thead><tr><th>a</th><th>b</th><th>c</th><th>d</th></tr></thead>"
        return f"<table>{head}<tbody>{rows}</tbody></table>"
    if roll < 0.97:
        return (
            f"<p>{_inline(rng, feed)}</p><script>track({rng.randint(1, 99)})</script>"
            f'<p onclick="x()">{_sentence(rng)}</p>'
        )
    return f'<iframe src="https://video.example/embed/{rng.randint(1, 9999)}"></iframe>'


def _thread(rng: random.Random, depth: int) -> str:
    """A comment thread quoted ``depth`` levels deep (what makes sanitisers slow)."""
    opening = "".join(f"<blockquote><p>{_words(rng, 4, 12)}</p>" for _ in range(depth))
    return opening + "</blockquote>" * depth


def _content(rng: random.Random, feed: int, style: str) -> str:
    if style == "summary":
        return "".join(f"<p>{_inline(rng, feed)}</p>" for _ in range(rng.randint(1, 2)))
    blocks = rng.randint(2, 8) if style != "long" else rng.randint(20, 40)
    body = "".join(_block(rng, feed) for _ in range(blocks))
    if style == "deep" and rng.random() < 0.3:
        body += _thread(rng, rng.randint(40, 150))
    return body


def _xml(text: str) -> str:
    return html.escape(text, quote=False)


def _rss(title: str, link: str, entries: list[dict[str, object]], full: bool) -> str:
    items = []
    for e in entries:
        parts = [
            f"<title>{_xml(str(e['title']))}</title>",
            f"<link>{_xml(str(e['link']))}</link>",
            f'<guid isPermaLink="false">{_xml(str(e["id"]))}</guid>',
            f"<pubDate>{format_datetime(e['published'])}</pubDate>",  # type: ignore[arg-type]
            f"<dc:creator>{_xml(str(e['author']))}</dc:creator>",
        ]
        parts += [f"<category>{_xml(str(t))}</category>" for t in e["tags"]]  # type: ignore[attr-defined]
        if full:
            parts.append(f"<description>{_xml(str(e['summary']))}</description>")
            parts.append(f"<content:encoded><![CDATA[{e['content']}]]></content:encoded>")
        else:
            parts.append(f"<description>{_xml(str(e['content']))}</description>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{_xml(title)}</title><link>{_xml(link)}</link>"
        f"<description>{_xml(title)} news</description><language>en</language>"
        + "".join(items)
        + "</channel></rss>\n"
    )


def _atom(title: str, link: str, feed_id: str, entries: list[dict[str, object]]) -> str:
    out = []
    for e in entries:
        out.append(
            "<entry>"
            f"<title>{_xml(str(e['title']))}</title>"
            f'<link rel="alternate" href="{html.escape(str(e["link"]))}"/>'
            f"<id>{_xml(str(e['id']))}</id>"
            f"<published>{e['published'].isoformat()}</published>"  # type: ignore[attr-defined]
            f"<updated>{e['updated'].isoformat()}</updated>"  # type: ignore[attr-defined]
            f"<author><name>{_xml(str(e['author']))}</name></author>"
            + "".join(f'<category term="{html.escape(str(t))}"/>' for t in e["tags"])  # type: ignore[attr-defined]
            + f'<summary type="html">{_xml(str(e["summary"]))}</summary>'
            f'<content type="html">{_xml(str(e["content"]))}</content>'
            "</entry>"
        )
    updated = max(e["updated"] for e in entries).isoformat()  # type: ignore[type-var]
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>{_xml(title)}</title><link rel="alternate" href="{html.escape(link)}"/>'
        f"<id>{_xml(feed_id)}</id><updated>{updated}</updated>" + "".join(out) + "</feed>\n"
    )


def _jsonfeed(title: str, link: str, url: str, entries: list[dict[str, object]]) -> str:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": link,
        "feed_url": url,
        "items": [
            {
                "id": e["id"],
                "url": e["link"],
                "title": e["title"],
                "content_html": e["content"],
                "summary": e["summary"],
                "date_published": e["published"].isoformat(),  # type: ignore[attr-defined]
                "date_modified": e["updated"].isoformat(),  # type: ignore[attr-defined]
                "authors": [{"name": e["author"]}],
                "tags": e["tags"],
            }
            for e in entries
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _entry_count(rng: random.Random) -> int:
    # log-normal with sigma 0.7: exp(mu + sigma^2 / 2) = 58 before clipping
    return max(1, min(300, round(rng.lognormvariate(math.log(58) - 0.245, 0.7))))


def _behaviour(rng: random.Random) -> tuple[str, float]:
    roll = rng.random()
    if roll < SLOW_SHARE:
        return "slow", round(rng.uniform(0.3, 2.5), 2)
    roll -= SLOW_SHARE
    if roll < E404_SHARE:
        return "404", 0.0
    roll -= E404_SHARE
    if roll < E500_SHARE:
        return "500", 0.0
    roll -= E500_SHARE
    if roll < HANG_SHARE:
        return "hang", 0.0
    return "ok", 0.0


def generate(folder: Path, feeds: int = 1000, seed: int = 1) -> list[FeedFile]:
    """Write ``feeds`` feed files and ``manifest.json`` into ``folder``.

    Args:
        folder: where to write (created if missing).
        feeds: how many feeds.
        seed: the random seed; the same seed gives the same corpus on the same day.

    Returns:
        One ``FeedFile`` per feed, in order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    manifest = []
    for i in range(feeds):
        rng = random.Random(f"{seed}:{i}")
        roll = rng.random()
        fmt = "rss" if roll < RSS_SHARE else "atom" if roll < RSS_SHARE + ATOM_SHARE else "json"
        style = rng.choices(("summary", "full", "long", "deep"), weights=(55, 38, 4, 3))[0]
        behaviour, delay = _behaviour(rng)
        # long reads come a few at a time
        n = _entry_count(rng) if style != "long" else rng.randint(5, 25)
        site = f"https://site{i}.example/"
        title = f"{_words(rng, 1, 3).title()} Daily {i}"
        ids = rng.choice(("tag", "url", "urn"))
        entries: list[dict[str, object]] = []
        when = today - timedelta(minutes=rng.randint(0, 600))
        for j in range(n):
            slug = "-".join(rng.choices(WORDS, k=4)).lower()
            link = f"{site}{when:%Y/%m}/{slug}-{j}"
            content = _content(rng, i, style)
            summary = (
                f"<p>{_inline(rng, i)}</p>" if style != "summary" else content.split("</p>")[0]
            )
            entries.append(
                {
                    "id": {"tag": f"tag:site{i}.example,2026:{j}", "url": link}.get(
                        ids, f"urn:uuid:{rng.getrandbits(128):032x}"
                    ),
                    "title": _sentence(rng)[:120].rstrip(),
                    "link": link,
                    "content": content,
                    "summary": summary,
                    "published": when,
                    "updated": when + timedelta(minutes=rng.choice((0, 0, 0, 5, 90))),
                    "author": f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}",
                    "tags": sorted(set(rng.choices(WORDS[40:120], k=rng.randint(0, 4)))),
                }
            )
            when -= timedelta(minutes=rng.randint(5, 1440))
        path = rng.choice(("/feeds/{i}/rss.xml", "/{i}/feed", "/blog/{i}/index.xml")).format(i=i)
        if fmt == "rss":
            text, ctype = _rss(title, site, entries, full=style != "summary"), "application/rss+xml"
        elif fmt == "atom":
            text, ctype = _atom(title, site, f"urn:feed:{i}", entries), "application/atom+xml"
        else:
            path = f"/{i}/feed.json"
            text, ctype = _jsonfeed(title, site, path, entries), "application/feed+json"
        body = text.encode("utf-8")
        file = f"{i:06d}.{ {'rss': 'rss', 'atom': 'atom', 'json': 'json'}[fmt] }"
        (folder / file).write_bytes(body)
        validators = rng.choices(("both", "etag", "modified"), weights=(70, 20, 10))[0]
        manifest.append(
            FeedFile(
                path=path,
                file=file,
                content_type=ctype + "; charset=utf-8",
                behaviour=behaviour,
                delay=delay,
                etag=f'"{rng.getrandbits(64):016x}"' if validators != "modified" else None,
                last_modified=(
                    format_datetime(today - timedelta(hours=rng.randint(1, 48)), usegmt=True)
                    if validators != "etag"
                    else None
                ),
                gzip=rng.random() < 0.8,
                entries=n,
                format=fmt,
                size=len(body),
            )
        )
    (folder / "manifest.json").write_text(
        json.dumps([asdict(f) for f in manifest], indent=0), encoding="utf-8"
    )
    return manifest


def load(folder: Path) -> list[FeedFile]:
    """Read back what ``generate`` wrote into ``folder``."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [FeedFile(**row) for row in rows]
