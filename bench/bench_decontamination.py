"""Decontamination: the n-gram size for Chinese, the cost per document, and
recall / false positives.

  python bench/bench_decontamination.py [--shared ../shared/data] [--items 20000] [--repeat 3]

1. **How many Chinese characters carry one English word's information.**
   The same compressor (LZMA, preset 9e) on Chinese and on English web text
   of ../shared/data/text (CCNet-format Chinese from ChineseWebText, English
   from dolma's CC sample): bits per Han character against bits per word.
   GPT-3's 13 words times that ratio is the default CJK n-gram size.
2. **Cost** (one core, in-process, no Beam): every real HTML page of
   ../shared/data is extracted (trafilatura, the pipeline's settings), then
   the extracted texts are checked against an index of --items evaluation
   items (C-Eval / MMLU shaped: a stem, one or two sentences of real text,
   four options, an answer; half Chinese, half English, from the text files
   above, which no page contains).  Target: <= 5 % of extraction per
   document.  Also: index build time, size, load time per worker.
3. **Real pages, no items in them**: how many of those pages the 20,000-item
   index flags (each is a false positive unless it really quotes an item).
4. **Planted items** (tests/planted_contamination.py, the test's corpus):
   recall per variant and false positives on decoys.

Writes the "decontamination" section of bench/results.json and
docs/DECONTAMINATION.md's figures (`--render` rewrites them from the JSON).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import lzma
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _texts(shared: Path) -> tuple[list[str], list[str]]:
    zh = [json.loads(line)["raw_content"] for line in
          gzip.open(shared / "text" / "ccnet_zh_cc2022_chinesewebtext.jsonl.gz", "rt", encoding="utf-8")]
    en = []
    for f in sorted((shared / "text").glob("ccnet_en_*.jsonl.gz")):
        en += [json.loads(line)["text"] for line in gzip.open(f, "rt", encoding="utf-8")]
    return zh, en


def information_ratio(zh: list[str], en: list[str]) -> dict:
    zt, et = "\n".join(zh), "\n".join(en)
    bits = lambda t: len(lzma.compress(t.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)) * 8  # noqa: E731
    han, words = len(_HAN.findall(zt)), len(re.findall(r"[A-Za-z0-9']+", et))
    per_han, per_word = bits(zt) / han, bits(et) / words
    return {"zh_han_chars": han, "en_words": words, "bits_per_han_char": round(per_han, 2),
            "bits_per_en_word": round(per_word, 2), "han_chars_per_word": round(per_word / per_han, 3),
            "cjk_n_for_13_words": round(13 * per_word / per_han, 1)}


def make_items(zh: list[str], en: list[str], n: int, seed: int = 1) -> list[dict]:
    """``n`` C-Eval/MMLU-shaped items from real sentences (half Chinese, half English)."""
    rng = random.Random(seed)
    split = {"zh": r"(?<=[。！？])", "en": r"(?<=[.!?])\s+"}
    sents, phrases = {}, {}
    for lang, texts in (("zh", zh), ("en", en)):
        s = [x.strip() for t in texts for x in re.split(split[lang], t.replace("\n", " ")) if x.strip()]
        size = (lambda x: len(_HAN.findall(x))) if lang == "zh" else (lambda x: len(x.split()))
        sents[lang] = [x for x in s if (15 <= size(x) <= 80 if lang == "zh" else 6 <= size(x) <= 40)]
        phrases[lang] = [p.strip() for t in texts[:200] for p in re.split(r"[，。；,;.]", t) if 4 <= len(p.strip()) <= 30]
    stems = {"zh": ["下列说法正确的是", "根据材料，以下推断合理的是", "阅读下面的材料，回答问题"],
             "en": ["According to the passage,", "Which statement is true?", "Read the text and answer."]}
    items = []
    for k in range(n):
        lang = "zh" if k % 2 == 0 else "en"
        body = (" " if lang == "en" else "").join(rng.sample(sents[lang], rng.choice((1, 2))))
        items.append({"id": f"{lang}-{k}", "question": f"{rng.choice(stems[lang])}\n{body}",
                      "options": rng.sample(phrases[lang], 4), "answer": rng.choice("ABCD")})
    return items


def measure_cost(shared: Path, n_items: int, repeat: int) -> dict:
    from bench_coarse import load_pages

    from mdfs.pipeline.stages import decontaminate as dc
    from mdfs.pipeline.config import load_config, load_defaults
    from mdfs.pipeline.schema import Decontamination
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options

    zh, en = _texts(shared)
    ratio = information_ratio(zh, en)
    items = make_items(zh, en, n_items)
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-decontam-"))
    (tmp / "items.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                                     encoding="utf-8")
    settings = Decontamination.model_validate({**load_defaults()["decontamination"],
                                               "sets": {"bench": str(tmp / "items.jsonl")}})
    t0 = time.perf_counter()
    index = dc.build_index(settings)
    build_s = time.perf_counter() - t0
    index.save(str(tmp / "index.npz"))
    t0 = time.perf_counter()
    loaded = dc.Index.load(str(tmp / "index.npz"))
    load_s = time.perf_counter() - t0

    cfg = load_config(sources=["bench=/dev/null"])
    opts = extraction_options(cfg.extract)
    pages = load_pages(shared)
    dc.char_classes()
    ext_runs, dc_runs, flagged = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        texts = [extract_text(html, url, opts) for url, html in pages]
        ext_runs.append((time.perf_counter() - t0) / len(pages))
        texts = [t for t in texts if t]
        t0 = time.perf_counter()
        flagged = [i for i, t in enumerate(texts) if loaded.find(dc.normalise(t))[0]]
        dc_runs.append((time.perf_counter() - t0) / len(pages))
    ext, cost = statistics.median(ext_runs), statistics.median(dc_runs)
    examples = []
    for i in flagged[:5]:
        found, _ = loaded.find(dc.normalise(texts[i]))
        examples.append({"page": i, "items": [loaded.item_ids[k] for k in found]})
    return {"information": ratio,
            "index": {"items": n_items, "indexed": sum(s["indexed"] for s in index.summary["sets"].values()),
                      "ngrams": int(len(index.hashes)), "megabytes": round(index.nbytes() / 1e6, 2),
                      "bytes_per_item": round(index.nbytes() / n_items, 1),
                      "template_ngrams_left_out": index.summary["template_ngrams_left_out"],
                      "build_s": round(build_s, 2), "load_s": round(load_s, 3)},
            "cost": {"pages": len(pages), "texts": len(texts), "extract_ms_per_doc": round(ext * 1000, 3),
                     "decontaminate_ms_per_doc": round(cost * 1000, 4),
                     "decontaminate_over_extract": round(cost / ext, 4)},
            "real_pages_flagged": {"pages": len(texts), "flagged": len(flagged), "examples": examples}}


def measure_planted() -> dict:
    import planted_contamination as planted

    from mdfs.pipeline.stages import decontaminate as dc
    from mdfs.pipeline.config import load_defaults
    from mdfs.pipeline.schema import Decontamination

    items, docs, decoys, skipped = planted.build()
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-planted-"))
    settings = Decontamination.model_validate({**load_defaults()["decontamination"],
                                               "sets": {"planted": str(planted.write_items(items, tmp / "items.jsonl"))}})
    index = dc.build_index(settings)
    hits, totals, flagged, decoy_totals = (collections.Counter() for _ in range(4))
    for d in docs:
        found, _ = index.find(dc.normalise(d.text))
        totals[d.kind] += 1
        hits[d.kind] += any(index.item_ids[i] == d.item for i in found)
    for d in decoys:
        decoy_totals[d.kind] += 1
        flagged[d.kind] += bool(index.find(dc.normalise(d.text))[0])
    counted = [k for k in totals if k != "partial_below_n"]
    return {"items": {"zh": sum(i.lang == "zh" for i in items), "en": sum(i.lang == "en" for i in items)},
            "recall_by_variant": {k: [hits[k], totals[k]] for k in totals},
            "recall": round(sum(hits[k] for k in counted) / sum(totals[k] for k in counted), 4),
            "decoys": {k: [flagged[k], decoy_totals[k]] for k in decoy_totals},
            "false_positive_share": round(sum(flagged.values()) / max(1, sum(decoy_totals.values())), 4),
            "decoys_skipped_sharing_text": skipped}


def render(res: dict) -> list[str]:
    info, ix, cost, real, pl = (res["information"], res["index"], res["cost"], res["real_pages_flagged"],
                                res["planted"])
    var = pl["recall_by_variant"]
    return [
        f"Measured {res['date']} on this machine ({res['machine']}, Python {res['python']}, one core) with "
        "`python bench/bench_decontamination.py`.",
        "",
        "| measure | value | target |", "|---|---:|---:|",
        f"| bits per Han character / per English word (LZMA, {info['zh_han_chars']:,} characters, "
        f"{info['en_words']:,} words) | {info['bits_per_han_char']} / {info['bits_per_en_word']} | |",
        f"| Han characters per English word of information | {info['han_chars_per_word']} "
        f"(13 words = {info['cjk_n_for_13_words']} characters; default n = 20) | |",
        f"| index of {ix['items']:,} items: n-grams, size | {ix['ngrams']:,}, {ix['megabytes']} MB "
        f"({ix['bytes_per_item']:.0f} bytes per item) | |",
        f"| index build (launcher, once) / load (per worker process) | {ix['build_s']} s / {ix['load_s']} s | |",
        f"| extraction per page ({cost['pages']} real pages) | {cost['extract_ms_per_doc']} ms | |",
        f"| decontamination per page, {ix['items']:,}-item index | {cost['decontaminate_ms_per_doc']} ms "
        f"(**{cost['decontaminate_over_extract']:.1%}** of extraction) | <= 5 % |",
        f"| real pages flagged (none holds an item) | {real['flagged']} of {real['pages']} | |",
        f"| planted recall (verbatim, reformatted, partial, in a long article) | **{pl['recall']:.3f}** "
        f"({' / '.join(f'{var[k][0]}/{var[k][1]}' for k in ('verbatim', 'reformatted', 'partial', 'in_long_article'))}) "
        "| >= 0.98 |",
        f"| decoys flagged (same topic / near miss) | **{pl['false_positive_share']:.2%}** "
        f"({' / '.join(f'{v[0]}/{v[1]}' for v in pl['decoys'].values())}) | <= 0.5 % |",
        f"| two thirds of a 10-word item (below one 13-gram) | {var.get('partial_below_n', [0, 0])[0]}/"
        f"{var.get('partial_below_n', [0, 0])[1]} found | (out of reach by design) |",
    ]


def write_doc(res: dict) -> None:
    from results import replace_figures

    replace_figures(REPO / "docs" / "DECONTAMINATION.md", "bench/bench_decontamination.py", render(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--render", action="store_true", help="only rewrite docs/DECONTAMINATION.md from bench/results.json")
    args = ap.parse_args()
    from results import load, merge_section

    if args.render:
        write_doc(load()["decontamination"])
        return 0
    res = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "python": platform.python_version(),
           **measure_cost(args.shared, args.items, args.repeat), "planted": measure_planted()}
    print(json.dumps(res, indent=2, ensure_ascii=False))
    merge_section("decontamination", res)
    write_doc(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
