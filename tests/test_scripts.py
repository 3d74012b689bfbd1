"""Seeds in every script: folding, related headlines, language, mojibake, xml:lang and dir.

The multilingual seed fixtures (tests/data/seeds, any ``.expected.json`` with a
non-English ``language``) are read and normalised as the pipeline does, then
matched against topic queries and published the way a reader sees them: Atom
checked against RFC 4287's schema and prose rules, JSON Feed, and the HTML
page rendered by headless Chromium.
"""

# Non-Latin letters here are deliberate.
# ruff: noqa: RUF001

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.model import Item, Origin, Outcome, Story, TopicSpec
from aggregator.normalise import entry_language, language_tag, normalise_entry, text_fingerprint
from aggregator.parse import parse_feed, parse_seed
from aggregator.parse.seedtext import split_dateline
from aggregator.publish import Site, TopicFeed, render_topic
from aggregator.text import language as language_module
from aggregator.text import plain
from aggregator.text.labels import LanguageTableError, labels, load_tables
from aggregator.text.language import detect_language
from aggregator.text.plain import tokens
from aggregator.text.tags import direction
from aggregator.topics import compile_query, document
from aggregator.update import open_context, update_source

from .atomcheck import check_atom
from .cdp import HEADLESS_FLAGS
from .conftest import seed_lines

SEEDS = Path(__file__).parent / "data" / "seeds"
MTIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ORIGIN = Origin(source="seeds", title="Local seeds")
SITE = Site(base_url="https://news.example.org/", title="Regional desk")
A = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _expected(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        path.with_name(path.name + ".expected.json").read_text(encoding="utf-8")
    )
    return data


#: The languages of the regional agencies' seeds (issue 17).
LANGUAGES = ("ru", "fa", "ar", "hy", "az", "tr")
MULTILINGUAL = sorted(
    p
    for p in SEEDS.iterdir()
    if not p.name.endswith(".expected.json") and _expected(p).get("language") in LANGUAGES
)
#: The user's English sample beside them.
SAMPLE = SEEDS / "000_a42e47609101a1fc.txt"


def _item(path: Path) -> Item:
    doc = parse_seed(path.name, path.read_bytes(), source="seeds", mtime=MTIME, now=NOW)
    (raw,) = doc.entries
    return normalise_entry(raw, source="seeds", origin=ORIGIN, now=NOW)


def _plain_item(text: str) -> Item:
    return Item(
        source="t",
        identity="t",
        title=text,
        link=None,
        content_html="",
        summary="",
        published=NOW,
        updated=NOW,
    )


def test_every_language_of_the_brief_has_two_fixtures() -> None:
    languages = [_expected(p)["language"] for p in MULTILINGUAL]
    for language in ("ru", "fa", "ar", "az", "tr"):
        assert languages.count(language) >= 2, language


# --------------------------------------------------------------------------- folding

#: (folding, query, text): the query matches the text, and both spellings are one token list.
FOLDINGS = [
    # Persian users type a zero-width non-joiner or a space between the same words.
    ("zero-width non-joiner in the text", "می خواهم", "می‌خواهم"),
    ("zero-width non-joiner in the query", "گروه‌های", "گروه های"),
    ("zero-width non-joiner in a phrase of the text", '"قره باغ کوهستانی"', "قره‌باغ کوهستانی"),
    ("zero-width non-joiner in a phrase of the query", '"قره‌باغ کوهستانی"', "قره باغ کوهستانی"),
    ("zero-width joiner", "نامه", "نا\u200dمه"),
    ("alef with hamza above", "احمد", "أحمد"),
    ("alef with hamza below", "اسلام", "إسلام"),
    ("alef with madda", "امن", "آمن"),
    ("alef wasla", "الله", "ٱلله"),
    ("waw with hamza", "مومن", "مؤمن"),
    ("yeh with hamza, Persian yeh in the query", "رئیس", "رئيس"),
    ("Persian yeh and Arabic yeh", "ایران", "إيران"),
    ("alef maksura", "مصطفی", "مصطفى"),
    ("keheh and kaf", "کتاب", "كتاب"),
    ("heh with hamza above", "خانه", "خانۀ"),
    ("tatweel", "العربية", "الـعـربـيـة"),
    ("harakat", "محمد", "مُحَمَّد"),
    ("Arabic-Indic digits", "2026", "٢٠٢٦"),
    ("Persian digits", "1405", "۱۴۰۵"),
    ("Persian digits against Arabic-Indic", "۱۲", "١٢"),
    ("Cyrillic yo in the text", "Федоров", "Фёдоров"),
    ("Cyrillic yo in the query", "Ёлка", "елка"),
    ("Cyrillic capital yo", "ЕЛКА", "Ёлка"),
    ("Turkish dotted capital I", "istanbul", "İSTANBUL"),
    ("Turkish dotless i against capital I", "ılık", "ILIK"),
    ("Turkish dotless i against dotted i", "Diyarbakır", "DİYARBAKIR"),
    ("Azerbaijani dotless i", "Baki", "Bakı"),
]


