"""End-to-end benchmark: mdfs against datatrove on the same work, same input.

  python bench/e2e.py [--shared ../shared/data] [--docs 2000] [--repeats 3] [--datatrove-python PY]

Input: every distinct real HTML page found under ../shared/data (magic-html,
trafilatura-eval, and the HTML responses of the sample WARCs), wrapped as WARC
response records and replicated with distinct URLs to --docs records, in 8
WARC.gz files.  Work on every record, on both sides: WARC read, trafilatura
extraction (favor_precision off, deduplicate off, same timeout), quality rules
(datatrove: GopherQualityFilter; mdfs: its whole coarse stage, which includes
Gopher-equivalent rules and more), MinHash signatures (112 hashes = 14 bands x
8 rows, 5-gram shingles), writing the kept documents.  Dedup decisions are off
on both sides (mdfs: exact_dedup off, near_dedup.decisions false), so
replicas are not dropped early.  mdfs: DirectRunner in-process (1 worker) and
multi_processing (2 workers); datatrove: LocalPipelineExecutor with 1 and 2
workers; runs alternate, medians reported.  Also: a per-stage profile of
mdfs, and peak RSS of mdfs at 1x and 10x the input.

datatrove is a benchmark-only dependency installed in its own virtual
environment (it pins other versions of fastText and numpy):
  python3 -m venv /tmp/dt-venv && /tmp/dt-venv/bin/pip install "datatrove[processing]" trafilatura lxml_html_clean
Writes docs/PERFORMANCE.md and bench/results.json.
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DATATROVE_SCRIPT = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.pipeline.writers import JsonlWriter
data, out, workers, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
LocalPipelineExecutor(
    pipeline=[
        WarcReader(data, glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=False, deduplicate=False, timeout=20.0),
        GopherQualityFilter(),
        JsonlWriter(out + "/kept"),
        MinhashDedupSignature(out + "/sigs", config=MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)),
    ],
    tasks=tasks, workers=workers, logging_dir=out + "/logs",
).run()
"""


def gather_pages(shared: Path) -> list[tuple[str, bytes, str]]:
    from warcio.archiveiterator import ArchiveIterator

    pages, seen = [], set()

    def add(url, body, ctype):
        h = hashlib.sha1(body).hexdigest()
        if h not in seen:
            seen.add(h)
            pages.append((url, body, ctype))

    for f in sorted((shared / "html").rglob("*.html.gz")):
        add(f"http://bench.local/{f.stem}", gzip.decompress(f.read_bytes()), "text/html")
    for f in sorted((shared / "warc").glob("*.warc.gz")):
        if "wat" in f.name or "wet" in f.name:
            continue
        try:
            with open(f, "rb") as fh:
                for r in ArchiveIterator(fh):
                    if r.rec_type != "response" or not r.http_headers:
                        continue
                    ctype = r.http_headers.get_header("Content-Type") or ""
                    if "html" in ctype and r.http_headers.get_statuscode() == "200":
                        add(r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read(), ctype)
        except Exception:  # noqa: BLE001 - the damaged samples end early
            pass
    return pages


def build_input(pages, n_docs: int, folder: Path, n_files: int = 8) -> int:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    folder.mkdir(parents=True, exist_ok=True)
    writers = []
    for i in range(n_files):
        fh = open(folder / f"bench-{i:02d}.warc.gz", "wb")
        writers.append((fh, WARCWriter(fh, gzip=True)))
    for i in range(n_docs):
        url, body, ctype = pages[i % len(pages)]
        fh, w = writers[i % n_files]
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(f"{url}{'&' if '?' in url else '?'}replica={i}", "response",
                                            payload=io.BytesIO(body), http_headers=http))
    for fh, _ in writers:
        fh.close()
    return n_docs


