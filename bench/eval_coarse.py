"""Accuracy of the coarse stage, measured by running the pipeline (extraction
included) on labelled pages from ../shared/data (read there, never committed).

  python bench/eval_coarse.py [--shared ../shared/data] [--out docs/COARSE_FILTERING.md]

* kept share of the human-labelled Chinese and English article pages of
  magic-html (real articles: the target is >= 90 % kept);
* dropped share, with reasons, of the Common Crawl CC-MAIN-2020-34 sample
  (mostly Chinese porn/gambling/lottery SEO spam) and of ChineseWebText's
  `dirty` set (its `clean` set as the control).
Thresholds are the configured defaults (from the papers), not fitted here.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import gzip
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.build import build_pipeline
from mdfs.pipeline.config import load_config

REPO = Path(__file__).resolve().parents[1]


def wrap_articles(shared: Path, lang: str, out: Path) -> int:
    base = shared / "html" / "magic-html"
    n = 0
    with open(out, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        with open(base / "article_index.tsv", encoding="utf-8") as idx:
            for row in csv.DictReader(idx, delimiter="\t"):
                if row["lang_detected_on_groundtruth"] != lang:
                    continue
                html = gzip.decompress((base / "article" / row["file"]).read_bytes())
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                w.write_record(
                    w.create_warc_record(row["url"], "response", payload=io.BytesIO(html), http_headers=http)
                )
                n += 1
    return n


def to_jsonl(src: Path, out: Path) -> int:
    rows = [json.loads(line) for line in open(src, encoding="utf-8")]
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(
                json.dumps({"text": r["text"], "url": (r.get("info") or {}).get("url")}, ensure_ascii=False) + "\n"
            )
    return len(rows)


def run_sets(sources: list[str], out: Path, sets: list[str]):
    """One pipeline run over the evaluation sets: (funnel, dropped rows, kept rows, seconds)."""
    # exact dedup off: every page is judged on its own
    cfg = load_config(sources=sources, sets=["exact_dedup.enabled=false", "source_defaults.languages=[]", *sets])
    for name in cfg.sources:  # languages: articles keep zh/en as in production; others judged on rules
        cfg.sources[name].languages = ["zh", "en"]
    t0 = time.time()
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        build_pipeline(p, cfg, str(out))
    elapsed = time.time() - t0
    funnel = json.loads((out / "funnel.json").read_text())
    dropped = ds.dataset(str(out / "dropped")).to_table().to_pylist()
    kept = ds.dataset(str(out / "kept")).to_table().to_pylist()
    return funnel, dropped, kept, elapsed


def sentence_ends_sweep(sources: list[str], tmp: Path) -> list[str]:
    """C4's "3 sentences" for Chinese: keep rate of real articles against the drop
    rate of spam/list pages for each value of coarse.zh.min_sentence_ends."""
    lines = ["", "## Chinese sentence-end minimum: the trade-off", "",
             "The same run for each `coarse.zh.min_sentence_ends` (all other settings default). Articles: the "
             "magic-html Chinese article pages; spam/lists: the Common Crawl SEO-spam sample and ChineseWebText's "
             "`dirty` set.", "",
             "| min_sentence_ends | articles_zh kept | cc_spam_sample dropped | cwt_dirty dropped | "
             "pages dropped by few_sentences |", "|---:|---:|---:|---:|---:|"]
    for n in (1, 2, 3, 4):
        funnel, dropped, _, _ = run_sets(sources, tmp / f"sweep{n}", [f"coarse.zh.min_sentence_ends={n}"])
        s = funnel["sources"]
        few = sum(1 for r in dropped if r["reason"] == "few_sentences")
        lines.append(f"| {n} | {s['articles_zh']['kept']}/{s['articles_zh']['read']} | "
                     f"{s['cc_spam_sample']['dropped']}/{s['cc_spam_sample']['read']} | "
                     f"{s['cwt_dirty']['dropped']}/{s['cwt_dirty']['read']} | {few} |")
        ends = sorted(r["detail"].split("<")[0] for r in dropped if r["reason"] == "few_sentences")
    lines += ["", f"Every page the rule drops here has {', '.join(sorted(set(ends)))} sentence ends (the journal "
              "listing page among the articles, the spam list pages), so any minimum from 1 to 4 draws the same "
              "line on these sets. The default is 2, not C4's 3: a real two-sentence news brief (269 characters, "
              "a government notice) is prose and is kept, while headline and keyword lists, which have none, "
              "stay dropped (`tests/test_coarse_rules.py` plants both)."]
    return lines


def garbled_basis(kept: list[dict]) -> list[str]:
    """The garbled-text threshold against what real articles carry and what mojibake looks like."""
    from mdfs.pipeline.stages.rules.common import TextView
    from mdfs.pipeline.stages.rules.zh import garbled_share

    articles = [r["text"] for r in kept if r["source"] == "articles_zh"]
    real = sorted(garbled_share(TextView(t)) for t in articles)
    # the same articles as mojibake: UTF-8 read as GBK and as cp1252, the two common failures
    mojibake = sorted(garbled_share(TextView(t.encode("utf-8").decode(enc, "replace"))) for t in articles
                      for enc in ("gbk", "cp1252"))
    return ["", "## The garbled-text threshold", "",
            f"`coarse.zh.max_garbled_share` (0.01) measured after normalisation removes isolated U+FFFD "
            f"(counted as `replacement_chars_removed` in `funnel.json`): on the {len(real)} kept Chinese "
            f"articles the garbled share is at most {real[-1]:.4f} (median {real[len(real) // 2]:.4f}); the same "
            f"articles turned into mojibake (UTF-8 read as GBK or cp1252) have at least {mojibake[0]:.4f} "
            f"(median {mojibake[len(mojibake) // 2]:.4f}). The threshold sits between the two."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "COARSE_FILTERING.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-eval-coarse-"))
    (tmp / "in").mkdir()
    n_zh = wrap_articles(args.shared, "zh", tmp / "in" / "articles_zh.warc.gz")
    n_en = wrap_articles(args.shared, "en", tmp / "in" / "articles_en.warc.gz")
    to_jsonl(args.shared / "labeled/zh_quality_chinesewebtext/dirty.jsonl", tmp / "in" / "cwt_dirty.jsonl")
    to_jsonl(args.shared / "labeled/zh_quality_chinesewebtext/clean.jsonl", tmp / "in" / "cwt_clean.jsonl")
    sources = [
        f"articles_zh={tmp}/in/articles_zh.warc.gz",
        f"articles_en={tmp}/in/articles_en.warc.gz",
        f"cc_spam_sample={args.shared}/warc/cc-main-2020-34_sample_resiliparse.warc.gz",
        f"cwt_dirty={tmp}/in/cwt_dirty.jsonl",
        f"cwt_clean={tmp}/in/cwt_clean.jsonl",
    ]
    funnel, dropped, kept, elapsed = run_sets(sources, tmp / "out", [])

    lines = [
        "# Coarse filtering: measured accuracy",
        "",
        f"Generated by `python bench/eval_coarse.py` on {datetime.date.today().isoformat()} "
        f"({platform.python_version()}, {platform.machine()}); pipeline run of {elapsed:.0f} s, extraction included.",
        "Thresholds are the defaults in `pipeline/defaults.yaml` (from ChineseWebText, Gopher, C4, FineWeb),",
        "not fitted to these pages. The input data is read from `../shared/data` and is not in the repository.",
        "",
        "| set | what | records | kept | dropped | failed | kept share | target |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    targets = {
        "articles_zh": "≥ 90 % kept",
        "articles_en": "≥ 90 % kept",
        "cc_spam_sample": "most dropped",
        "cwt_dirty": "most dropped",
        "cwt_clean": "control: most kept",
    }
    what = {
        "articles_zh": f"magic-html Chinese article pages ({n_zh})",
        "articles_en": f"magic-html English article pages ({n_en})",
        "cc_spam_sample": "CC-MAIN-2020-34 sample: Chinese SEO spam and others",
        "cwt_dirty": "ChineseWebText `dirty` (labelled low quality)",
        "cwt_clean": "ChineseWebText `clean` (labelled high quality)",
    }
    for name in ["articles_zh", "articles_en", "cc_spam_sample", "cwt_dirty", "cwt_clean"]:
        e = funnel["sources"][name]
        lines.append(
            f"| `{name}` | {what[name]} | {e['read']} | {e['kept']} | {e['dropped']} | {e['failed']} | "
            f"{e['kept'] / max(e['read'], 1):.1%} | {targets[name]} |"
        )
    lines += [
        "",
        "## Reading the figures",
        "",
        "* The Chinese article pages that are dropped are, in the main, pages whose text is shorter than "
        "ChineseWebText's 200-character minimum (short news flashes), a poem (mean line length under 10), "
        "a journal listing page, and one page the index calls Chinese that is Japanese "
        "(magazine.tabelog.com), which language ID drops correctly. The 200-character minimum is a policy; "
        "`--set coarse.zh.min_chars=100` keeps short news at the cost of more fragments.",
        "* ChineseWebText's `dirty` documents are training data for its quality classifier, taken (as far as "
        "the repository shows) from text that had already passed its rule stage: their low "
        "quality (gambling keywords spliced into copied news, lists of article titles) is what the fine "
        "classifier (BERT/fastText, issue #5) is for. The rules still catch what is mechanically wrong.",
        "* In the Common Crawl sample, the SEO spam pages fall to the length, line-length, sentence, "
        "punctuation and sensitive-word rules; the non-Chinese pages to language ID. The one page kept is a "
        "gambling promotion written in ordinary sentences: again the classifier's case.",
        "",
        "## Why documents were dropped",
        "",
    ]
    for name in ["articles_zh", "articles_en", "cc_spam_sample", "cwt_dirty", "cwt_clean"]:
        reasons = collections.Counter(f"{r['stage']}/{r['reason']}" for r in dropped if r["source"] == name)
        lines.append(f"**{name}**: " + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"))
        lines.append("")
    lines += [
        "## Every dropped page of the article sets (for review)",
        "",
        "| set | url | stage/reason | detail |",
        "|---|---|---|---|",
    ]
    for r in sorted(dropped, key=lambda r: (r["source"], r["reason"])):
        if r["source"].startswith("articles"):
            lines.append(
                f"| {r['source']} | {(r['url'] or '')[:90]} | {r['stage']}/{r['reason']} | {r['detail'] or ''} |"
            )
    lines += ["", "## Spam sample: outcome per page", "", "| url | outcome | detail |", "|---|---|---|"]
    for r in dropped:
        if r["source"] == "cc_spam_sample":
            lines.append(f"| {(r['url'] or '')[:80]} | dropped: {r['stage']}/{r['reason']} | {r['detail'] or ''} |")
    for r in kept:
        if r["source"] == "cc_spam_sample":
            lines.append(f"| {(r['url'] or '')[:80]} | kept ({r['language']}) | {r['text'][:60]!r} |")
    lines += sentence_ends_sweep(sources, tmp)
    lines += garbled_basis(kept)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_coarse import measure

    speed = measure(args.shared, 3)
    lines += [
        "",
        "## Speed",
        "",
        f"All coarse rules (URL lists, normalisation, fastText language ID, script check, line cleaning, "
        f"document rules) against trafilatura extraction on the same {speed['pages']} pages of "
        "`../shared/data/html`, one core, median of 3 runs in one process (`python bench/bench_coarse.py`):",
        "",
        "| step | ms per document |",
        "|---|---:|",
        f"| trafilatura extraction | {speed['extract_ms_per_doc']:.2f} |",
        f"| all coarse rules | {speed['coarse_ms_per_doc']:.2f} |",
        f"| ratio (target <= 10 %) | {speed['coarse_over_extract']:.1%} |",
        "",
    ]
    lines += ["", "Reproduce: `python bench/eval_coarse.py` (needs `../shared/data`).", ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[:16]))
    print(f"written: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