@pytest.mark.parametrize(("folding", "query", "text"), FOLDINGS, ids=[f[0] for f in FOLDINGS])
def test_folding_matches_both_spellings(folding: str, query: str, text: str) -> None:
    assert tokens(query) == tokens(text), folding
    assert compile_query(query).matches(document(_plain_item(text))), folding
    # Documents and queries fold alike: the other way round matches too.
    assert compile_query(text).matches(document(_plain_item(query))), folding


def _reference_tokens(chunk: str) -> list[str]:
    """The tokeniser's definition, spelled out one character at a time (no shortcuts)."""
    folded = unicodedata.normalize(
        "NFKD", plain.cap_marks(chunk).translate(str.maketrans(plain.SCRIPT_FOLDING))
    ).casefold()
    folded = unicodedata.normalize("NFKD", folded).replace("\u0438\u0306", "\u0439")
    kept = "".join(c for c in folded if not unicodedata.category(c).startswith("M"))
    return re.findall(r"[^\W_]+", kept)


def test_marks_are_dropped_exactly_where_unicode_has_them() -> None:
    """Every code point of every plane: the tokeniser drops categories Mn, Mc and Me, no other."""
    every = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    expected = "".join(c for c in every if not unicodedata.category(c).startswith("M"))
    assert plain._strip_marks(every) == expected
    bmp = every[:0xF800]  # no character beyond U+FFFF: the table-lookup pattern
    assert plain._strip_marks(bmp) == "".join(
        c for c in bmp if not unicodedata.category(c).startswith("M")
    )


_WORD_CHARS = st.sampled_from(
    "abcАбвгдейёЙЇїقره\u200c\u200d\u0640\u0671\u0649\u06cc\u06a9\u06c0ıİIßẞǅ"
    "\u0301\u0306\u0308\u0903\u093f\u20dd\U0001d165\U000e0100\U0001f600"
    "٣۳①ﬁ-'’.,_\u00a0"
)


@given(st.lists(st.text(_WORD_CHARS, min_size=1, max_size=12), min_size=1, max_size=20))
@settings(max_examples=300, deadline=None)
def test_tokens_of_any_words_are_the_definitions(words: list[str]) -> None:
    """Folding, marks and splitting, cached or not: what the definition gives."""
    text = " ".join(words)
    expected = [t for w in text.split() for t in _reference_tokens(w)]
    assert tokens(text) == expected
    assert tokens(text) == expected  # the second time from the cache


def test_persian_text_typed_with_non_joiners_or_spaces_is_one_story() -> None:
    joined = (
        "درگیری‌ها در قره‌باغ کوهستانی پس از آتش‌بس ادامه دارد و نیروهای حافظ صلح "
        "به منطقه می‌روند تا از غیرنظامیان محافظت کنند"
    )
    spaced = joined.replace("\u200c", " ")
    assert spaced != joined
    assert tokens(joined) == tokens(spaced)
    assert text_fingerprint(joined) == text_fingerprint(spaced) is not None


_RU_CAPTIONED = (
    "Россия готова содействовать мирному договору Армении и Азербайджана\n"
    "Министр иностранных дел России Сергей Лавров\n\n"
    "МОСКВА, 27 ноября. /ТАСС/. Россия готова и дальше содействовать нормализации отношений "
    "между Арменией и Азербайджаном, заявил министр иностранных дел РФ Сергей Лавров.\n\n"
    "Лавров добавил, что вопросы разблокирования транспортных коммуникаций остаются в центре "
    "внимания трехсторонней рабочей группы.\n"
)


