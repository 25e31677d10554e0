"""Language-first selection: the "keep Chinese" job on Common Crawl's language mix.

  python bench/bench_language_first.py [--records 10000] [--repeats 1] [--datatrove-python PY]
  python bench/bench_language_first.py --render      # rewrite the doc section from bench/results.json

Input: every distinct real HTML page under ../shared/data (bench/e2e.py
``gather_pages``), bucketed by the language of Common Crawl's own kind of
verdict (CLD2 over the page, bench/ccmeta.py; never a label we know), and
drawn with distinct URLs into ``--records`` response records with the
language shares of ``CC_SHARES``.  Each response is written the way Common
Crawl writes it: request, response, then a metadata record
(``WARC-Concurrent-To``) holding ``languages-cld2`` computed with CLD2 over
the page; one gzip member per record, 8 WARC.gz files, plus a Common Crawl
columnar index (Parquet, Common Crawl's column names) over them.

Task "keep Chinese", one worker each, runs alternating:
* mdfs with the gate (default ``read.language_gate: metadata+fasttext``),
  source languages ``[zh]``, dedup off (datatrove's chain has none);
* mdfs without it (``read.language_gate=off``);
* mdfs reading through the index (``format: cc_index``);
* datatrove as its users would write it: WarcReader -> Trafilatura (same
  version and settings) -> LanguageFilter(zh, the same lid.176 model) ->
  FineWeb-2's Chinese filters (cmn_Hani thresholds from huggingface/fineweb-2
  ``configs/cmn_Hani.yml``: GopherRepetition, FineWebQuality, GopherQuality,
  jieba word splitting) -> JsonlWriter.
Documents per second per core = response records / wall seconds of a
1-worker run (start-up included).  Agreement = kept ids with the gate vs.
without (Jaccard).  Bytes: what the cc_index run reads (index + selected
ranges) against the WARC files' size.

datatrove's environment (its own venv; see bench/e2e.py for why):
  python3 -m venv /tmp/dt-venv && /tmp/dt-venv/bin/pip install "datatrove[io,processing]" lxml_html_clean spacy \\
      jieba psutil && /tmp/dt-venv/bin/pip install \
      "trafilatura==$(.venv/bin/python -c 'import trafilatura; print(trafilatura.__version__)')"
mdfs side: pip install -e ".[bench]" (pycld2, psutil).
Writes the ``language_first`` section of bench/results.json and the
"Language-first selection" section of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

# Share of pages per language in recent Common Crawl main crawls, rounded, from
# Common Crawl's per-crawl language statistics (content_languages, primary
# language; https://commoncrawl.github.io/cc-crawl-statistics/plots/languages):
# English a little under half, Chinese about 5 %.  Languages with fewer real
# pages here are pooled into "other".
CC_SHARES = {"zho": 0.05, "eng": 0.45, "other": 0.50}
CC_SHARES_SOURCE = ("Common Crawl crawl statistics, languages by primary content language, 2024 crawls "
                    "(commoncrawl.github.io/cc-crawl-statistics/plots/languages): English ~45 %, Chinese ~5 %, "
                    "all other languages ~50 %; rounded, and not re-fetched on the day (no web access here)")

DATATROVE_SCRIPT = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
from datatrove.pipeline.writers import JsonlWriter
data, out, lid_model = sys.argv[1:4]
language = LanguageFilter(languages=["zh"], language_threshold=0.5)
language.model.MODEL_URL = "file://" + lid_model   # the model mdfs bundles, no download
# FineWeb-2's Chinese configuration (huggingface/fineweb-2 configs/cmn_Hani.yml, applied as its pipeline does)
LANG = "cmn_Hani"
STOP = ["\u7684", "\u5e74", "\u5728", "\u6708", "\u662f", "\u548c", "\u65e5", "\u4e86", "\u65bc", "\xb7", "\u70ba",
        "\u6709", "\u88ab", "\u4eba", "\u4e2d", "\u4e3a", "\u4ed6", "\u8207", "\u5f8c", "\u4e5f", "\u800c", "\u7531"]
LocalPipelineExecutor(
    pipeline=[
        WarcReader(data, glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=False, deduplicate=False, timeout=20.0),
        language,
        GopherRepetitionFilter(language=LANG, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                               dup_line_frac=0.287, top_n_grams=((2, 0.256), (3, 0.201), (4, 0.171)),
                               dup_n_grams=((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127))),
        FineWebQualityFilter(language=LANG, short_line_thr=999, char_duplicates_ratio=0.1, line_punct_thr=0.106,
                             new_line_ratio=0.178),
        GopherQualityFilter(language=LANG, max_avg_word_length=5, min_avg_word_length=1, stop_words=STOP,
                            max_non_alpha_words_ratio=0.735, min_stop_words=2),
        JsonlWriter(out + "/kept"),
    ],
    tasks=8, workers=1, logging_dir=out + "/logs",
).run()
"""