class PeakRSS:
    """Samples the RSS of a process tree: peak of the sum and of the largest process."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_total = self.peak_single = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.peak_total = max(self.peak_total, sum(rss))
                self.peak_single = max(self.peak_single, max(rss, default=0))
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self):
        self._stop.set()
        self._t.join()


def timed(cmd, env=None) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    mon = PeakRSS(p.pid)
    out, _ = p.communicate()
    mon.stop()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out.decode(errors='replace')[-2000:]}")
    return {"seconds": dt, "peak_rss_total_mb": mon.peak_total / 2**20, "peak_rss_worker_mb": mon.peak_single / 2**20}


def mdfs_cmd(data: Path, out: Path, workers: int) -> list[str]:
    cmd = [sys.executable, "-m", "mdfs.pipeline.cli", "run", "--output", str(out), "--overwrite",
           "--source", f"bench={data}/*.warc.gz", "--set", "exact_dedup.enabled=false",
           "--set", "near_dedup.decisions=false", "--set", "near_dedup.num_perm=112", "--set", "near_dedup.bands=14",
           "--set", "near_dedup.rows=8", "--set", "source_defaults.languages=[]", "--set", "read.progress_every_s=600"]
    if workers > 1:
        cmd += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return cmd


def profile_stages(data: Path, limit: int = 400) -> dict:
    """Per-stage cost of mdfs's own work, without Beam, on the first records."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import read_file

    from mdfs.pipeline.coarse import CoarseRules, source_languages
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.extract_worker import extract_text, extraction_options
    from mdfs.pipeline.minhash import MinHasher, band_keys
    from mdfs.pipeline.payload import decode_html
    from mdfs.pipeline.records import Document
    from mdfs.pipeline.tokens import TokenCounter

    cfg = load_config(sources=[f"bench={data}/*.warc.gz"], sets=["source_defaults.languages=[]"])
    opts = extraction_options(cfg["extract"])
    rules = CoarseRules(cfg["coarse"], source_languages(cfg))
    hasher = MinHasher(112, 1, cfg["near_dedup"]["shingles"])
    tok = TokenCounter()
    t = dict.fromkeys(["read", "decode", "extract", "coarse", "tokens", "minhash", "to_row"], 0.0)
    n = 0
    for f in sorted(data.glob("*.warc.gz")):
        if n >= limit:
            break
        t0 = time.perf_counter()
        recs = read_file(f, {"name": "bench"})["records"]
        # whole files are read: charge only the profiled records' share of the read time
        t["read"] += (time.perf_counter() - t0) * min(len(recs), limit - n) / max(len(recs), 1)
        for r in recs:
            if n >= limit:
                break
            n += 1
            t0 = time.perf_counter()
            html = decode_html(r.payload, r.charset)[0]
            t1 = time.perf_counter()
            text = extract_text(html, r.url, opts)
            t2 = time.perf_counter()
            t["decode"] += t1 - t0
            t["extract"] += t2 - t1
            if not text:
                continue
            doc = Document(key=r.key, id=r.id, source="bench", text=text, url=r.url)
            t3 = time.perf_counter()
            kept, _ = rules.apply(doc)
            t4 = time.perf_counter()
            t["coarse"] += t4 - t3
            if kept is None:
                continue
            kept = kept.replace(token_count=tok.count(kept.text))
            t5 = time.perf_counter()
            band_keys(hasher.signature(kept.text, kept.language), 14, 8)
            t6 = time.perf_counter()
            kept.to_row()
            t["tokens"] += t5 - t4
            t["minhash"] += t6 - t5
            t["to_row"] += time.perf_counter() - t6
    ms = {k: round(v / n * 1000, 3) for k, v in t.items()}
    return {"records": n, "ms_per_record": ms,
            "non_extraction_over_extraction": round((sum(ms.values()) - ms["extract"]) / ms["extract"], 4)}


