"""Write the labelled near-duplicate set's feeds, seed files and labels from corpus.yaml.

Run ``python tests/data/stories/build.py`` after editing ``corpus.yaml``;
``tests/test_story_set.py`` fails while the written files disagree with it.
The corpus holds the prose; this script only dresses each version the way its
outlet publishes (Atom, RSS, JSON Feed, a pasted seed file) and adds the
boilerplate a version's variation names.
"""

from __future__ import annotations

import hashlib
import html
import json
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import yaml

HERE = Path(__file__).resolve().parent


def _date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _paragraphs(body: str) -> list[str]:
    return [" ".join(p.split()) for p in body.strip().split("\n\n") if p.strip()]


def _seed_name(story: str, number: str) -> str:
    digest = hashlib.sha256(f"{story}/{number}".encode()).hexdigest()[:16]
    return f"{number}_{digest}.txt"


def _version_text(v: dict[str, Any], story: dict[str, Any]) -> list[str]:
    paras = _paragraphs(v.get("body") or story["body"])
    if v.get("truncate"):
        paras = paras[: int(v["truncate"])]
    return paras


def _content_html(v: dict[str, Any], paras: list[str], site: str) -> str:
    paras = list(paras)
    if v.get("dateline_prefix"):
        paras[0] = v["dateline_prefix"] + paras[0]
    parts = []
    if v.get("breadcrumb"):
        parts.append(f'<p class="breadcrumb">{html.escape(v["breadcrumb"])}</p>')
    parts.extend(f"<p>{html.escape(p, quote=False)}</p>" for p in paras)
    if v.get("truncate"):
        parts[-1] = parts[-1].removesuffix("</p>") + " […]</p>"
    if v.get("tracking"):
        track = "utm_source=rss&amp;utm_medium=feed&amp;utm_campaign=newsletter"
        parts.append(
            f'<p><a href="{site}newsletter?{track}">Sign up for our morning newsletter</a></p>'
            f'<img src="{site}pixel.gif?{track}" width="1" height="1" alt="">'
        )
    if v.get("related_html"):
        items = "".join(
            f'<li><a href="{site}related/{i}">{html.escape(t)}</a></li>'
            for i, t in enumerate(v["related_html"], 1)
        )
        parts.append(f"<h3>Related</h3><ul>{items}</ul>")
    return "\n".join(parts)


def _atom(outlet: str, meta: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    site = meta["site"]
    newest = max(e["date"] for e in entries)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"  <title>{escape(meta['title'])}</title>",
        f"  <id>{escape(site)}</id>",
        f'  <link rel="alternate" href={quoteattr(site)}/>',
        f"  <updated>{newest.isoformat().replace('+00:00', 'Z')}</updated>",
    ]
    for e in entries:
        stamp = e["date"].isoformat().replace("+00:00", "Z")
        out += [
            "  <entry>",
            f"    <id>{escape(e['id'])}</id>",
            f"    <title>{escape(e['title'])}</title>",
            f'    <link rel="alternate" href={quoteattr(e["link"])}/>',
            f"    <published>{stamp}</published>",
            f"    <updated>{stamp}</updated>",
            f"    <author><name>{escape(meta['title'])} staff</name></author>",
            f'    <content type="html">{escape(e["html"])}</content>',
            "  </entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def _rss(outlet: str, meta: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    site = meta["site"]
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0">',
        "  <channel>",
        f"    <title>{escape(meta['title'])}</title>",
        f"    <link>{escape(site)}</link>",
        f"    <description>{escape(meta['title'])}: latest stories</description>",
    ]
    for e in entries:
        out += [
            "    <item>",
            f"      <title>{escape(e['title'])}</title>",
            f"      <link>{escape(e['link'])}</link>",
            f'      <guid isPermaLink="false">{escape(e["id"])}</guid>',
            f"      <pubDate>{format_datetime(e['date'])}</pubDate>",
            f"      <description>{escape(e['html'])}</description>",
            "    </item>",
        ]
    out += ["  </channel>", "</rss>"]
    return "\n".join(out) + "\n"


