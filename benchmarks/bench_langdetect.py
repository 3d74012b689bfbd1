"""Language detection on short news texts: py3langid (what aggregator uses) against lingua.

Texts: every headline, caption and paragraph line of the multilingual seed
fixtures (tests/data/seeds, language from each ``.expected.json``) plus the
headlines below, written for this benchmark in the styles of TASS, IRNA,
Iran Press, Armenpress, AZƏRTAC and Anadolu. For each detector, in its own
subprocess so memory is its own: accuracy per language (an abstention counts
as a miss), texts per second, resident memory after loading its model and the
time the load took (``aggregator`` loads from its per-user cache: run it twice).

Rows:

* ``py3langid`` - the raw classifier, always answering;
* ``aggregator`` - :func:`aggregator.text.language.detect_language` (py3langid with
  the confidence and length thresholds it publishes under);
* ``lingua-high`` / ``lingua-low`` - lingua-language-detector over all its
  languages, high-accuracy and low-accuracy modes (install it by hand:
  it is not a dependency).

Run: ``python benchmarks/bench_langdetect.py``
"""

# ruff: noqa: RUF001

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEEDS = REPO / "tests" / "data" / "seeds"
LANGUAGES = ("en", "ru", "fa", "ar", "hy", "az", "tr")

HEADLINES: dict[str, tuple[str, ...]] = {
    "en": (
        "Armenia and Azerbaijan agree on border commission",
        "Oil prices slip as Caspian exports rise",
        "Iran says talks on nuclear deal to resume next week",
        "Georgia's parliament passes budget after long debate",
        "Turkish central bank holds rates steady",
        "Floods close mountain roads in northern Iran",
        "Kremlin says no date set for summit",
        "Baku hosts regional energy forum",
    ),
    "ru": (
        "В Ереване прошли переговоры по делимитации границы",
        "Цены на нефть снизились на фоне роста экспорта",
        "Лавров провел переговоры с главой МИД Ирана",
        "В Баку открылся энергетический форум",
        "Путин и Алиев обсудили ситуацию в регионе",
        "Сильный снегопад парализовал движение в Тбилиси",
        "Минэкономразвития повысило прогноз роста ВВП",
        "Пашинян заявил о готовности к новому раунду переговоров",
    ),
    "fa": (
        "مذاکرات هسته‌ای هفته آینده از سر گرفته می‌شود",
        "قیمت نفت در بازارهای جهانی کاهش یافت",
        "وزیر خارجه ایران با همتای ارمنستانی خود دیدار کرد",
        "سیل جاده‌های کوهستانی شمال کشور را مسدود کرد",
        "نشست منطقه‌ای انرژی در باکو برگزار شد",
        "رئیس جمهور بودجه سال آینده را به مجلس تقدیم کرد",
        "بارش برف در تهران مدارس را تعطیل کرد",
        "سخنگوی دولت از کاهش نرخ تورم خبر داد",
    ),
    "ar": (
        "استئناف المحادثات النووية الأسبوع المقبل",
        "تراجع أسعار النفط مع ارتفاع الصادرات",
        "وزير الخارجية الإيراني يلتقي نظيره الأرمني",
        "الفيضانات تغلق الطرق الجبلية في شمال إيران",
        "باكو تستضيف منتدى إقليميا للطاقة",
        "البرلمان يقر الموازنة بعد نقاش طويل",
        "البنك المركزي يبقي أسعار الفائدة دون تغيير",
        "الكرملين: لم يتحدد موعد للقمة بعد",
    ),
    "hy": (
        "Հայաստանը և Ադրբեջանը համաձայնել են սահմանային հանձնաժողովի շուրջ",
        "Նավթի գները նվազել են",
        "Իրանի ԱԳ նախարարը հանդիպել է հայ գործընկերոջ հետ",
        "Երևանում կայացել են սահմանազատման բանակցություններ",
        "Կառավարությունը հաստատել է հաջորդ տարվա բյուջեն",
        "Ձյան տեղումները փակել են լեռնային ճանապարհները",
        "Վարչապետը հանդիպել է գործարարների հետ",
        "Կենտրոնական բանկը անփոփոխ է թողել վերաֆինանսավորման տոկոսադրույքը",
    ),
    "az": (
        "Azərbaycan və Ermənistan sərhəd komissiyası barədə razılığa gəlib",
        "Neftin qiyməti ucuzlaşıb",
        "Bakıda regional enerji forumu keçirilir",
        "Prezident İlham Əliyev Gürcüstanın baş naziri ilə görüşüb",
        "Mərkəzi Bank uçot dərəcəsini dəyişməz saxlayıb",
        "Qarabağda bərpa işləri davam edir",
        "Xarici işlər naziri İrana səfər edəcək",
        "Milli Məclis gələn ilin büdcəsini qəbul edib",
    ),
    "tr": (
        "Azerbaycan ve Ermenistan sınır komisyonu konusunda anlaştı",
        "Petrol fiyatları düştü",
        "Merkez Bankası faizi sabit tuttu",
        "Dışişleri Bakanı İranlı mevkidaşıyla görüştü",
        "Sel nedeniyle dağ yolları ulaşıma kapandı",
        "Meclis gelecek yılın bütçesini kabul etti",
        "Cumhurbaşkanı Erdoğan Bakü'ye gidecek",
        "İstanbul'da kar yağışı trafiği olumsuz etkiledi",
    ),
}