def reprofile(results: Path, data: Path) -> None:
    """Re-run only the per-stage profile and rewrite the doc from the saved results."""
    res = json.loads(results.read_text())
    res["profile"] = profile_stages(data)
    res["non_extraction_share"] = res["profile"]["non_extraction_over_extraction"]
    results.write_text(json.dumps(res, indent=2))
    write_doc(res)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datatrove-python", default="/tmp/dt-venv/bin/python")
    ap.add_argument("--skip-10x", action="store_true")
    ap.add_argument("--reprofile", type=Path, default=None, metavar="INPUT_DIR",
                    help="only re-run the profile on an existing input folder and rewrite the doc")
    args = ap.parse_args()
    if args.reprofile:
        return reprofile(REPO / "bench" / "results.json", args.reprofile)
    work = Path(tempfile.mkdtemp(prefix="mdfs-e2e-"))
    pages = gather_pages(args.shared)
    build_input(pages, args.docs, work / "in")
    runs = {k: [] for k in ("mdfs_1", "mdfs_2", "datatrove_1", "datatrove_2")}
    for rep in range(args.repeats):  # alternate the systems within every repeat
        for key in runs:
            system, workers = key.split("_")
            out = work / f"out-{key}"
            shutil.rmtree(out, ignore_errors=True)
            if system == "mdfs":
                r = timed(mdfs_cmd(work / "in", out, int(workers)))
            else:
                r = timed([args.datatrove_python, "-c", DATATROVE_SCRIPT, str(work / "in"), str(out), workers, "8"])
            runs[key].append(r)
            print(key, rep, {k: round(v, 2) for k, v in r.items()}, flush=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in runs.items()}
    dps = {k: args.docs / v["seconds"] for k, v in med.items()}
    per_core = {"mdfs": dps["mdfs_1"], "datatrove": dps["datatrove_1"]}
    prof = profile_stages(work / "in")
    rss10 = None
    if not args.skip_10x:
        build_input(pages, args.docs * 10, work / "in10")
        rss10 = timed(mdfs_cmd(work / "in10", work / "out-10x", 1))
        print("10x", rss10, flush=True)
    kept = sum(1 for f in (work / "out-mdfs_1" / "kept").glob("*.parquet") for _ in [0])
    res = {
        "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}", "docs": args.docs, "distinct_pages": len(pages), "repeats": args.repeats,
        "mdfs_docs_per_s_per_core": round(per_core["mdfs"], 2),
        "datatrove_docs_per_s_per_core": round(per_core["datatrove"], 2),
        "ratio": round(per_core["mdfs"] / per_core["datatrove"], 3),
        "non_extraction_share": prof["non_extraction_over_extraction"],
        "scaling_2_vs_1": round(dps["mdfs_2"] / dps["mdfs_1"], 3),
        "datatrove_scaling_2_vs_1": round(dps["datatrove_2"] / dps["datatrove_1"], 3),
        "rss_10x_over_1x": round(rss10["peak_rss_worker_mb"] / med["mdfs_1"]["peak_rss_worker_mb"], 3) if rss10 else None,
        "medians": {k: {m: round(x, 2) for m, x in v.items()} for k, v in med.items()},
        "docs_per_s": {k: round(v, 2) for k, v in dps.items()}, "profile": prof,
        "rss_10x": {k: round(v, 1) for k, v in rss10.items()} if rss10 else None,
    }
    (REPO / "bench" / "results.json").write_text(json.dumps(res, indent=2))
    write_doc(res)
    print(json.dumps(res, indent=2))


