"""The fast feed path on real-shaped feeds: how many it takes, and how much faster it is.

Run: ``.venv/bin/python benchmarks/bench_fastpath.py [--feeds 400] [--seed 1] [--write DIR]``.

The corpus is built here, seeded, in the shapes real feeds have (each feed
20-40 entries): WordPress RSS 2.0 (``content:encoded``, ``dc:creator``,
``slash``/``wfw``/``sy``); news RSS 2.0 in the encodings sites still publish
in, declared in the XML declaration, the HTTP charset or both (windows-1251,
KOI8-R, ISO-8859-1/-15, windows-1252, EUC-JP, Shift_JIS, GB2312, Big5,
UTF-16 with a BOM); RSS 1.0/RDF with Dublin Core (``dc:date``,
``dc:subject``); podcasts (iTunes tags, enclosures); Media RSS (thumbnails,
``media:content``, ``media:group``); Atom 1.0 with ``xml:lang``; RSS 0.91
with the Netscape DOCTYPE; and a share that use HTML entities (``&nbsp;``)
without a DTD, which feedparser reads with its lenient parser and the fast
path declines, as real feeds do. ``--write DIR`` also writes the documents
(``NNNN.xml`` and ``NNNN.headers.json``).

It prints the acceptance rate with the decline reasons, then the time of a
first pass over the corpus through ``engine.work.read_feed`` (parse and
normalise: what the engine runs per fetched feed) with the fast path and with
feedparser only, and through the parse alone (``parse.parse_feed``), over all
the feeds and over those the fast path takes; alternated, best of ``--repeat``
in the same run, in wall time and in this process's CPU time (the machine may
be busy: compare the ratios).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aggregator.engine.work import read_feed
from aggregator.model import SourceKind, SourceSpec
from aggregator.parse import feeds, parse_feed
from aggregator.parse.fastfeed import Declined

NOW = datetime(2026, 12, 1, tzinfo=UTC)
URL = "https://news.example/feed"

#: (language, encoding, words): text that the encoding can carry
_LANGUAGES = [
    ("ru", "windows-1251", "Москва правительство переговоры граница выборы суд бюджет новости"),
    ("ru", "koi8-r", "Министр заявил сегодня что Армения Азербайджан мирный договор"),
    ("fr", "iso-8859-1", "Le gouvernement a annoncé été élections réforme économie café"),
    ("de", "iso-8859-15", "Die Regierung kündigte Wahlen Grenze Gespräche Straße Größe"),
    ("en", "windows-1252", "The minister said talks on the border resumed on Tuesday"),
    ("ja", "euc-jp", "政府は 本日 選挙 国境 交渉 経済 ニュース 東京"),
    ("ja", "shift_jis", "首相 会見 予算 国会 地震 天気 ニュース 大阪"),
    ("zh", "gb2312", "政府 今天 宣布 选举 经济 新闻 北京 会谈"),
    ("zh-TW", "big5", "政府 今天 宣布 選舉 經濟 新聞 台北 會談"),
    ("en", "utf-8", "The council approved the budget after a long debate on housing"),
    ("fa", "utf-8", "قره‌باغ کوهستانی مذاکرات صلح تهران ایران خبر"),
]


def _words(rng: random.Random, words: str, n: int) -> str:
    pool = words.split()
    return " ".join(rng.choice(pool) for _ in range(n))


def _date(rng: random.Random, n: int) -> datetime:
    return NOW - timedelta(hours=n * 3 + rng.randint(0, 2))


def _wordpress(rng: random.Random, words: str, entries: int) -> str:
    items = []
    for n in range(entries):
        body = f"<p>{_words(rng, words, 40)} <a href='/post/{n}'>more</a></p>"
        items.append(
            f"<item><title>{_words(rng, words, 6)}</title>"
            f"<link>https://blog.example/{n}/</link><comments>https://blog.example/{n}/#c</comments>"
            f"<dc:creator><![CDATA[Author {n % 4}]]></dc:creator>"
            f"<pubDate>{format_datetime(_date(rng, n))}</pubDate>"
            f"<category><![CDATA[News]]></category><category>Tag {n % 5}</category>"
            f'<guid isPermaLink="false">https://blog.example/?p={n}</guid>'
            f"<description><![CDATA[{_words(rng, words, 20)} [&#8230;]]]></description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded>"
            f"<wfw:commentRss>https://blog.example/{n}/feed/</wfw:commentRss>"
            f"<slash:comments>{n % 7}</slash:comments></item>"
        )
    return (
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
        'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>'
        f"<title>{_words(rng, words, 3)}</title>"
        '<atom:link href="https://blog.example/feed/" rel="self" type="application/rss+xml"/>'
        "<link>https://blog.example/</link><description>Blog</description>"
        f"<lastBuildDate>{format_datetime(NOW)}</lastBuildDate><language>en-US</language>"
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency>"
        f"<generator>https://wordpress.org/?v=6.4</generator>{''.join(items)}</channel></rss>"
    )


def _news(rng: random.Random, words: str, entries: int, language: str) -> str:
    items = "".join(
        f"<item><title>{_words(rng, words, 7)}</title><link>https://news.example/a/{n}</link>"
        f"<description>&lt;p&gt;{_words(rng, words, 30)}&lt;/p&gt;</description>"
        f"<author>desk@news.example (Desk {n % 3})</author>"
        f"<pubDate>{format_datetime(_date(rng, n))}</pubDate>"
        f"<guid>https://news.example/a/{n}</guid>"
        f'<enclosure url="https://img.news.example/{n}.jpg" type="image/jpeg" length="1"/></item>'
        for n in range(entries)
    )
    return (
        f'<rss version="2.0"><channel><title>{_words(rng, words, 2)}</title>'
        f"<link>https://news.example/</link><description>{_words(rng, words, 5)}</description>"
        f"<language>{language}</language><ttl>15</ttl>"
        f"<image><url>https://news.example/logo.png</url><title>Logo</title>"
        f"<link>https://news.example/</link></image>{items}</channel></rss>"
    )


def _rdf(rng: random.Random, words: str, entries: int, language: str) -> str:
    items = "".join(
        f'<item rdf:about="https://diary.example/{n}"><title>{_words(rng, words, 5)}</title>'
        f"<link>https://diary.example/{n}</link>"
        f"<description>{_words(rng, words, 25)}</description>"
        f"<dc:creator>diarist</dc:creator><dc:subject>{_words(rng, words, 1)}</dc:subject>"
        f"<dc:date>{_date(rng, n).isoformat()}</dc:date>"
        f"<content:encoded><![CDATA[<p>{_words(rng, words, 40)}</p>]]></content:encoded></item>"
        for n in range(entries)
    )
    seq = "".join(f'<rdf:li rdf:resource="https://diary.example/{n}"/>' for n in range(entries))
    return (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        f'xml:lang="{language}"><channel rdf:about="https://diary.example/">'
        f"<title>{_words(rng, words, 2)}</title><link>https://diary.example/</link>"
        f"<description>diary</description><dc:language>{language}</dc:language>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>{items}</rdf:RDF>"
    )


def _podcast(rng: random.Random, words: str, entries: int) -> str:
    items = "".join(
        f"<item><title>Episode {n}: {_words(rng, words, 4)}</title>"
        f"<itunes:author>The Hosts</itunes:author><itunes:subtitle>{_words(rng, words, 6)}"
        f"</itunes:subtitle><itunes:summary>{_words(rng, words, 30)}</itunes:summary>"
        f"<description>{_words(rng, words, 30)}</description>"
        f'<enclosure url="https://cdn.pod.example/{n}.mp3" length="1000" type="audio/mpeg"/>'
        f'<guid isPermaLink="false">pod-{n}</guid>'
        f"<pubDate>{format_datetime(_date(rng, n))}</pubDate>"
        f"<itunes:duration>00:{n % 60:02d}:00</itunes:duration>"
        f'<itunes:image href="https://pod.example/{n}.jpg"/><itunes:explicit>no</itunes:explicit>'
        f"<itunes:keywords>news, politics</itunes:keywords></item>"
        for n in range(entries)
    )
    return (
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>{_words(rng, words, 3)}</title><link>https://pod.example/</link>"
        "<language>en-us</language><itunes:author>The Hosts</itunes:author>"
        "<itunes:owner><itunes:name>Hosts</itunes:name><itunes:email>h@pod.example"
        "</itunes:email></itunes:owner><itunes:image href='https://pod.example/c.jpg'/>"
        '<itunes:category text="News"><itunes:category text="Politics"/></itunes:category>'
        f"<description>{_words(rng, words, 10)}</description>{items}</channel></rss>"
    )


def _media(rng: random.Random, words: str, entries: int) -> str:
    items = "".join(
        f"<item><title>{_words(rng, words, 6)}</title><link>https://photo.example/{n}</link>"
        f"<guid>https://photo.example/{n}</guid>"
        f"<pubDate>{format_datetime(_date(rng, n))}</pubDate>"
        f"<description>{_words(rng, words, 20)}</description>"
        f'<media:thumbnail url="https://photo.example/{n}_t.jpg" width="150" height="100"/>'
        f'<media:group><media:content url="https://photo.example/{n}.jpg" medium="image"/>'
        f"<media:title>{_words(rng, words, 3)}</media:title>"
        f"<media:description>{_words(rng, words, 10)}</media:description>"
        f"<media:credit role='photographer'>Photo Desk</media:credit></media:group></item>"
        for n in range(entries)
    )
    return (
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        f"<title>{_words(rng, words, 2)}</title><link>https://photo.example/</link>"
        f"<description>photos</description>{items}</channel></rss>"
    )


def _atom(rng: random.Random, words: str, entries: int, language: str) -> str:
    items = "".join(
        f"<entry><title type='html'>{_words(rng, words, 6)}</title>"
        f"<link rel='alternate' type='text/html' href='https://site.example/{n}.html'/>"
        f"<id>tag:site.example,2026:post-{n}</id><published>{_date(rng, n).isoformat()}"
        f"</published><updated>{_date(rng, n).isoformat()}</updated>"
        f"<author><name>Writer {n % 3}</name><email>w@site.example</email></author>"
        f"<category scheme='https://site.example/' term='{_words(rng, words, 1)}'/>"
        f"<content type='html'>&lt;p&gt;{_words(rng, words, 50)}&lt;/p&gt;</content></entry>"
        for n in range(entries)
    )
    return (
        f"<feed xmlns='http://www.w3.org/2005/Atom' xml:lang='{language}'>"
        f"<id>tag:site.example,2026:feed</id><title>{_words(rng, words, 2)}</title>"
        f"<updated>{NOW.isoformat()}</updated><link href='https://site.example/'/>"
        f"<link rel='self' href='https://site.example/feed.atom'/>{items}</feed>"
    )


def _netscape(rng: random.Random, words: str, entries: int, entities: bool) -> str:
    nbsp = "&nbsp;" if entities else " "
    items = "".join(
        f"<item><title>{_words(rng, words, 5)}</title><link>https://old.example/{n}</link>"
        f"<description>{_words(rng, words, 15)}{nbsp}{_words(rng, words, 5)}</description></item>"
        for n in range(entries)
    )
    return (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        f'<rss version="0.91"><channel><title>{_words(rng, words, 2)}</title>'
        f"<link>https://old.example/</link><description>old</description>"
        f"<language>en</language>{items}</channel></rss>"
    )


def corpus(count: int, seed: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """``count`` real-shaped feeds: (shape, bytes as served, response headers)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        language, encoding, words = rng.choice(_LANGUAGES)
        entries = rng.randint(20, 40)
        shape = rng.choice(
            ["wordpress", "news", "news", "rdf", "podcast", "media", "atom", "netscape", "entities"]
        )
        if shape == "wordpress":
            body = _wordpress(rng, words, entries)
        elif shape == "news":
            body = _news(rng, words, entries, language)
        elif shape == "rdf":
            body = _rdf(rng, words, entries, language)
        elif shape == "podcast":
            body = _podcast(rng, words, entries)
        elif shape == "media":
            body = _media(rng, words, entries)
        elif shape == "atom":
            body = _atom(rng, words, entries, language)
        else:
            body = _netscape(rng, words, entries, entities=shape == "entities")
        if shape == "news" and rng.random() < 0.1:
            encoding = "utf-16"
        where = rng.choice(["declaration", "declaration", "charset", "both"])
        declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n'
        if where == "charset":
            declaration = '<?xml version="1.0"?>\n'
        data = (declaration + body).encode(encoding, errors="xmlcharrefreplace")
        media = "application/atom+xml" if shape == "atom" else "application/rss+xml"
        if where in ("charset", "both"):
            media += f"; charset={encoding}"
        out.append((f"{shape}/{encoding}", data, {"Content-Type": media}))
    return out