def samples() -> list[tuple[str, str]]:
    """``(language, text)`` pairs: the headlines above and the fixtures' lines."""
    out = [(lang, text) for lang, texts in HEADLINES.items() for text in texts]
    for expected in sorted(SEEDS.glob("*.expected.json")):
        language = json.loads(expected.read_text(encoding="utf-8")).get("language")
        if language not in LANGUAGES or language == "en":
            continue  # English fixtures are mostly the non-English-script tests' peers
        source = expected.with_name(expected.name.removesuffix(".expected.json"))
        for line in source.read_text(encoding="utf-8").splitlines():
            line = " ".join(line.split())
            if len(line.split()) >= 3:
                out.append((language, line))
    return out


_WORKER = r"""
import json, sys, time
mode = sys.argv[1]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before = rss()
began = time.perf_counter()
if mode == "py3langid":
    from py3langid.langid import LanguageIdentifier, MODEL_FILE
    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    detect = lambda t: ident.classify(t)[0]
elif mode == "aggregator":
    import aggregator.text.language as language  # the package's own imports are not the model
    before = rss()
    began = time.perf_counter()
    language._identifier()
    detect = language.detect_language
else:
    from lingua import LanguageDetectorBuilder
    builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
    if mode == "lingua-low":
        builder = builder.with_low_accuracy_mode()
    det = builder.build()
    def detect(t):
        lang = det.detect_language_of(t)
        return lang.iso_code_639_1.name.lower() if lang is not None else None
loaded = rss()
load_seconds = time.perf_counter() - began
pairs = json.load(sys.stdin)
start = time.perf_counter()
rounds = 5
for _ in range(rounds):
    answers = [detect(t) for _, t in pairs]
elapsed = time.perf_counter() - start
print(json.dumps({"answers": answers, "seconds": elapsed / rounds, "rss_mib": loaded - before,
                  "load_seconds": load_seconds}))
"""


def run(mode: str, pairs: list[tuple[str, str]]) -> dict[str, object] | None:
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, mode],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        print(f"{mode}: not run ({proc.stderr.strip().splitlines()[-1]})")
        return None
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def main() -> None:
    pairs = samples()
    counts = Counter(lang for lang, _ in pairs)
    print(f"{len(pairs)} texts: " + ", ".join(f"{lang} {counts[lang]}" for lang in LANGUAGES))
    header = f"{'detector':<12} " + " ".join(f"{lang:>5}" for lang in LANGUAGES)
    print(header + f" {'all':>5} {'none':>5} {'texts/s':>9} {'model MiB':>9} {'load s':>7}")
    baseline: float | None = None
    for mode in ("py3langid", "aggregator", "lingua-high", "lingua-low"):
        result = run(mode, pairs)
        if result is None:
            continue
        answers = result["answers"]
        assert isinstance(answers, list)
        right = Counter(lang for (lang, _), got in zip(pairs, answers, strict=True) if got == lang)
        abstained = sum(1 for got in answers if got is None)
        per_language = " ".join(f"{right[lang] / counts[lang]:>5.0%}" for lang in LANGUAGES)
        seconds = float(str(result["seconds"]))
        rate = len(pairs) / seconds
        baseline = baseline or rate
        print(
            f"{mode:<12} {per_language} {sum(right.values()) / len(pairs):>5.0%} {abstained:>5}"
            f" {rate:>9,.0f} {float(str(result['rss_mib'])):>9.0f}"
            f" {float(str(result['load_seconds'])):>7.2f}  (x{rate / baseline:.2f} speed)"
        )


if __name__ == "__main__":
    main()