def _json(outlet: str, meta: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta["title"],
        "home_page_url": meta["site"],
        "items": [
            {
                "id": e["id"],
                "url": e["link"],
                "title": e["title"],
                "content_html": e["html"],
                "date_published": e["date"].isoformat().replace("+00:00", "Z"),
            }
            for e in entries
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _seed(v: dict[str, Any], paras: list[str]) -> str:
    lines = [v["kicker"], v["caption"], "", f"{v['dateline']}: {paras[0]}", ""]
    if len(paras) > 1:
        # Scraped pages glue the site's breadcrumbs to the next paragraph.
        lines += [f"{v['breadcrumb']}:\u00a0 {paras[1]}", ""]
    for p in paras[2:]:
        lines += [p, ""]
    lines += ["", "Read More:", ""]
    for r in v.get("related", []):
        lines += [r, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


RENDER = {"atom": (_atom, ".atom"), "rss": (_rss, ".rss"), "json": (_json, ".json")}


def build(here: Path = HERE) -> dict[str, str]:
    """Every file of the set in ``here`` (path relative to it -> text), from its corpus.yaml."""
    corpus = yaml.safe_load((here / "corpus.yaml").read_text(encoding="utf-8"))
    outlets, stories = corpus["outlets"], corpus["stories"]
    by_outlet: dict[str, list[dict[str, Any]]] = {name: [] for name in outlets}
    files: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = {}
    for v in corpus["versions"]:
        story = stories[v["story"]]
        paras = _version_text(v, story)
        if v["outlet"] == "seeds":
            name = _seed_name(v["story"], str(v["file"]))
            files[f"seeds/{name}"] = _seed(v, paras)
            identity = f"seed:{name.split('_', 1)[1].removesuffix('.txt')}"
            key = f"seeds/{identity}"
        else:
            meta = outlets[v["outlet"]]
            entry_id = v["id"]
            if meta["format"] == "atom" and ":" not in entry_id:
                # An atom:id is an IRI: a bare one would be resolved against the feed's URL.
                host = meta["site"].split("/")[2]
                entry_id = f"tag:{host},2026:{entry_id}"
            by_outlet[v["outlet"]].append(
                {
                    "id": entry_id,
                    "title": v.get("title") or story["title"],
                    "link": v["link"],
                    "date": _date(v.get("date") or story["date"]),
                    "html": _content_html(v, paras, meta["site"]),
                }
            )
            key = f"{v['outlet']}/{entry_id}"
        if key in labels:
            raise SystemExit(f"corpus.yaml: duplicate version {key}")
        labels[key] = {"story": v["story"], "variation": v["variation"]}
    for outlet, entries in by_outlet.items():
        render, suffix = RENDER[outlets[outlet]["format"]]
        entries.sort(key=lambda e: e["date"], reverse=True)
        files[f"feeds/{outlet}{suffix}"] = render(outlet, outlets[outlet], entries)
    for a, b in corpus["hard_negatives"]:
        if a not in stories or b not in stories:
            raise SystemExit(f"corpus.yaml: hard negative names an unknown story: {a}, {b}")
    files["labels.json"] = (
        json.dumps(
            {
                "outlets": {k: v["format"] for k, v in outlets.items()},
                "versions": labels,
                "hard_negatives": corpus["hard_negatives"],
            },
            indent=1,
            ensure_ascii=False,
            sort_keys=True,
        )
        + "\n"
    )
    return files


def main() -> int:
    # Another set's folder (tests/data/stories-heldout) may be named: its corpus.yaml is read.
    here = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
    files = build(here)
    for sub in ("feeds", "seeds"):
        for old in (here / sub).glob("*") if (here / sub).exists() else ():
            if f"{sub}/{old.name}" not in files:
                old.unlink()
    for rel, text in files.items():
        path = here / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {here}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
