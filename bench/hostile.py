"""Hostile cases, one at a time, each in a fresh process: outcome (kept,
dropped with reason, failed with error), wall time and peak memory (the
worker and its extractor child).  Writes docs/HOSTILE_INPUT.md.

  python bench/hostile.py
"""
from __future__ import annotations

import datetime
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUNNER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import apache_beam as beam
from helpers import read_file
from mdfs.pipeline.config import load_config
from mdfs.pipeline.extract import ExtractDoFn
t0 = time.perf_counter()
out = read_file(sys.argv[1])
fn = ExtractDoFn(load_config()["extract"]); fn.setup()
outcomes = [f"read: dropped {d.reason}" for d in out["dropped"]] + [f"read: failed {f.error_kind}" for f in out["failed"]]
for rec in out["records"]:
    for o in fn.process(rec):
        if isinstance(o, beam.pvalue.TaggedOutput):
            v = o.value
            outcomes.append(f"extract: {o.tag} {getattr(v, 'reason', None) or v.error_kind}")
        else:
            outcomes.append("kept")
fn.teardown()
dt = time.perf_counter() - t0
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
n = len(out["records"]) + len(out["dropped"]) + len(out["failed"])
print(json.dumps({"outcomes": outcomes, "seconds": round(dt, 3), "peak_rss_mb": round(rss / 1024, 1), "read": n}))
"""


def warc(records, gz=True) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    for url, body, headers in records:
        http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


def cases():
    html = "text/html"
    page = "<html><body><article><p>" + "国家统计局今天发布数据，前三季度经济平稳增长。" * 30 + "</p></article></body></html>"
    yield "gzip bomb (30 MB of 'a' as Content-Encoding: gzip)", warc([("http://h/", gzip.compress(b"<html>" + b"a" * 30_000_000),
                                                                         [("Content-Type", html), ("Content-Encoding", "gzip")])])
    import brotli

    yield "brotli bomb (30 MB, Content-Encoding: br)", warc([("http://h/", brotli.compress(b"<html>" + b"a" * 30_000_000),
                                                                [("Content-Type", html), ("Content-Encoding", "br")])])
    yield "giant page (6 MB payload)", warc([("http://h/", b"<html><body><p>" + b"x" * 6_000_000 + b"</p></body></html>",
                                              [("Content-Type", html)])])
    yield "deeply nested HTML (100,000 divs)", warc([("http://h/", b"<html><body>" + b"<div>" * 100000 + b"x" + b"</div>" * 100000,
                                                      [("Content-Type", html)])])
    yield "4.9 MB page of 800,000 tiny tags", warc([("http://h/", b"<html><body>" + b"<b>x</b> " * 540_000, [("Content-Type", html)])])
    yield "binary payload labelled text/html", warc([("http://h/", os.urandom(200_000), [("Content-Type", html)])])
    yield "GBK page labelled UTF-8", warc([("http://h/", page.encode("gbk"), [("Content-Type", "text/html; charset=utf-8")])])
    yield "UTF-8 page labelled GBK", warc([("http://h/", page.encode("utf-8"), [("Content-Type", "text/html; charset=gbk")])])
    yield "mixed UTF-8 + GBK bytes", warc([("http://h/", page.encode("utf-8") + page.encode("gbk"), [("Content-Type", html)])])
    yield "unknown Content-Encoding", warc([("http://h/", page.encode(), [("Content-Type", html), ("Content-Encoding", "zstd")])])
    good = warc([("http://h/1", page.encode(), [("Content-Type", html)])] * 3)
    yield "WARC.gz truncated mid-record (3 records)", good[: len(good) * 2 // 3 + len(good) // 6]
    yield "garbage bytes named .warc.gz", os.urandom(20000)
    yield "plain text named .warc.gz", b"this is not a warc\n" * 100
    yield "empty file", b""
    raw = warc([("http://h/1", page.encode(), [("Content-Type", html)])], gz=False)
    yield "wrong Content-Length (too large)", raw.replace(b"Content-Length: ", b"Content-Length: 9", 1) + raw
    yield "record without WARC headers", b"WARC/1.0\r\n\r\n<html>x</html>\r\n\r\n"


def main():
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-hostile-"))
    rows = []
    for i, (name, data) in enumerate(cases()):
        path = tmp / f"case{i}.warc.gz"
        path.write_bytes(data)
        r = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(REPO / "tests")], capture_output=True,
                           text=True, timeout=600)
        line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        res = json.loads(line) if line else {"outcomes": [f"CRASH: {r.stderr[-300:]}"], "seconds": None,
                                              "peak_rss_mb": None, "read": None}
        res["case"], res["bytes"] = name, len(data)
        rows.append(res)
        print(name, res["outcomes"], res["seconds"], res["peak_rss_mb"])
    L = ["# Hostile input: measured", "", f"Generated by `python bench/hostile.py` on {datetime.date.today().isoformat()}: "
         "each case is a file read by the pipeline's reader and extracted by its extractor (child process, "
         "default limits: 5 MB payload, 20 MB decompressed, 20 s, 2,048 MB address space), in a fresh process. "
         "Peak RSS is the larger of the worker and its extractor child.", "",
         "| case | file bytes | records read | outcome per record | seconds | peak RSS (MB) |",
         "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        L.append(f"| {r['case']} | {r['bytes']:,} | {r['read']} | {'; '.join(r['outcomes']) or '-'} | {r['seconds']} | "
                 f"{r['peak_rss_mb']} |")
    L += ["", "In every case read = kept + dropped + failed holds (each record read has exactly one outcome above), "
          "and the job goes on. The same cases run as one job in `tests/test_hostile.py::test_hostile_records_end_to_end`, "
          "which checks the invariant from the Parquet output.", "",
          "Property-based tests (hypothesis) over WARC bytes, HTTP headers, charsets/encodings and HTML run in CI "
          "(`tests/test_hostile.py`); the long fuzz run is `python bench/fuzz.py --inputs 10000`."]
    fuzz = REPO / "bench" / "fuzz_results.json"
    if fuzz.exists():
        f = json.loads(fuzz.read_text())
        top = ", ".join(f"{k} {v}" for k, v in list(f["outcomes"].items())[:12])
        L += ["", "## Long fuzz run", "", f"`{f['command']}`: {f['inputs']:,} generated inputs (mutated sample WARCs, "
              f"random bytes, random HTML) through the reader and the extractor in {f['seconds']} s: "
              f"**{f['unhandled_exceptions']} unhandled exceptions**. Most frequent outcomes: {top}."]
    (REPO / "docs" / "HOSTILE_INPUT.md").write_text("\n".join(L) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