def bucket_pages(pages) -> tuple[dict, list]:
    """pages -> {bucket: [(url, body, ctype, verdict)]} by the top language of the CLD2 verdict."""
    from ccmeta import cld2_verdict

    from mdfs.pipeline.io.payload import charset_from_content_type

    buckets: dict[str, list] = {"zho": [], "eng": [], "other": []}
    for url, body, ctype in pages:
        verdict = cld2_verdict(body, charset_from_content_type(ctype), url)
        top = verdict["languages"][0]["code-iso-639-3"] if verdict and verdict["languages"] else "und"
        buckets[top if top in buckets else "other"].append((url, body, ctype, verdict))
    return buckets


def build_input(buckets: dict, n: int, folder: Path, n_files: int = 8) -> dict:
    """Common Crawl-style WARC files and their columnar index; returns counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from ccmeta import metadata_block

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_files):
        name = f"CC-BENCH-{i:05d}.warc.gz"
        fh = open(folder / name, "wb")
        w = WARCWriter(fh, gzip=True)
        w.write_record(w.create_warcinfo_record(name, {"software": "mdfs bench", "isPartOf": "CC-BENCH"}))
        files.append((name, fh, w))
    plan = []
    for bucket, share in CC_SHARES.items():
        plan += [bucket] * round(n * share)
    plan = plan[:n] + ["eng"] * max(0, n - len(plan))
    # a fixed permutation (7919 is prime) spreads each language over the files
    order = sorted(range(len(plan)), key=lambda i: (i * 7919) % len(plan))
    index = {c: [] for c in ("url", "fetch_status", "content_mime_detected", "content_languages", "content_charset",
                             "warc_filename", "warc_record_offset", "warc_record_length", "subset")}
    used = {b: 0 for b in CC_SHARES}
    for k, idx in enumerate(order):
        bucket = plan[idx]
        pool = buckets[bucket]
        url, body, ctype, verdict = pool[used[bucket] % len(pool)]
        used[bucket] += 1
        url = f"{url}{'&' if '?' in url else '?'}replica={k}"
        name, fh, w = files[k % n_files]
        req = w.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"),
                                   warc_content_type="application/http; msgtype=request")
        w.write_record(req)
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        resp = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                    warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"})
        start = fh.tell()
        w.write_record(resp)
        length = fh.tell() - start
        rid = resp.rec_headers.get_header("WARC-Record-ID")
        meta = w.create_warc_record(url, "metadata", payload=io.BytesIO(metadata_block(verdict)),
                                    warc_content_type="application/warc-fields",
                                    warc_headers_dict={"WARC-Concurrent-To": rid})
        w.write_record(meta)
        langs = ",".join(e["code-iso-639-3"] for e in (verdict or {}).get("languages", [])[:3]) or None
        for col, val in (("url", url), ("fetch_status", 200), ("content_mime_detected", "text/html"),
                         ("content_languages", langs), ("content_charset", None), ("warc_filename", name),
                         ("warc_record_offset", start), ("warc_record_length", length), ("subset", "warc")):
            index[col].append(val)
    for _, fh, _ in files:
        fh.close()
    (folder.parent / "index").mkdir(exist_ok=True)
    pq.write_table(pa.table(index), folder.parent / "index" / "part-00000.parquet")
    return {"records": n, "by_bucket": {b: used[b] for b in CC_SHARES},
            "distinct_pages": {b: len(p) for b, p in buckets.items()}}


def mdfs_cmd(source: list[str], out: Path, sets: list[str], config: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out), "--overwrite"]
    if config:
        cmd += ["--config", str(config)]
    for s in source:
        cmd += ["--source", s]
    for s in ["source_defaults.languages=[zh]", "exact_dedup.enabled=false", "near_dedup.enabled=false",
              "read.progress_every_s=600", *sets]:
        cmd += ["--set", s]
    return cmd


def kept_ids(out: Path) -> set:
    import pyarrow.parquet as pq

    ids = set()
    for f in sorted((out / "kept").glob("*.parquet")):
        ids.update(pq.read_table(f, columns=["url"]).column("url").to_pylist())
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the slow runs (no gate, datatrove)")
    ap.add_argument("--fast-repeats", type=int, default=3, help="rounds of the gated and index runs")
    ap.add_argument("--datatrove-python", default="/tmp/dt-venv/bin/python")
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--only-fast-engine", action="store_true",
                    help="run only the gated mdfs and its extract.engine=resiliparse variant, alternating, and add "
                         "their figures to the saved results")
    args = ap.parse_args(argv)
    from results import load, merge_section

    if args.render:
        return write_doc(load()["language_first"])
    from e2e import gather_pages, timed, versions

    vers = versions(args.datatrove_python)
    if vers["mdfs_trafilatura"] != vers["datatrove_trafilatura"]:
        sys.exit(f"trafilatura differs: mdfs {vers['mdfs_trafilatura']}, datatrove {vers['datatrove_trafilatura']}")
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="mdfs-langfirst-"))
    buckets = bucket_pages(gather_pages(args.shared))
    counts = build_input(buckets, args.records, work / "warc")
    warc_glob = f"bench={work}/warc/*.warc.gz"
    cfg = work / "index.yaml"
    cfg.write_text(f"sources:\n  bench:\n    format: cc_index\n    paths: ['{work}/index/*.parquet']\n"
                   f"    warc_root: '{work}/warc'\n")
    script = work / "dt.py"
    script.write_text(DATATROVE_SCRIPT)
    lid = str(REPO / "classifiers" / "models" / "lid.176.ftz")
    runs = {
        "mdfs": lambda o: mdfs_cmd([warc_glob], o, []),
        "mdfs_no_gate": lambda o: mdfs_cmd([warc_glob], o, ["read.language_gate=off"]),
        "mdfs_cc_index": lambda o: mdfs_cmd([], o, [], cfg),
        "datatrove": lambda o: [args.datatrove_python, str(script), str(work / "warc"), str(o), lid],
        "mdfs_resiliparse": lambda o: mdfs_cmd([warc_glob], o, ["extract.engine=resiliparse"]),
    }
    if args.only_fast_engine:
        runs = {k: runs[k] for k in ("mdfs", "mdfs_resiliparse")}
    slow = {"mdfs_no_gate", "datatrove"}
    results = {k: [] for k in runs}
    kept = {}
    rounds = max(args.repeats, args.fast_repeats)
    for r in range(rounds):
        for name, cmd in runs.items():
            if name in slow and r >= args.repeats or name not in slow and r >= args.fast_repeats:
                continue
            out = work / f"out-{name}-{r}"
            res = timed(cmd(out))
            results[name].append(res)
            print(name, r, {k: round(v, 1) for k, v in res.items()}, flush=True)
            if name.startswith("mdfs") and name not in kept:
                kept[name] = kept_ids(out)
                kept[name + "_funnel"] = json.loads((out / "funnel.json").read_text())
            if name == "datatrove" and "datatrove" not in kept:
                kept["datatrove_docs"] = sum(1 for f in (out / "kept").glob("*.jsonl*") for _ in _lines(f))
    n = counts["records"]
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("seconds", "cpu_seconds", "peak_rss_total_mb")}
           for k, v in results.items()}
    rate = {k: round(n / v["seconds"], 2) for k, v in med.items()}
    fast = {"date": datetime.date.today().isoformat(), "records": n, "runs": {k: len(results[k]) for k in ("mdfs", "mdfs_resiliparse")},
            "docs_per_s_per_core": {k: rate[k] for k in ("mdfs", "mdfs_resiliparse")},
            "medians": {k: {m: round(x, 2) for m, x in med[k].items()} for k in ("mdfs", "mdfs_resiliparse")},
            "ratio_vs_default": round(rate["mdfs_resiliparse"] / rate["mdfs"], 2),
            "kept": {k: len(kept[k]) for k in ("mdfs", "mdfs_resiliparse")},
            "kept_both": len(kept["mdfs"] & kept["mdfs_resiliparse"])}
    if args.only_fast_engine:
        res = load()["language_first"]
        res["fast_engine"] = fast
        merge_section("language_first", res)
        write_doc(res)
        print(json.dumps(fast, indent=1))
        return
    a, b = kept["mdfs"], kept["mdfs_no_gate"]
    warc_bytes = sum(f.stat().st_size for f in (work / "warc").glob("*.warc.gz"))
    index_file = work / "index" / "part-00000.parquet"
    import pyarrow.parquet as pq

    table = pq.read_table(index_file)
    selected = [l for l, langs in zip(table.column("warc_record_length").to_pylist(),
                                      table.column("content_languages").to_pylist())
                if langs is None or "zho" in langs.split(",")]
    res = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "versions": vers, "input": counts, "shares": CC_SHARES, "shares_source": CC_SHARES_SOURCE,
        "zh_share": CC_SHARES["zho"],
        "runs": {k: len(v) for k, v in results.items()},
        "medians": {k: {m: round(x, 2) for m, x in v.items()} for k, v in med.items()},
        "docs_per_s_per_core": {"mdfs": rate["mdfs"], "mdfs_no_gate": rate["mdfs_no_gate"],
                                "mdfs_cc_index": rate["mdfs_cc_index"], "datatrove": rate["datatrove"]},
        "ratio_vs_datatrove": round(rate["mdfs"] / rate["datatrove"], 2),
        "ratio_vs_no_gate": round(rate["mdfs"] / rate["mdfs_no_gate"], 2),
        "ratio_cc_index_vs_datatrove": round(rate["mdfs_cc_index"] / rate["datatrove"], 2),
        "agreement": round(len(a & b) / max(len(a | b), 1), 4),
        "kept": {"mdfs": len(a), "mdfs_no_gate": len(b), "mdfs_cc_index": len(kept["mdfs_cc_index"]),
                 "both": len(a & b), "datatrove": kept.get("datatrove_docs")},
        "gate_drops": kept["mdfs_funnel"]["sources"]["bench"]["dropped_by_reason"].get("read/language_prefilter", 0),
        "bytes": {"warc_files": warc_bytes, "index": index_file.stat().st_size,
                  "selected_ranges": sum(selected), "selected_rows": len(selected),
                  "share_read": round((sum(selected) + index_file.stat().st_size) / warc_bytes, 4)},
        "benchmark_minutes": round((time.perf_counter() - began) / 60, 1),
        "fast_engine": fast,
    }
    merge_section("language_first", res)
    write_doc(res)
    print(json.dumps(res, indent=1))


def _lines(path: Path):
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        yield from fh


def write_doc(r: dict) -> None:
    from results import replace_section

    d, m = r["docs_per_s_per_core"], r["medians"]
    by = r["input"]["by_bucket"]
    distinct = r["input"]["distinct_pages"]
    L = ["",
         f"`python bench/bench_language_first.py --records {r['input']['records']}` on {r['date']} ({r['machine']}), "
         f"{r['benchmark_minutes']} minutes; runs per side: "
         + ", ".join(f"{k} {v}" for k, v in r["runs"].items()) + " (alternating; medians). "
         f"trafilatura {r['versions']['mdfs_trafilatura']} on both sides (datatrove {r['versions']['datatrove']}).",
         "",
         f"**Task: keep Chinese** from {r['input']['records']:,} Common Crawl-style response records (each with its "
         f"request and its metadata record, one gzip member each, 8 WARC.gz files). Language shares: "
         f"Chinese {by['zho']:,}, English {by['eng']:,}, other {by['other']:,} records, drawn from "
         f"{distinct['zho']}, {distinct['eng']} and {distinct['other']} distinct real pages (bucketed by the CLD2 "
         f"verdict, never by a known label). Shares: {r['shares_source']}. The metadata records hold CLD2's verdict "
         "computed over each page as Common Crawl does (bench/ccmeta.py; checked against real Common Crawl records "
         "in docs/LANGUAGE_GATE.md).",
         "",
         "| run | docs/s per core | wall s | CPU s | peak RSS MB | kept |",
         "|---|---:|---:|---:|---:|---:|"]
    names = {"mdfs": "mdfs, language gate (default)", "mdfs_no_gate": "mdfs, `read.language_gate=off`",
             "mdfs_cc_index": "mdfs, `format: cc_index` (index + byte ranges)",
             "datatrove": "datatrove: WarcReader, Trafilatura, LanguageFilter(zh), FineWeb-2 cmn_Hani filters"}
    for k in ("mdfs", "mdfs_no_gate", "mdfs_cc_index", "datatrove"):
        L.append(f"| {names[k]} | {d[k]:.1f} | {m[k]['seconds']:.1f} | {m[k]['cpu_seconds']:.1f} | "
                 f"{m[k]['peak_rss_total_mb']:.0f} | {r['kept'].get(k) if r['kept'].get(k) is not None else ''} |")
    b = r["bytes"]
    L += ["",
          f"- **mdfs with the gate / datatrove: {r['ratio_vs_datatrove']}x** documents per second per core; "
          f"with the gate / without: {r['ratio_vs_no_gate']}x; cc_index / datatrove: {r['ratio_cc_index_vs_datatrove']}x.",
          f"- Kept documents with the gate vs. without: {r['agreement']:.2%} identical (Jaccard of kept URLs; "
          f"{r['kept']['both']} in both). The gate dropped {r['gate_drops']:,} pages before extraction.",
          f"- Bytes read through the index: {b['share_read']:.2%} of the WARC files ({b['selected_rows']:,} selected "
          f"ranges, {b['selected_ranges']:,} bytes, plus the {b['index']:,}-byte index, against {b['warc_files']:,} "
          "bytes). On real Common Crawl files the share is smaller still: their request and metadata records, and "
          "non-HTML captures, are never read.",
          "- The two sides keep different counts because their rules differ (mdfs's coarse Chinese rules against "
          "FineWeb-2's); the work per page is the same up to the rules, and the extraction that dominates is "
          "identical."]
    f = r.get("fast_engine")
    if f:
        fm = f["medians"]["mdfs_resiliparse"]
        L += ["", f"**Fast engine** (`--only-fast-engine`, {f['date']}; runs: "
              + ", ".join(f"{k} {v}" for k, v in f["runs"].items())
              + f", alternating on a freshly built input of {f['records']:,} records with the same shares; medians):", "",
              "| run | docs/s per core | wall s | CPU s | kept |", "|---|---:|---:|---:|---:|",
              f"| mdfs, language gate, `extract.engine: resiliparse` | {f['docs_per_s_per_core']['mdfs_resiliparse']:.1f} "
              f"| {fm['seconds']:.1f} | {fm['cpu_seconds']:.1f} | {f['kept']['mdfs_resiliparse']} |",
              f"| mdfs, language gate (default engine), same rounds | {f['docs_per_s_per_core']['mdfs']:.1f} | "
              f"{f['medians']['mdfs']['seconds']:.1f} | {f['medians']['mdfs']['cpu_seconds']:.1f} | {f['kept']['mdfs']} |",
              "", f"- resiliparse / default: **{f['ratio_vs_default']}x** documents per second per core (wall), "
              f"{f['medians']['mdfs']['cpu_seconds'] / fm['cpu_seconds']:.2f}x per CPU second; "
              f"{f['kept_both']} documents kept by both. The gate drops most pages before extraction, so the "
              "engine matters less here than end to end (docs/EXTRACTION.md has the quality cost)."]
    replace_section("## Language-first selection", L)


if __name__ == "__main__":
    main()
