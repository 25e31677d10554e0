"""End-to-end benchmark: mdfs against datatrove on the same work, same input.

  python bench/e2e.py [--shared ../shared/data] [--docs 2000] [--repeats 2] [--datatrove-python PY]

Input: every distinct real HTML page found under ../shared/data (magic-html,
trafilatura-eval, and the HTML responses of the sample WARCs), wrapped as WARC
response records and replicated with distinct URLs to --docs records, in 8
WARC.gz files.  Work on every record, on both sides: WARC read, trafilatura
extraction (same version, favor_precision off, deduplicate off, same timeout),
language ID with the same fastText model, quality rules (mdfs: its coarse
stage; datatrove: the FineWeb filter chain - Gopher repetition and quality,
C4, FineWeb), MinHash signatures (112 hashes = 14 bands x 8 rows, 5-gram
shingles), writing the kept documents.  Dedup decisions are off on both sides
(mdfs: exact_dedup off, near_dedup.decisions false), so replicas are not
dropped early.  mdfs: DirectRunner in-process (1 worker) and multi_processing
(2 workers); datatrove: LocalPipelineExecutor, 8 tasks, 1 and 2 workers; runs
alternate, medians reported.  Also: a per-stage profile of mdfs, datatrove's
own per-step timers, and peak RSS per worker at 1x and 10x the input.

datatrove is a benchmark-only dependency installed in its own virtual
environment (it pins other versions of fastText and numpy, and trafilatura
< 1.12: install mdfs's trafilatura over it, or the comparison is between two
extractors; the benchmark refuses to run with different versions):
  python3 -m venv /tmp/dt-venv && /tmp/dt-venv/bin/pip install "datatrove[io,processing]" lxml_html_clean spacy \
      jieba psutil && /tmp/dt-venv/bin/pip install \
      "trafilatura==$(.venv/bin/python -c 'import trafilatura; print(trafilatura.__version__)')"
(the io extra brings warcio, cchardet and python-magic for WarcReader; spacy and
jieba are datatrove's English and Chinese word splitters.)
Writes docs/PERFORMANCE.md and the ``end_to_end`` section of bench/results.json.
The fast-engine rows (``extract.engine: resiliparse`` against datatrove's
Resiliparse extractor and against mdfs's default) come from bench/e2e_fast.py.
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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from results import load as load_results  # noqa: E402
from results import merge_section  # noqa: E402

DATATROVE_SCRIPT = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter)
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.pipeline.writers import JsonlWriter
data, out, workers, tasks, lid_model, chain = sys.argv[1:7]
engine = sys.argv[7] if len(sys.argv) > 7 else "trafilatura"
if engine == "resiliparse":  # datatrove's Resiliparse extractor with its default settings
    try:
        from datatrove.pipeline.extractors import Resiliparse
    except ImportError:  # datatrove <= 0.10.1 (PyPI) lacks it; main has it: the same call through BaseExtractor
        from datatrove.pipeline.extractors.base import BaseExtractor

        class Resiliparse(BaseExtractor):
            name = "Resiliparse"

            def __init__(self, timeout):
                super().__init__(timeout)

            def extract(self, text):
                from resiliparse.extract.html2text import extract_plain_text
                return extract_plain_text(text, preserve_formatting=True, main_content=True, list_bullets=True,
                                          alt_texts=False, links=False, form_fields=False, noscript=False,
                                          comments=True, skip_elements=None)
    extractor = Resiliparse(timeout=20.0)
else:
    extractor = Trafilatura(favour_precision=False, deduplicate=False, timeout=20.0)
language = LanguageFilter(label_only=True)
# the model mdfs bundles (lid.176.ftz), not a download of lid.176.bin; set on
# the instance, which is what travels to the pool's worker processes
language.model.MODEL_URL = "file://" + lid_model
if chain == "fineweb":   # the same rule work as mdfs's coarse stage: FineWeb's filter chain
    filters = [language, GopherRepetitionFilter(), GopherQualityFilter(),
               C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter(char_duplicates_ratio=0.1)]
else:                    # "gopher": GopherQualityFilter alone (less work than mdfs does)
    filters = [GopherQualityFilter()]
LocalPipelineExecutor(
    pipeline=[
        WarcReader(data, glob_pattern="*.warc.gz"),
        extractor,
        *filters,
        JsonlWriter(out + "/kept"),
        MinhashDedupSignature(out + "/sigs", config=MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)),
    ],
    tasks=int(tasks), workers=int(workers), logging_dir=out + "/logs",
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
        http = StatusAndHeaders(
            "200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
        )
        # Common Crawl's header: without it datatrove's reader asks libmagic and
        # silently skips pages it does not call text/html (a quarter of these)
        w.write_record(
            w.create_warc_record(
                f"{url}{'&' if '?' in url else '?'}replica={i}",
                "response",
                payload=io.BytesIO(body),
                http_headers=http,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"},
            )
        )
    for fh, _ in writers:
        fh.close()
    return n_docs


class PeakRSS:
    """Samples a process tree every 0.2 s: peak RSS of the sum and of the
    largest process, and CPU time (user + system) per process seen, which
    also covers processes that leave the tree (datatrove's pool workers are
    children of a forkserver that is never reaped by the command)."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_total = self.peak_single = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _sample(self):
        import psutil

        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        rss = []
        for p in procs:
            try:
                with p.oneshot():
                    rss.append(p.memory_info().rss)
                    t = p.cpu_times()
                    # by pid: psutil's create_time() can drift between calls
                    self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), t.user + t.system)
            except psutil.Error:
                pass
        self.peak_total = max(self.peak_total, sum(rss))
        self.peak_single = max(self.peak_single, max(rss, default=0))

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.2)

    def stop(self):
        self._stop.set()
        self._t.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def timed(cmd, env=None) -> dict:
    """Wall time, CPU time of the whole process tree (user + system) and peak
    RSS of one command."""
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        # own process group; output to a file, not a pipe: datatrove's forkserver
        # outlives the command and would hold a pipe open
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        mon = PeakRSS(p.pid)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        mon.stop()
        returncode = os.waitstatus_to_exitcode(status)
        try:
            os.killpg(p.pid, signal.SIGTERM)  # whatever it left behind
        except ProcessLookupError:
            pass
        log.seek(0)
        out = log.read()
    if returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out.decode(errors='replace')[-2000:]}")
    # Both are lower bounds: wait4 counts the command and the descendants it
    # reaped; the samples count every process seen, less its last 0.2 s.
    cpu = max(usage.ru_utime + usage.ru_stime, mon.cpu_seconds)
    return {
        "seconds": dt,
        "cpu_seconds": cpu,
        "peak_rss_total_mb": mon.peak_total / 2**20,
        "peak_rss_worker_mb": mon.peak_single / 2**20,
    }


