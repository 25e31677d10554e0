"""Extraction measured against human ground truth (issue #38).

  python bench/eval_extraction.py [--shared ../shared/data]   # run missing engines, score, write docs/EXTRACTION.md
  python bench/eval_extraction.py --engines trafilatura,resiliparse --refresh   # re-run these engines
  python bench/eval_extraction.py --render             # score the cached outputs only

Sets (../shared/data/html, Apache-2.0, see ../shared/data/SOURCES.md):
* magic-html: 261 pages (158 articles, 103 forum pages) with human-checked main
  text; one has an empty reference and is left out.  Scored per language of the
  reference (zh, en, other) and per page kind, with a bag-of-tokens P/R/F1 (CJK
  characters and words as tokens) and ROUGE-L (longest common token subsequence,
  which respects order); failure modes per page (bench/extraction_metrics.py).
  The Chinese pages are split into two fixed halves by the SHA-256 of their
  file name (first byte even: "tune", odd: "held-back").
* trafilatura-eval: 155 pages, 144 with snippets that must / must not appear:
  snippet precision and recall as trafilatura's own evaluation computes them.

Every engine reads the same decoded HTML (mdfs's ``payload.decode_html``) and
runs in this process, one engine after the other, each timed around the call
only, in CPU milliseconds of this process (a loaded machine stretches wall
time, much less CPU time).  Outputs are cached
per engine under bench/.cache/extraction/ (not committed); scores go to the
``extraction`` section of bench/results.json and to docs/EXTRACTION.md.
Optional engines need ``pip install -e ".[bench]"`` (readability-lxml, gne).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import extraction_metrics as em  # noqa: E402
from results import merge_section  # noqa: E402

CACHE = REPO / "bench" / ".cache" / "extraction"
DOC = REPO / "docs" / "EXTRACTION.md"
LOW_F1 = 0.5  # pages below this F1 for trafilatura are listed one by one (issue #38)


def _base_options(**over) -> dict:
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.extract_worker import extraction_options

    return {**extraction_options(load_config().extract), **over}


def _mdfs(**over):
    from mdfs.pipeline.stages.extract_worker import extract_text

    opts = _base_options(**over)
    return lambda html, url: extract_text(html, url, opts)


def _readability():
    from readability import Document
    from resiliparse.extract.html2text import extract_plain_text

    # readability returns HTML; resiliparse's plain converter (main_content off) only turns it into text
    return lambda html, url: extract_plain_text(Document(html).summary(html_partial=True), main_content=False)


def _justext():
    import justext

    def run(html, url):  # an empty stop list is jusText's language-independent mode (no Chinese list exists)
        paras = justext.justext(html.encode("utf-8", "surrogatepass"), frozenset(), stopwords_low=0,
                                stopwords_high=0, encoding="utf-8")
        return "\n".join(p.text for p in paras if not p.is_boilerplate)
    return run


def _gne():
    from gne import GeneralNewsExtractor

    ex = GeneralNewsExtractor()
    return lambda html, url: ex.extract(html).get("content", "")


def _resiliparse_nocomments():
    from resiliparse.extract.html2text import extract_plain_text

    from mdfs.pipeline.stages.extract_worker import unhide_wechat_body

    return lambda html, url: extract_plain_text(unhide_wechat_body(html), main_content=True, list_bullets=True,
                                                alt_texts=False, links=False, form_fields=False, noscript=False,
                                                comments=False)


ENGINES = {  # name -> (what it is, factory of a function html, url -> text)
    "trafilatura": ("trafilatura 2.3.1, mdfs's defaults (pipeline/defaults.yaml): resiliparse fallback "
                    "below 0.3 of its tokens, WeChat body unhidden", lambda: _mdfs()),
    "trafilatura_nofallback": ("trafilatura 2.3.1, mdfs's settings before issue #38 (no fallback)",
                               lambda: _mdfs(fallback_min_share=0)),
    "trafilatura_recall": ("trafilatura, favor_recall, no fallback",
                           lambda: _mdfs(favor="recall", fallback_min_share=0)),
    "trafilatura_precision": ("trafilatura, favor_precision, no fallback",
                              lambda: _mdfs(favor="precision", fallback_min_share=0)),
    "resiliparse": ("resiliparse 2.0.1, mdfs `extract.engine: resiliparse` (datatrove's Resiliparse settings, "
                    "WeChat body unhidden)", lambda: _mdfs(engine="resiliparse")),
    "resiliparse_nocomments": ("resiliparse 2.0.1, datatrove's settings but `comments=False` (WeChat body unhidden)",
                               _resiliparse_nocomments),
    "readability": ("readability-lxml 0.9 summary, as plain text", _readability),
    "justext": ("jusText 3.0, language-independent (empty stop list)", _justext),
    "gne": ("gne 0.4 (GeneralNewsExtractor, Chinese news)", _gne),
}


def load_pages(data: Path) -> list[dict]:
    from mdfs.pipeline.io.payload import decode_html

    pages = []
    for kind in ("article", "forum"):
        truth = json.loads(gzip.open(data / "magic-html" / f"{kind}_groundtruth.json.gz").read())
        lines = (data / "magic-html" / f"{kind}_index.tsv").read_text().splitlines()[1:]
        for line in lines:
            name, url, lang = line.split("\t")[:3]
            key = name.removesuffix(".html.gz")
            ref = truth.get(key, {}).get("content", "")
            html = decode_html(gzip.open(data / "magic-html" / kind / name).read())[0]
            half = None
            if lang == "zh":
                half = "tune" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "held"
            pages.append({"id": f"mh/{kind}/{key}", "set": "magic", "kind": kind, "url": url, "html": html,
                          "lang": lang if lang in ("zh", "en") else "other", "ref": ref, "half": half})
    evald = json.loads((data / "trafilatura-eval" / "evaldata_subset.json").read_text())
    by_file = {v["file"]: v for v in evald.values()}
    for line in (data / "trafilatura-eval" / "index.tsv").read_text().splitlines()[1:]:
        name, url = line.split("\t")[:2]
        item = by_file.get(name.removesuffix(".gz"))
        if item is None:
            continue
        html = decode_html(gzip.open(data / "trafilatura-eval" / "pages" / name).read())[0]
        pages.append({"id": f"te/{name}", "set": "snippets", "url": url, "html": html,
                      "with": item.get("with", []), "without": item.get("without", [])})
    return pages


def run_engine(name: str, pages: list[dict]) -> dict:
    fn = ENGINES[name][1]()
    try:  # warm-up, untimed: the first call imports the library
        fn(pages[0]["html"], pages[0]["url"])
    except Exception:  # noqa: BLE001 - scored below like any other page
        pass
    out, ms, errors = {}, [], 0
    for p in pages:  # CPU time of this process: a shared, loaded machine inflates wall time, not this
        t0 = time.process_time()
        try:
            text = fn(p["html"], p["url"]) or ""
        except Exception:  # noqa: BLE001 - an extractor that raises on a page scores empty there
            text, errors = "", errors + 1
        ms.append((time.process_time() - t0) * 1000)
        out[p["id"]] = text
    return {"engine": name, "outputs": out, "ms": ms, "errors": errors}


def _mean(xs):
    return round(statistics.fmean(xs), 3) if xs else None


def score(name: str, cached: dict, pages: list[dict]) -> dict:
    rows, snip = [], {"tp": 0, "fn": 0, "fp": 0, "tn": 0}
    for p in pages:
        text = cached["outputs"].get(p["id"], "")
        if p["set"] == "snippets":
            for k, v in em.snippet_counts(text, p["with"], p["without"]).items():
                snip[k] += v
            continue
        if not p["ref"].strip():
            continue
        out_t, ref_t = em.tokens(text), em.tokens(p["ref"])
        bp, br, bf = em.bag_scores(out_t, ref_t)
        rp, rr, rf = em.rouge_l(out_t, ref_t)
        mode = em.failure_mode(out_t, bp, br, p["comments"], text)
        rows.append({"id": p["id"], "url": p["url"], "lang": p["lang"], "kind": p["kind"], "half": p["half"],
                     "p": round(bp, 3), "r": round(br, 3), "f1": round(bf, 3), "rouge_l": round(rf, 3),
                     "mode": mode, "out_tokens": len(out_t), "ref_tokens": len(ref_t),
                     "head": em.normalise(text)[:80]})
    groups = {"all": rows, "zh": [r for r in rows if r["lang"] == "zh"],
              "en": [r for r in rows if r["lang"] == "en"], "other": [r for r in rows if r["lang"] == "other"],
              "article": [r for r in rows if r["kind"] == "article"],
              "forum": [r for r in rows if r["kind"] == "forum"],
              "zh_article": [r for r in rows if r["lang"] == "zh" and r["kind"] == "article"],
              "zh_forum": [r for r in rows if r["lang"] == "zh" and r["kind"] == "forum"],
              "zh_tune": [r for r in rows if r["half"] == "tune"],
              "zh_held": [r for r in rows if r["half"] == "held"]}
    agg = {g: {"n": len(rs), "p": _mean([r["p"] for r in rs]), "r": _mean([r["r"] for r in rs]),
               "f1": _mean([r["f1"] for r in rs]), "rouge_l": _mean([r["rouge_l"] for r in rs])}
           for g, rs in groups.items()}
    sp = snip["tp"] / max(snip["tp"] + snip["fp"], 1)
    sr = snip["tp"] / max(snip["tp"] + snip["fn"], 1)
    modes = {}
    for r in rows:
        modes[r["mode"]] = modes.get(r["mode"], 0) + 1
    return {"what": ENGINES[name][0], "magic": agg, "modes": modes,
            "snippets": {**snip, "precision": round(sp, 3), "recall": round(sr, 3), "f1": round(em.prf(sp, sr), 3)},
            "ms_mean": round(statistics.fmean(cached["ms"]), 2), "ms_median": round(statistics.median(cached["ms"]), 2),
            "errors": cached["errors"], "pages": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"), help="the shared data folder")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--refresh", action="store_true", help="re-run the named engines even if cached")
    ap.add_argument("--render", action="store_true", help="score cached outputs only, run nothing")
    args = ap.parse_args(argv)
    names = [n for n in args.engines.split(",") if n]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        print(f"error: unknown engine(s) {unknown}; known: {list(ENGINES)}", file=sys.stderr)
        return 2
    if not (args.shared / "html" / "magic-html").is_dir():
        print(f"error: {args.shared}/html/magic-html not found (give --shared)", file=sys.stderr)
        return 2
    pages = load_pages(args.shared / "html")
    for p in pages:
        if p["set"] == "magic":
            p["comments"] = em.comment_lines(p["html"], p["ref"])
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = CACHE / f"{name}.json"
        if not args.render and (args.refresh or not path.exists()):
            print(f"running {name} on {len(pages)} pages ...", file=sys.stderr)
            path.write_text(json.dumps(run_engine(name, pages), ensure_ascii=False))
    scores = {name: score(name, json.loads((CACHE / f"{name}.json").read_text()), pages)
              for name in ENGINES if (CACHE / f"{name}.json").exists()}  # every engine cached so far
    from eval_extraction_doc import write_doc

    summary = {k: {kk: vv for kk, vv in v.items() if kk != "pages"} for k, v in scores.items()}
    merge_section("extraction", summary)
    write_doc(scores, DOC)
    for k, v in summary.items():
        m = v["magic"]
        print(f"{k:24s} F1 all {m['all']['f1']} zh {m['zh']['f1']} (tune {m['zh_tune']['f1']} held "
              f"{m['zh_held']['f1']}) en {m['en']['f1']} RL {m['all']['rouge_l']} snip P/R "
              f"{v['snippets']['precision']}/{v['snippets']['recall']} ms {v['ms_mean']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