def write_doc(r):
    m, p = r["medians"], r["profile"]["ms_per_record"]
    L = ["# Performance: mdfs against datatrove", "",
         f"Generated by `python bench/e2e.py` on {r['date']} ({r['machine']}); medians of {r['repeats']} alternating runs.",
         f"Input: {r['distinct_pages']} distinct real HTML pages from `../shared/data`, wrapped as WARC records and "
         f"replicated with distinct URLs to {r['docs']:,} records in 8 WARC.gz files. Same work on both sides: WARC "
         "read, trafilatura (favor_precision off, deduplicate off), quality rules (datatrove: GopherQualityFilter "
         "with its spaCy word split; mdfs: its whole coarse stage - language ID, normalisation, line cleaning, "
         "Gopher/C4/FineWeb or ChineseWebText rules), MinHash signatures (14 x 8 = 112 hashes, 5-grams), writing "
         "the kept documents; dedup decisions off on both sides.", "",
         "| target | measured | target value |", "|---|---:|---|",
         f"| mdfs / datatrove, documents/s per core | **{r['ratio']:.2f}x** ({r['mdfs_docs_per_s_per_core']} vs "
         f"{r['datatrove_docs_per_s_per_core']}) | >= 1.5x |",
         f"| everything but extraction, share of extraction time: mdfs's own steps (profile) | **{r['non_extraction_share']:.1%}** | <= 25 % |",
         f"| the same including Beam overhead and writing (1-worker run time per record vs profiled extraction) | "
         f"**{(1000 / r['mdfs_docs_per_s_per_core'] - p['extract']) / p['extract']:.1%}** | <= 25 % |",
         f"| mdfs 2 workers / 1 worker | **{r['scaling_2_vs_1']:.2f}x** (datatrove: {r['datatrove_scaling_2_vs_1']:.2f}x) | >= 1.8x |",
         f"| peak RSS per worker, 10x input / 1x input | **{r['rss_10x_over_1x']}** | <= 1.5 |", "",
         "| run | seconds | documents/s | peak RSS, largest process (MB) | peak RSS, all processes (MB) |",
         "|---|---:|---:|---:|---:|"]
    for k, v in m.items():
        L.append(f"| {k.replace('_', ', ')} worker(s) | {v['seconds']} | {r['docs_per_s'][k]} | {v['peak_rss_worker_mb']} | "
                 f"{v['peak_rss_total_mb']} |")
    if r["rss_10x"]:
        L.append(f"| mdfs, 1 worker, 10x input ({r['docs'] * 10:,} records) | {r['rss_10x']['seconds']} | "
                 f"{round(r['docs'] * 10 / r['rss_10x']['seconds'], 2)} | {r['rss_10x']['peak_rss_worker_mb']} | "
                 f"{r['rss_10x']['peak_rss_total_mb']} |")
    L += ["", f"## Where mdfs's time goes (per record, one core, {r['profile']['records']} records, no Beam)", "",
          "| step | ms per record | share of extraction |", "|---|---:|---:|"]
    for k, v in p.items():
        L.append(f"| {k} | {v} | {v / p['extract']:.1%} |")
    L += ["", "The profile calls mdfs's own functions in a plain loop (extraction in-process, no Beam, no Parquet "
          "writing); it is a separate measurement from the runs above, and extraction time per record varies by "
          "up to a quarter between runs on this shared machine.", "",
          "## Reading the figures", "",
          "Extraction is about 80 % of the work in both systems, with identical trafilatura settings, so the "
          "per-core ratio is bounded by what datatrove spends outside extraction. On this machine and input, "
          "datatrove's whole chain runs at nearly extraction speed, and mdfs (whose coarse stage does more than a "
          "Gopher filter) is within ten per cent of it: the 1.5x target cannot be reached while both call the "
          "same extractor the same way. What would close it: a cheaper extraction path (trafilatura's `fast` mode, "
          "which skips the fallback extractors, or a C extractor such as resiliparse), both of which change the "
          "output and so are a policy choice, not a benchmark setting; and, for the 2-worker figure, a runner "
          "that does not hand every element between processes (Dataflow/Flink fuse the stages within a worker).", "",
          "Notes: the DirectRunner keeps the output of a stage in memory between fused stages and at every "
          "shuffle, so its peak RSS grows with the input; Dataflow and Flink stream and spill. The "
          "`multi_processing` DirectRunner hands every element between processes, which costs real time once "
          "the per-document work is small (see ../shared/FACTS.md).", ""]
    (REPO / "docs" / "PERFORMANCE.md").write_text("\n".join(L), encoding="utf-8")


if __name__ == "__main__":
    main()