def test_russian_photo_caption_under_the_headline_is_not_the_lead() -> None:
    doc = parse_seed("ru.txt", _RU_CAPTIONED.encode(), source="seeds", mtime=MTIME, now=NOW)
    (entry,) = doc.entries
    assert entry.title == "Россия готова содействовать мирному договору Армении и Азербайджана"
    assert entry.content is not None
    assert entry.content.startswith("<p>Россия готова и дальше содействовать")
    assert "Министр иностранных дел России Сергей Лавров<" not in entry.content
    # A standfirst that is a sentence stays: only a title-and-name line is a caption.
    deck = _RU_CAPTIONED.replace(
        "Министр иностранных дел России Сергей Лавров\n",
        "Глава МИД России заявил о готовности Москвы принять переговоры Сергея Лаврова.\n",
    )
    (entry,) = parse_seed("ru.txt", deck.encode(), source="seeds", mtime=MTIME, now=NOW).entries
    assert entry.content is not None and entry.content.startswith("<p>Глава МИД России")


#: (what, query, text): prefix queries reach inflected and joined forms.
PREFIXES = [
    ("Russian locative", "Карабах*", "Ситуация в Карабаху остается сложной"),
    ("Russian with yo", "Ёлк*", "у новогодней елки"),
    # (after a non-joiner, "های" is a token of its own, as after a space)
    ("Persian plural written joined", "گروه*", "حضور گروههای تروریستی"),
    ("Arabic with hamza", "أذربيج*", "جمهورية اذربيجان"),
    ("Turkish suffix, dotless i", "Azerbaycan*", "AZERBAYCANLI yetkililer"),
    ("Azerbaijani suffix", "Qarabağ*", "Qarabağda bərpa işləri"),
    ("Armenian case ending", "Երևան*", "Երևանում կայացել են"),
]


@pytest.mark.parametrize(("what", "query", "text"), PREFIXES, ids=[p[0] for p in PREFIXES])
def test_prefix_queries_match_inflected_forms(what: str, query: str, text: str) -> None:
    assert compile_query(query).matches(document(_plain_item(text))), what
    # Without the star the inflected form is another word.
    assert not compile_query(query.rstrip("*")).matches(document(_plain_item(text))), what


#: (what, query, text): foldings that must not go further than the script's rules.
DISTINCT = [
    ("short i is its own letter", "мои", "мой"),
    ("teh marbuta is not heh", "مدرسه", "مدرسة"),
    ("hamza alone stays", "سماء", "سما"),
    ("digits are not letters", "۱۲", "12۳"),
]


@pytest.mark.parametrize(("what", "query", "text"), DISTINCT, ids=[d[0] for d in DISTINCT])
def test_folding_keeps_distinct_words_apart(what: str, query: str, text: str) -> None:
    assert not compile_query(query).matches(document(_plain_item(text))), what


# ------------------------------------------------------------------ related headlines


@pytest.mark.parametrize(
    "path", [*MULTILINGUAL, SAMPLE], ids=[p.name for p in [*MULTILINGUAL, SAMPLE]]
)
def test_related_headlines_never_reach_topic_matching(path: Path) -> None:
    item = _item(path)
    assert item.related, "every fixture here has related headlines"
    indexed = document(item)
    own = set(
        tokens(" ".join([item.title, item.summary, item.content_html, item.dateline.place]))
        if item.dateline
        else tokens(" ".join([item.title, item.summary, item.content_html]))
    )
    for related in item.related:
        # A word of the related headline that the story itself never uses.
        foreign = [t for t in tokens(related.title) if t not in own and len(t) > 3]
        assert foreign, related.title
        for word in foreign:
            assert not compile_query(word).matches(indexed), (word, related.title)
        assert not compile_query(f'"{related.title}"').matches(indexed), related.title
    # The control: a word of the story's own lead does match.
    lead_word = max(tokens(item.summary), key=len)
    assert compile_query(lead_word).matches(indexed)


# ------------------------------------------------------------------------- datelines