def mdfs_cmd(data: Path, out: Path, workers: int, sets: tuple[str, ...] = ()) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "mdfs.pipeline.commands.cli",
        "run",
        "--output",
        str(out),
        "--overwrite",
        "--source",
        f"bench={data}/*.warc.gz",
        "--set",
        "exact_dedup.enabled=false",
        "--set",
        "near_dedup.decisions=false",
        "--set",
        "near_dedup.num_perm=112",
        "--set",
        "near_dedup.bands=14",
        "--set",
        "near_dedup.rows=8",
        "--set",
        "source_defaults.languages=[]",
        "--set",
        "read.progress_every_s=600",
    ]
    for s in sets:
        cmd += ["--set", s]
    if workers > 1:
        cmd += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return cmd


def profile_stages(data: Path, limit: int = 400) -> dict:
    """Per-stage cost of mdfs's own work, without Beam, on the first records."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import read_file

    from mdfs.pipeline.stages.coarse import CoarseRules, source_languages
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options
    from mdfs.pipeline.stages.minhash import MinHasher, band_keys
    from mdfs.pipeline.io.payload import decode_html
    from mdfs.pipeline.records import Document
    from mdfs.pipeline.tokens import TokenCounter

    cfg = load_config(sources=[f"bench={data}/*.warc.gz"], sets=["source_defaults.languages=[]"])
    opts = extraction_options(cfg.extract)
    rules = CoarseRules(cfg.coarse, source_languages(cfg))
    hasher = MinHasher(112, 1, cfg.near_dedup.shingles)
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
    return {
        "records": n,
        "ms_per_record": ms,
        "non_extraction_over_extraction": round((sum(ms.values()) - ms["extract"]) / ms["extract"], 4),
    }


def reprofile(data: Path) -> None:
    """Re-run only the per-stage profile and rewrite the doc from the saved results."""
    res = load_results()["end_to_end"]
    res["profile"] = profile_stages(data)
    res["non_extraction_share"] = res["profile"]["non_extraction_over_extraction"]
    merge_section("end_to_end", res)
    write_doc(res)


def datatrove_step_times(stats_json: Path) -> dict:
    """Milliseconds per input record spent in each datatrove step (its own
    timers; a step's timer excludes the steps before it except for the last
    one, whose generator pulls the whole chain: it is charged the remainder)."""
    steps = json.loads(stats_json.read_text())
    docs = next(s["stats"].get("documents", 0) for s in steps if "READER" in s["name"])
    n = (docs["total"] if isinstance(docs, dict) else docs) or 1
    own = {s["name"].split(": ", 1)[-1].split(" ", 1)[-1]: s["time_stats"]["total"] for s in steps}
    last = list(own)[-1]
    own[last] = max(own[last] - sum(v for k, v in own.items() if k != last), 0.0)
    return {k: round(v / n * 1000, 3) for k, v in own.items()}


def versions(datatrove_python: str) -> dict:
    import trafilatura

    out = subprocess.run(
        [
            datatrove_python,
            "-c",
            "import importlib.metadata as m;print(m.version('datatrove'), m.version('trafilatura'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {"mdfs_trafilatura": trafilatura.__version__, "datatrove": out[0], "datatrove_trafilatura": out[1]}


def run_10x(pages, docs: int, work: Path) -> dict:
    """The mdfs run on 10x the input, 2 workers (the per-worker peak 1 worker
    would show, in half the time); figures rounded as saved."""
    build_input(pages, docs * 10, work / "in10")
    r = timed(mdfs_cmd(work / "in10", work / "out-10x", 2))
    print("10x", r, flush=True)
    return {k: round(v, 1) for k, v in r.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)  # 3 takes ~32 min here
    ap.add_argument("--datatrove-python", default="/tmp/dt-venv/bin/python")
    ap.add_argument(
        "--datatrove-chain",
        choices=["fineweb", "gopher"],
        default="fineweb",
        help="fineweb: the rule work mdfs's coarse stage does (default); gopher: GopherQualityFilter "
        "alone, less work than mdfs does",
    )
    ap.add_argument("--skip-10x", action="store_true")
    ap.add_argument(
        "--reprofile",
        type=Path,
        default=None,
        metavar="INPUT_DIR",
        help="only re-run the profile on an existing input folder and rewrite the doc",
    )
    ap.add_argument("--render", action="store_true", help="only rewrite docs/PERFORMANCE.md from bench/results.json")
    ap.add_argument("--only-10x", action="store_true", help="only re-run the 10x-input run and update the results")
    args = ap.parse_args()
    if args.render:
        return write_doc(load_results()["end_to_end"])
    if args.only_10x:  # re-measure the 10x run alone and update the saved results
        res = load_results()["end_to_end"]
        work = Path(tempfile.mkdtemp(prefix="mdfs-e2e-"))
        res["rss_10x"] = run_10x(gather_pages(args.shared), args.docs, work)
        res["rss_10x_separate_run"] = datetime.date.today().isoformat()
        res["rss_10x_over_1x"] = round(
            res["rss_10x"]["peak_rss_worker_mb"] / res["medians"]["mdfs_2"]["peak_rss_worker_mb"], 3
        )
        merge_section("end_to_end", res)
        shutil.rmtree(work, ignore_errors=True)
        return write_doc(res)
    if args.reprofile:
        return reprofile(args.reprofile)
    began = time.perf_counter()
    vers = versions(args.datatrove_python)
    if vers["mdfs_trafilatura"] != vers["datatrove_trafilatura"]:
        sys.exit(
            f"trafilatura differs: mdfs {vers['mdfs_trafilatura']}, datatrove venv "
            f"{vers['datatrove_trafilatura']}; install the same version in both (see the module docstring)"
        )
    lid_model = str(REPO / "classifiers" / "models" / "lid.176.ftz")
    work = Path(tempfile.mkdtemp(prefix="mdfs-e2e-"))
    pages = gather_pages(args.shared)
    build_input(pages, args.docs, work / "in")
    build_input(pages, 8, work / "in-startup")  # one record per file: the fixed cost of a run
    keys = ("mdfs_1", "mdfs_2", "datatrove_1", "datatrove_2")
    runs = {k: [] for k in keys}
    startup = {k: [] for k in keys}
    dt_steps = []

    def run(key: str, data: Path) -> dict:
        system, workers = key.split("_")
        out = work / f"out-{key}"
        shutil.rmtree(out, ignore_errors=True)  # datatrove skips tasks it finds completed
        if system == "mdfs":
            return timed(mdfs_cmd(data, out, int(workers)))
        r = timed(
            [
                args.datatrove_python,
                "-c",
                DATATROVE_SCRIPT,
                str(data),
                str(out),
                workers,
                "8",
                lid_model,
                args.datatrove_chain,
            ]
        )
        if workers == "1" and data.name == "in":
            dt_steps.append(datatrove_step_times(out / "logs" / "stats.json"))
        return r

    for rep in range(args.repeats):  # alternate the systems within every repeat
        for key in keys:
            runs[key].append(run(key, work / "in"))
            startup[key].append(run(key, work / "in-startup"))
            print(
                key,
                rep,
                {k: round(v, 2) for k, v in runs[key][-1].items()},
                "start-up",
                round(startup[key][-1]["seconds"], 2),
                flush=True,
            )
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in runs.items()}
    fixed = {k: statistics.median(x["seconds"] for x in v) for k, v in startup.items()}
    dps = {k: args.docs / v["seconds"] for k, v in med.items()}
    per_core = {"mdfs": dps["mdfs_1"], "datatrove": dps["datatrove_1"]}
    per_cpu_s = {
        "mdfs": args.docs / med["mdfs_1"]["cpu_seconds"],
        "datatrove": args.docs / med["datatrove_1"]["cpu_seconds"],
    }
    prof = profile_stages(work / "in")
    rss10 = None if args.skip_10x else run_10x(pages, args.docs, work)
    dt_ms = {k: statistics.median(s[k] for s in dt_steps) for k in dt_steps[0]} if dt_steps else {}
    res = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": vers,
        "datatrove_chain": args.datatrove_chain,
        "docs": args.docs,
        "distinct_pages": len(pages),
        "repeats": args.repeats,
        "mdfs_docs_per_s_per_core": round(per_core["mdfs"], 2),
        "datatrove_docs_per_s_per_core": round(per_core["datatrove"], 2),
        "ratio": round(per_core["mdfs"] / per_core["datatrove"], 3),
        "mdfs_docs_per_cpu_s": round(per_cpu_s["mdfs"], 2),
        "datatrove_docs_per_cpu_s": round(per_cpu_s["datatrove"], 2),
        "ratio_cpu": round(per_cpu_s["mdfs"] / per_cpu_s["datatrove"], 3),
        "non_extraction_share": prof["non_extraction_over_extraction"],
        "non_extraction_share_in_run": round(
            (1000 / per_core["mdfs"] - prof["ms_per_record"]["extract"]) / prof["ms_per_record"]["extract"], 4
        ),
        "scaling_2_vs_1": round(dps["mdfs_2"] / dps["mdfs_1"], 3),
        "datatrove_scaling_2_vs_1": round(dps["datatrove_2"] / dps["datatrove_1"], 3),
        # the same with each run's fixed cost (an 8-record run: start-up, pipeline
        # construction, worker processes, report) taken out: what long runs approach
        "startup_seconds": {k: round(v, 2) for k, v in fixed.items()},
        "scaling_2_vs_1_excluding_startup": round(
            (med["mdfs_1"]["seconds"] - fixed["mdfs_1"]) / (med["mdfs_2"]["seconds"] - fixed["mdfs_2"]), 3
        ),
        "datatrove_scaling_2_vs_1_excluding_startup": round(
            (med["datatrove_1"]["seconds"] - fixed["datatrove_1"])
            / (med["datatrove_2"]["seconds"] - fixed["datatrove_2"]),
            3,
        ),
        "rss_10x_over_1x": round(rss10["peak_rss_worker_mb"] / med["mdfs_2"]["peak_rss_worker_mb"], 3)
        if rss10
        else None,
        "medians": {k: {m: round(x, 2) for m, x in v.items()} for k, v in med.items()},
        "docs_per_s": {k: round(v, 2) for k, v in dps.items()},
        "profile": prof,
        "datatrove_ms_per_record": dt_ms,
        "rss_10x": rss10,
        "benchmark_minutes": round((time.perf_counter() - began) / 60, 1),
    }
    merge_section("end_to_end", res)
    write_doc(res)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res, indent=2))


def write_doc(r):
    m, p, v = r["medians"], r["profile"]["ms_per_record"], r["versions"]
    L = [
        "# Performance: mdfs against datatrove",
        "",
        f"Generated by `python bench/e2e.py` on {r['date']} ({r['machine']}) in {r['benchmark_minutes']} minutes; "
        f"medians of {r['repeats']} alternating runs. trafilatura {v['mdfs_trafilatura']} on both sides "
        f"(datatrove {v['datatrove']}, in its own venv).",
        "",
        f"Input: {r['distinct_pages']} distinct real HTML pages from `../shared/data`, wrapped as WARC response records "
        f"(with Common Crawl's `WARC-Identified-Payload-Type`) and replicated with distinct URLs to {r['docs']:,} "
        "records in 8 WARC.gz files. The same work on every record on both sides: WARC read and charset decoding, "
        "trafilatura (favor_precision off, deduplicate off), language ID (fastText lid.176.ftz on both), quality "
        "rules, MinHash signatures (14 x 8 = 112 hashes, 5-gram shingles), writing the kept documents; dedup "
        "decisions off on both sides, so replicas are not dropped early. Quality rules: mdfs's coarse stage "
        "(normalisation, line cleaning, Gopher quality and repetition, C4, FineWeb; ChineseWebText rules for "
        "Chinese) against "
        + (
            "datatrove's FineWeb filter chain (GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, "
            "FineWebQualityFilter, after a label-only LanguageFilter)."
            if r["datatrove_chain"] == "fineweb"
            else "datatrove's GopherQualityFilter alone (less work than mdfs does)."
        )
        + " datatrove runs 8 tasks (one per file); mdfs runs the DirectRunner in-process (1 worker) and "
        "`multi_processing` (2 workers).",
        "",
        "| target | measured | target value |",
        "|---|---:|---|",
        f"| mdfs / datatrove, documents/s per core (1 worker each) | **{r['ratio']:.2f}x** "
        f"({r['mdfs_docs_per_s_per_core']} vs {r['datatrove_docs_per_s_per_core']}) | >= 1.5x |",
        f"| the same per CPU-second of the whole process tree | **{r['ratio_cpu']:.2f}x** "
        f"({r['mdfs_docs_per_cpu_s']} vs {r['datatrove_docs_per_cpu_s']}) | |",
        f"| everything but extraction, share of extraction time: mdfs's own steps (profile) | "
        f"**{r['non_extraction_share']:.1%}** | <= 25 % |",
        f"| the same including start-up, Beam overhead and writing (1-worker run time per record vs profiled "
        f"extraction) | **{r['non_extraction_share_in_run']:.1%}** | <= 25 % |",
        f"| mdfs 2 workers / 1 worker | **{r['scaling_2_vs_1']:.2f}x** (datatrove: "
        f"{r['datatrove_scaling_2_vs_1']:.2f}x) | >= 1.8x |",
        f"| the same with each run's fixed start-up cost taken out (what long runs approach) | "
        f"{r['scaling_2_vs_1_excluding_startup']:.2f}x (datatrove: {r['datatrove_scaling_2_vs_1_excluding_startup']:.2f}x) | |",
        f"| peak RSS per worker, 10x input / 1x input (2 workers each) | **{r['rss_10x_over_1x']}** | <= 1.5 |",
        "",
        "Fixed cost of a run (seconds for an 8-record input; start-up, pipeline construction, worker processes, "
        "report): " + ", ".join(f"{k.replace('_', ' ')} worker(s) {x}" for k, x in r["startup_seconds"].items()) + ".",
        "",
        "| run | seconds | CPU seconds | documents/s | peak RSS, largest process (MB) | peak RSS, all processes (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, x in m.items():
        L.append(
            f"| {k.replace('_', ', ')} worker(s) | {x['seconds']} | {x['cpu_seconds']} | {r['docs_per_s'][k]} | "
            f"{x['peak_rss_worker_mb']} | {x['peak_rss_total_mb']} |"
        )
    if r.get("rss_10x_separate_run"):
        header = L.index(
            "| run | seconds | CPU seconds | documents/s | peak RSS, largest process (MB) | "
            "peak RSS, all processes (MB) |"
        )
        L.insert(
            header,
            f"The 10x run was re-measured alone (`--only-10x`, {r['rss_10x_separate_run']}); "
            "its time is from another invocation and not comparable with the rows above it.\n",
        )
    if r["rss_10x"]:
        x = r["rss_10x"]
        L.append(
            f"| mdfs, 2 workers, 10x input ({r['docs'] * 10:,} records) | {x['seconds']} | {x['cpu_seconds']} | "
            f"{round(r['docs'] * 10 / x['seconds'], 2)} | {x['peak_rss_worker_mb']} | {x['peak_rss_total_mb']} |"
        )
    L += [
        "",
        f"## Where mdfs's time goes (per record, one core, {r['profile']['records']} records, no Beam)",
        "",
        "| step | ms per record | share of extraction |",
        "|---|---:|---:|",
    ]
    for k, x in p.items():
        L.append(f"| {k} | {x} | {x / p['extract']:.1%} |")
    L += [
        "",
        "The profile calls mdfs's own functions in a plain loop (extraction in-process, no Beam, no Parquet "
        "writing); it is a separate measurement from the runs above.",
    ]
    if r.get("datatrove_ms_per_record"):
        d = r["datatrove_ms_per_record"]
        ext = next((x for k, x in d.items() if "Trafilatura" in k), None)
        L += [
            "",
            "## Where datatrove's time goes (per input record, its own step timers, 1-worker runs)",
            "",
            "| step | ms per record | share of extraction |",
            "|---|---:|---:|",
        ]
        for k, x in d.items():
            L.append(f"| {k} | {x:.2f} | {x / ext:.1%} |" if ext else f"| {k} | {x:.2f} | |")
    L += [
        "",
        "## Reading the figures",
        "",
        "Both systems call the same trafilatura version with the same settings, and extraction costs about the "
        "same on both sides; the difference is everything else. datatrove splits words with spaCy in each of "
        "its Gopher, C4 and FineWeb filters and runs language ID over the whole text; mdfs splits on "
        "whitespace (or counts characters, for Chinese), computes the shared views of a document once, reads "
        "1,000 characters for language ID and hashes shingles with numpy.",
        "",
        "Two workers: mdfs's `multi_processing` DirectRunner starts worker processes (each imports Beam and "
        "sets up its DoFns: fastText, OpenCC, an extractor process) and runs every stage as a bundle handed "
        "over gRPC, so a run has a larger fixed cost with 2 workers than with 1 (see the fixed costs above); "
        f"on {r['docs']:,} records that fixed cost is what holds the ratio at {r['scaling_2_vs_1']:.2f}x; with "
        f"it taken out, the per-record scaling is {r.get('scaling_2_vs_1_excluding_startup', float('nan')):.2f}x. "
        + (
            f"On the 10x input (2 workers) the rate was {round(r['docs'] * 10 / r['rss_10x']['seconds'], 1)} "
            f"documents/s against {r['docs_per_s']['mdfs_2']} on {r['docs']:,} records. "
            if r.get("rss_10x") and not r.get("rss_10x_separate_run")
            else ""
        )
        + "Dataflow and Flink start workers once per job, not per run of this size.",
        "",
        "Memory: with dedup decisions off the job has no shuffle of document data (only per-source counters), "
        "so per-worker RSS stays flat as input grows. With decisions on, near-dedup shuffles about 1.5 kB of "
        "band keys and 1.1 kB of signature table per 5,000-character document, and the text only once, in the "
        "final join (docs/NEAR_DEDUP.md); the DirectRunner holds shuffled data in memory, so a 100k-document "
        "local near-dedup run peaks at 6.3 GB, while Dataflow and Flink spill.",
        "",
        "Earlier figures: the first version of this benchmark reported 0.91x. It ran datatrove with its own "
        "trafilatura pin (1.11, which extracts these pages about a quarter faster than 2.3.1: 33 against 42 ms "
        "per page in one loop), with GopherQualityFilter alone while mdfs ran its whole rule stage, and on WARC "
        "records without a payload type, so datatrove's reader asked libmagic and silently skipped 130 of the "
        "505 pages. Each of these favoured datatrove; all three are fixed, and the command refuses to run when "
        "the two trafilatura versions differ. On mdfs's side, one rule was made cheaper without changing its "
        "answers: C4's sentence count used a pattern that backtracked quadratically over a long tail without a "
        "full stop (1.5 ms per page, a quarter of the rule stage).",
        "",
        "Timing on this shared 2-core machine varies by up to a quarter between runs; compare figures only "
        "within one run of this command.",
        "",
    ]
    from results import foreign_sections

    kept = foreign_sections()  # sections other benchmarks write (bench_engines.py, bench_language_first.py)
    (REPO / "docs" / "PERFORMANCE.md").write_text("\n".join(L).rstrip() + "\n\n" + kept, encoding="utf-8")

def same_outputs(a: Path, b: Path) -> bool:
    """Whether two mdfs runs decided the same: every row of kept, dropped and
    failed (all columns), the funnel (less its timing) and the statistics."""
    import pyarrow.dataset as ds

    def rows(out: Path, kind: str) -> list:
        return sorted(map(repr, ds.dataset(str(out / kind), format="parquet").to_table().to_pylist()))

    def funnel(out: Path) -> dict:
        f = json.loads((out / "funnel.json").read_text())
        f.pop("elapsed_s", None)
        return f

    stats = "stats/pipeline_stats.json"
    return (all(rows(a, k) == rows(b, k) for k in ("kept", "dropped", "failed")) and funnel(a) == funnel(b)
            and json.loads((a / stats).read_text()) == json.loads((b / stats).read_text()))


if __name__ == "__main__":
    main()