def _time(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (the CPU time of this process: on a machine
    others share, the wall time also counts the time they hold the core)."""
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    parser.add_argument("--write", type=Path, help="also write the documents to this folder")
    args = parser.parse_args()
    docs = corpus(args.feeds, args.seed)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for n, (_, data, headers) in enumerate(docs):
            (args.write / f"{n:04d}.xml").write_bytes(data)
            (args.write / f"{n:04d}.headers.json").write_text(json.dumps(headers))

    reasons: collections.Counter[str] = collections.Counter()
    taken_by_shape: collections.Counter[str] = collections.Counter()
    shapes: collections.Counter[str] = collections.Counter()
    for shape, data, headers in docs:
        kind = shape.split("/")[0]
        shapes[kind] += 1
        plain = feeds.read_fast(data, url=URL, headers=headers)
        if isinstance(plain, Declined):
            reasons[plain.reason] += 1
        else:
            taken_by_shape[kind] += 1
    taken = sum(taken_by_shape.values())
    entries = sum(len(parse_feed(d, url=URL, headers=h, source="b").entries) for _, d, h in docs)
    print(f"{len(docs)} feeds, {entries} entries, {len(_LANGUAGES)} languages/encodings")
    print(f"fast path took {taken} of {len(docs)} ({taken / len(docs):.0%})")
    for kind in sorted(shapes):
        print(f"  {kind:10s} {taken_by_shape[kind]:4d} of {shapes[kind]:4d}")
    for reason, n in reasons.most_common():
        print(f"  declined: {reason}: {n}")

    taken_docs = [
        (shape, data, headers)
        for shape, data, headers in docs
        if not isinstance(feeds.read_fast(data, url=URL, headers=headers), Declined)
    ]
    spec = SourceSpec(
        name="b",
        kind=SourceKind.URL,
        location=URL,
        interval=timedelta(minutes=30),
        timeout=timedelta(seconds=20),
        max_bytes=10 << 20,
    )

    def engine(fast: bool, docs: list[tuple[str, bytes, dict[str, str]]]) -> Callable[[], object]:
        return lambda: [
            read_feed(d, spec=spec, url=URL, headers=h, now=NOW, fast=fast) for _, d, h in docs
        ]

    def parse(fast: bool, docs: list[tuple[str, bytes, dict[str, str]]]) -> Callable[[], object]:
        return lambda: [
            parse_feed(d, url=URL, headers=h, source="b", fast=fast) for _, d, h in docs
        ]

    runs = {
        "all feeds, read_feed": (engine, docs),
        "all feeds, parse": (parse, docs),
        "feeds it takes, read_feed": (engine, taken_docs),
        "feeds it takes, parse": (parse, taken_docs),
    }
    best: dict[tuple[str, bool, int], float] = collections.defaultdict(lambda: float("inf"))
    for _ in range(args.repeat):  # alternated, best of N: the machine is shared
        for name, (stage, subset) in runs.items():
            for fast in (True, False):
                for clock, seconds in enumerate(_time(stage(fast, subset))):
                    best[name, fast, clock] = min(best[name, fast, clock], seconds)
    for name, (_, subset) in runs.items():
        for clock, label in enumerate(("wall", "CPU")):
            quick, slow = best[name, True, clock], best[name, False, clock]
            print(
                f"{name} ({len(subset)}), {label}: fast path {quick:.2f} s, feedparser only "
                f"{slow:.2f} s ({quick / len(subset) * 1000:.1f} vs "
                f"{slow / len(subset) * 1000:.1f} ms per feed): {slow / quick:.2f}x"
            )


if __name__ == "__main__":
    main()