#: (paragraph, place, agency, date text) in the forms agencies write; None: no dateline.
DATELINES = [
    ("МОСКВА, 27 ноября. /ТАСС/. Россия готова", "Москва", "ТАСС", "27 ноября"),
    ("ЕРЕВАН, 26 ноя - РИА Новости. Премьер-министр", "Ереван", "РИА Новости", "26 ноя"),
    ("Ростов-на-Дону, 5 мая. /ТАСС/. Текст", "Ростов-на-Дону", "ТАСС", "5 мая"),
    ("قم (ایران پرس): معاون وزیر", "قم", "ایران پرس", None),
    ("تهران- ایرنا- وزیر امور خارجه", "تهران", "ایرنا", None),
    ("يريفان، 26 نوفمبر (رويترز) - اتفقت", "يريفان", "رويترز", "26 نوفمبر"),
    ("ԵՐԵՎԱՆ, 27 նոյեմբերի. /ԱՐՄԵՆՊՐԵՍ/. Հայաստանի", "Երեվան", "ԱՐՄԵՆՊՐԵՍ", "27 նոյեմբերի"),
    ("Bakı, 27 noyabr, AZƏRTAC. Prezident", "Bakı", "AZƏRTAC", "27 noyabr"),
    ("Tehran. 26 noyabr. APA. Azərbaycanın", "Tehran", "APA", "26 noyabr"),
    ("İSTANBUL (AA) – Dışişleri Bakanı", "İstanbul", "AA", None),
    ("IĞDIR, 26 Kasım (DHA) - Türkiye", "Iğdır", "DHA", "26 Kasım"),
    ("DİYARBAKIR (İHA) - Vali", "Diyarbakır", "İHA", None),
    ("Qom (IP): Emphasizing", "Qom", "IP", None),
    ("He said (AFP): the talks resume", None, None, None),
    ("Лавров заявил (ТАСС): текст", None, None, None),
    ("Москва, «кавычки» — тире", None, None, None),
    ("APA. Azərbaycanın xarici işlər naziri", None, None, None),
]


@pytest.mark.parametrize(("text", "place", "agency", "date"), DATELINES)
def test_datelines_in_every_script(
    text: str, place: str | None, agency: str | None, date: str | None
) -> None:
    dateline, rest, date_text = split_dateline(text)
    if place is None:
        assert dateline is None and rest == text
        return
    assert dateline is not None
    assert (dateline.place, dateline.agency, date_text) == (place, agency, date)
    assert rest and rest in text and not rest.startswith((" ", "-", ":", "."))


# ---------------------------------------------------------------------------- tables


def test_language_tables_load_and_hold_each_language() -> None:
    tables = {t.language: t for t in load_tables()}
    assert set(tables) >= {"en", "ru", "fa", "ar", "hy", "az", "tr"}
    for table in tables.values():
        assert table.related and len(table.months) == 12
    head = labels().related_head
    for label in ("Read More:", "Читайте также:", "بیشتر بخوانید:", "اقرأ المزيد", "Daha fazla:"):
        assert head.match(label), label
    # A body sentence that begins like a label is not a label.
    assert not head.match("Daha fazla yatırım bekleniyor ve bakanlık bunu açıkladı.")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('language = "xx"\nrelated = [1]\nmonths = []\n', "xx.toml: related: expected a list"),
        ('language = "english"\n', "xx.toml: language: expected a two- or three-letter code"),
        ('language = "xx"\nmonths = [["a"]]\n', "xx.toml: months: expected twelve lists"),
        ('language = "xx"\nrelated_patterns = ["("]\n', "xx.toml: related_patterns: '('"),
        ("language = ", "xx.toml: unreadable language table"),
        ('language = "xx"\nlabels = []\n' + "months = [['m']]\n", "xx.toml: months: expected"),
    ],
)
def test_a_broken_language_table_names_its_file_and_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "xx.toml").write_text(text, encoding="utf-8")
    with pytest.raises(LanguageTableError) as caught:
        load_tables(tmp_path)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


# -------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("declared", "tag"),
    [
        ("en", "en"),
        ("EN_us", "en-US"),
        ("az-latn-az", "az-Latn-AZ"),
        ("fa-IR", "fa-IR"),
        ("es-419", "es-419"),
        ("sr-Latn-RS-x-Foo", "sr-Latn-RS-x-foo"),
        ("x-private", "x-private"),
        ("english", None),
        ("en-", None),
        ("fr--FR", None),
        ('en" onload="x', None),
        ("<b>", None),
        ("ру", None),
        ("", None),
        ("e" * 40, None),
    ],
)
def test_language_tag_accepts_only_well_formed_bcp47(declared: str, tag: str | None) -> None:
    assert language_tag(declared) == tag


def test_a_declared_language_wins_and_an_invalid_one_is_detected_over() -> None:
    text = "Премьер-министр Армении заявил, что Ереван готов подписать мирный договор с Баку."
    assert entry_language("ru-RU", "Заголовок", text) == "ru-RU"
    assert entry_language("russian", "Заголовок", text) == "ru"
    assert entry_language(None, "Заголовок", text) == "ru"


@pytest.fixture
def fresh_model() -> Iterator[None]:
    language_module._identifier.cache_clear()
    yield
    language_module._identifier.cache_clear()  # later tests load from the real cache again


def test_the_model_is_decompressed_once_then_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_model: None
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "Премьер-министр Армении заявил, что Ереван готов подписать мирный договор."
    assert detect_language(text) == "ru"
    (folder,) = (tmp_path / "aggregator").iterdir()
    assert sorted(f.name for f in folder.iterdir()) == [
        f"{n}.npy" for n in sorted(("classes", "nextmove", "output", "pc", "ptc", "row"))
    ]
    # The cached model answers exactly as the shipped one does.
    cached = language_module._identifier()
    shipped = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for sample in (text, "قم (ایران پرس): معاون وزیر امور خارجه", "Bakı, 27 noyabr, AZƏRTAC"):
        assert cached.rank(sample)[:3] == shipped.rank(sample)[:3]
    # A second process start finds the cache and does not write it again.
    before = {f: f.stat().st_mtime_ns for f in folder.iterdir()}
    language_module._identifier.cache_clear()
    assert detect_language(text) == "ru"
    assert {f: f.stat().st_mtime_ns for f in folder.iterdir()} == before


def test_the_mapped_model_answers_as_the_shipped_one_and_holds_little_of_its_own(
    fresh_model: None,
) -> None:
    """Its per-state tables are read from the mapped file, not copied into Python objects.

    py3langid's own loader keeps two lists of 104,583 ints (row offsets and
    outputs): several MiB in every parse worker.
    """
    import tracemalloc

    language_module._identifier()  # the cache exists before the measure
    language_module._identifier.cache_clear()
    tracemalloc.start()
    try:
        cached = language_module._identifier()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1_000_000, f"the identifier holds {held / 2**20:.1f} MiB of Python objects"
    shipped = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    lines = seed_lines()
    assert len(lines) > 100
    for line in lines:
        assert cached.classify(line) == shipped.classify(line), line


def test_without_a_writable_cache_the_shipped_model_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_model: None
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert detect_language("Dışişleri Bakanı Hakan Fidan barış sürecini anlattı") == "tr"


@pytest.mark.parametrize("text", ["", "2026", "OK", "Baku 2026", "— · —", "https://x.example/"])
def test_too_little_text_gets_no_language(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    ("tag", "way"),
    [
        ("fa", "rtl"),
        ("ar-EG", "rtl"),
        ("he", "rtl"),
        ("ur", "rtl"),
        ("az-Arab", "rtl"),
        ("az-Latn", "ltr"),
        ("ru", "ltr"),
        ("tr", "ltr"),
        ("hy", "ltr"),
        ("en", "ltr"),
        (None, None),
    ],
)
def test_direction(tag: str | None, way: str | None) -> None:
    assert direction(tag) == way


# -------------------------------------------------------------------------- mojibake

_MOJIBAKE_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>CafÃ© Wire</title><link>https://wire.example/</link>
<description>d</description>
<item><guid>m1</guid><title>CafÃ© owners in Yerevan say rents have doubled</title>
<description>Several are close â€” a claim the city disputes.</description>
<author>JosÃ© Martí</author></item>
<item><guid>m2</guid><title>Clean title</title><description>Nothing to repair.</description></item>
</channel></rss>"""


def test_feed_fields_with_mojibake_are_repaired_and_reported() -> None:
    doc = parse_feed(_MOJIBAKE_RSS.encode("utf-8"), url=None, headers=None, source="wire")
    broken, clean = doc.entries
    assert broken.title == "Café owners in Yerevan say rents have doubled"
    assert broken.summary == "Several are close — a claim the city disputes."
    assert broken.authors == ("José Martí",)
    assert doc.feed.title == "Café Wire"
    notes = [w for w in doc.warnings if "mojibake repaired" in w]
    # One note for the broken entry, naming it, its fields and the wrong charset;
    # none for the clean one.
    assert len(notes) == 1
    assert notes[0].startswith("mojibake repaired in m1: ")
    assert "summary" in notes[0] and "authors" in notes[0] and "Windows-1252" in notes[0]
    assert clean.title == "Clean title"
    item = normalise_entry(broken, source="wire", origin=None, now=NOW)
    assert compile_query("cafe").matches(document(item))


@pytest.mark.parametrize(
    "text",
    [
        "Café owners, naïve coöperation, São Paulo",
        "Москва, «кавычки» — тире",
        "ایران پرس: «نقل قول»",
        "İstanbul'da Iğdır, Bakı, Ağdam",
        "Price: 5 € or £4 · 10°C ±2",
    ],
)
def test_well_formed_text_is_left_alone(text: str) -> None:
    body = "The report quotes " + " ".join(["word"] * 30) + f" and {text}."
    doc = parse_seed("clean.txt", f"{text}\n\n{body}\n".encode(), source="s", mtime=MTIME, now=NOW)
    assert not any("mojibake" in w for w in doc.warnings)
    entry = doc.entries[0]
    assert entry.title == text
    assert text in (entry.content or "")


# --------------------------------------------------------------------------- pipeline

_PIPELINE_TOPICS = """
topics:
  - {name: karabakh, title: Karabakh, query: 'Карабах* OR قره‌باغ* OR "قره باغ" OR Qarabağ*'}
  - {name: related, title: Related only, query: 'Нахичевани OR برجام OR aviareys OR Brüksel*'}
  - {name: cafe, title: Cafés, query: cafe}
"""


def test_a_seed_folder_in_every_script_through_the_pipeline(tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    for path in [*MULTILINGUAL, SAMPLE, SEEDS / "037_mojibake_cp1252.txt"]:
        shutil.copy(path, folder / path.name)
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: data\nsources:\n  - {name: seeds, path: seeds}\n" + _PIPELINE_TOPICS,
        encoding="utf-8",
    )
    ctx = open_context(load_config(config), clock=lambda: NOW)
    try:
        result = asyncio.run(update_source(ctx.config.sources[0], ctx))
        assert result.outcome is Outcome.OK, result.error
        assert result.new == len(MULTILINGUAL) + 2
        # The repair is reported once, naming the source and the file.
        (note,) = result.problems
        assert note.startswith("seeds: 037_mojibake_cp1252.txt: mojibake repaired")
        karabakh = {s.item.identity for s in ctx.store.topic_stories("karabakh")}
        assert karabakh == {
            "path:026_ru_tass.txt",
            "path:027_ru_ria.txt",
            "path:028_fa_iranpress.txt",
            "path:029_fa_irna.txt",
            "path:030_ar_iranpress.txt",
            "path:032_az_azertac.txt",
        }
        assert list(ctx.store.topic_stories("related")) == []
        (cafe,) = ctx.store.topic_stories("cafe")
        assert cafe.item.title == "Café owners in Yerevan say rents have doubled"
        languages = {s.item.identity: s.item.language for s in ctx.store.topic_stories("karabakh")}
        assert languages["path:028_fa_iranpress.txt"] == "fa"
        assert languages["path:032_az_azertac.txt"] == "az"
    finally:
        ctx.close()


# ---------------------------------------------------------------------------- publish


def _stories() -> list[Story]:
    paths = [*MULTILINGUAL, SAMPLE]
    stories = []
    for n, path in enumerate(paths):
        item = _item(path)
        when = NOW - timedelta(hours=n + 1)
        stories.append(
            Story(
                id=f"tag:news.example.org,2026:story/{n}",
                item=item,
                published=when,
                updated=when,
                first_seen=when,
                provenance=(ORIGIN,),
            )
        )
    return stories


@pytest.fixture(scope="module")
def published() -> dict[str, object]:
    stories = _stories()
    topic = TopicSpec(name="region", title="Region", query="x", max_items=50)
    docs = render_topic(SITE, TopicFeed(topic, tuple(stories)))
    return {"stories": stories, "docs": docs}


def test_atom_entries_carry_xml_lang_and_validate(published: dict[str, object]) -> None:
    docs = published["docs"]
    stories = published["stories"]
    assert isinstance(docs, dict) and isinstance(stories, list)
    root = check_atom(docs["topics/region.atom"].body, name="region.atom")
    languages = {e.findtext(A + "id"): e.get(XML_LANG) for e in root.findall(A + "entry")}
    want = {s.id: s.item.language for s in stories}
    assert languages == want
    assert set(want.values()) >= {"ru", "fa", "ar", "az", "tr", "hy", "en"}


def test_json_feed_items_carry_language(published: dict[str, object]) -> None:
    docs = published["docs"]
    stories = published["stories"]
    assert isinstance(docs, dict) and isinstance(stories, list)
    feed = json.loads(docs["topics/region.json"].body)
    got = {i["id"]: i.get("language") for i in feed["items"]}
    assert got == {s.id: s.item.language for s in stories}


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is not installed (CI=true)")
        pytest.skip(f"{binary} is not installed (Debian package '{binary}')")
    return path


# Loads the topic page in a frame of the same origin and reports, per story,
# its lang and dir attributes, the computed direction, and which edge of the
# story its headline's first letters sit at.
_PROBE = """<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="page" src="/topics/region" style="width:900px;height:2000px"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {
  const doc = document.getElementById("page").contentDocument;
  const rows = [...doc.querySelectorAll("li.story")].map((li) => {
    const h2 = li.querySelector("h2");
    const walker = doc.createTreeWalker(h2, NodeFilter.SHOW_TEXT);
    const text = walker.nextNode();
    const range = doc.createRange();
    range.setStart(text, 0);
    range.setEnd(text, Math.min(2, text.length));
    const first = range.getBoundingClientRect();
    const box = h2.getBoundingClientRect();
    const edge = Math.abs(first.right - box.right) < 3 ? "right"
      : Math.abs(first.left - box.left) < 3 ? "left" : "middle";
    return [li.id, li.getAttribute("lang"), li.getAttribute("dir"),
            getComputedStyle(li).direction, edge].join(" ");
  });
  document.getElementById("out").textContent = JSON.stringify(rows);
});
</script></body></html>"""


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            chromium,
            *HEADLESS_FLAGS,
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_html_page_renders_right_to_left_text_in_chromium(
    published: dict[str, object], httpserver: HTTPServer, tmp_path: Path
) -> None:
    chromium = _require("chromium")
    docs = published["docs"]
    stories = published["stories"]
    assert isinstance(docs, dict) and isinstance(stories, list)
    page = docs["topics/region"]
    httpserver.expect_request("/topics/region").respond_with_data(
        page.body, content_type="text/html; charset=utf-8"
    )
    httpserver.expect_request("/probe").respond_with_data(
        _PROBE, content_type="text/html; charset=utf-8"
    )

    # The artefact to look at: the page as a reader sees it.
    shot = tmp_path / "rtl-topic-page.png"
    run = _chromium(
        chromium,
        tmp_path / "profile-shot",
        "--window-size=1000,2600",
        f"--screenshot={shot}",
        httpserver.url_for("/topics/region"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    run = _chromium(
        chromium,
        tmp_path / "profile-probe",
        "--virtual-time-budget=20000",
        "--dump-dom",
        httpserver.url_for("/probe"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = etree.HTML(run.stdout).findtext(".//pre")
    assert out and out != "pending", run.stdout[-2000:]
    rows = [row.split(" ") for row in json.loads(out)]
    assert len(rows) == len(stories)
    by_language = {lang: (dir_, computed, edge) for _, lang, dir_, computed, edge in rows}
    for language in ("fa", "ar"):
        assert by_language[language] == ("rtl", "rtl", "right"), language
    for language in ("ru", "az", "tr", "hy", "en"):
        assert by_language[language] == ("ltr", "ltr", "left"), language
