"""Hostile cases, one at a time, each in a fresh process: outcome (kept,
dropped with reason, failed with error), wall time and peak memory (the
worker and its extractor child).  Writes docs/HOSTILE_INPUT.md.

  python bench/hostile.py
"""

from __future__ import annotations

import datetime
import gzip
import io
import itertools
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
from mdfs.pipeline.stages.coarse import CoarseFilterDoFn, source_languages
from mdfs.pipeline.stages.extract import ExtractDoFn
t0 = time.perf_counter()
out = read_file(sys.argv[1])
cfg = load_config()
fn = ExtractDoFn(cfg.extract, cfg.read.max_invalid_utf8_share); fn.setup()
coarse = CoarseFilterDoFn(cfg.coarse, {"t": ([], 0.0)}); coarse.setup()
outcomes = [f"read: dropped {d.reason}" for d in out["dropped"]] + [
    f"read: failed {f.error_kind}" + (" (records: null)" if f.records is None else "") for f in out["failed"]]
per_record = 0.0
for rec in out["records"]:
    r0 = time.perf_counter()
    for o in fn.process(rec):
        if isinstance(o, beam.pvalue.TaggedOutput):
            v = o.value
            outcomes.append(f"extract: {o.tag} {getattr(v, 'reason', None) or v.error_kind}")
            continue
        for c in coarse.process(o):  # normalisation and the rules are bounded too
            if isinstance(c, beam.pvalue.TaggedOutput):
                outcomes.append(f"coarse: {c.tag} {getattr(c.value, 'reason', None) or c.value.error_kind}")
            else:
                outcomes.append("kept")
    per_record = max(per_record, time.perf_counter() - r0)
fn.teardown()
dt = time.perf_counter() - t0
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
n = len(out["records"]) + len(out["dropped"]) + len(out["failed"])
print(json.dumps({"outcomes": outcomes, "seconds": round(dt, 3), "peak_rss_mb": round(rss / 1024, 1), "read": n,
                  "max_record_s": round(per_record, 3)}))
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


def _set_length(rec: bytes, value: str) -> bytes:
    head, sep, rest = rec.partition(b"\r\n\r\n")
    lines = [
        b"Content-Length: " + value.encode() if ln.startswith(b"Content-Length:") else ln for ln in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + sep + rest


def _length(rec: bytes) -> int:
    return int(rec.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])


def issue25_cases():
    """The classes of the nothing-lost issue, built fresh (not the tests' inputs):
    (name, bytes, file suffix, records the file offers, counted when built)."""
    html = "text/html"
    page = (
        "<html><body><article><p>"
        + "国家统计局今天发布数据，前三季度经济平稳增长。" * 30
        + "</p></article></body></html>"
    )

    def one(url, body=page.encode(), headers=(("Content-Type", html),)):
        return warc([(url, body, list(headers))], gz=False)

    yield (
        "chunk size -6 (Transfer-Encoding: chunked)",
        one(
            "http://h/c",
            b"-6\r\n" + page.encode() + b"\r\n0\r\n\r\n",
            [("Content-Type", html), ("Transfer-Encoding", "chunked")],
        ),
        ".warc",
        1,
    )
    for label in ("base64", "rot13", "hex_codec", "zlib", "uu"):
        yield (
            f"charset={label} in the header and <meta>",
            one(
                "http://h/cs",
                page.replace("<html>", f'<html><meta charset="{label}">').encode(),
                [("Content-Type", f"text/html; charset={label}")],
            ),
            ".warc",
            1,
        )
    nested = b'{"text": "' + page.encode() + b'", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
    yield (
        "JSONL line nested 5,000 deep (unused field) between 2 good lines",
        (b'{"text": "a"}\n' + nested + b'{"text": "b"}\n'),
        ".jsonl",
        3,
    )
    for what, damage in (
        ("Content-Length +1000", lambda r: _set_length(r, str(_length(r) + 1000))),
        ("Content-Length +10^15", lambda r: _set_length(r, str(_length(r) + 10**15))),
        ("Content-Length -50", lambda r: _set_length(r, str(_length(r) - 50))),
        ("Content-Length negative", lambda r: _set_length(r, "-1")),
        ("no WARC-Target-URI", lambda r: r.replace(b"WARC-Target-URI: ", b"X-Gone: ", 1)),
    ):
        recs = [one(f"http://h/{i}") for i in range(30)]
        recs[9] = damage(recs[9])
        yield f"30-member .warc.gz, record 10: {what}", b"".join(gzip.compress(r) for r in recs), ".warc.gz", 30
    lines = b"".join(json.dumps({"text": f"第{i}行"}, ensure_ascii=False).encode() + b"\n" for i in range(50))
    yield "50-line .jsonl.gz + 1 stray byte", gzip.compress(lines) + b"\x00\x01", ".jsonl.gz", 50
    big = gzip.compress(lines * 40, compresslevel=1)
    yield ".jsonl.gz cut at 70 % (2,000 lines)", big[: len(big) * 7 // 10], ".jsonl.gz", None
    yield (
        "50 MB WARC header line",
        b"WARC/1.0\r\nWARC-Type: response\r\nX: " + b"a" * 50_000_000 + b"\r\n\r\n" + one("http://h/after"),
        ".warc",
        2,
    )
    yield (
        "45 MB HTTP header block",
        one("http://h/hh", page.encode(), [("Content-Type", html), ("X-Pad", "b" * 45_000_000)])
        + one("http://h/after"),
        ".warc",
        2,
    )
    yield "UTF-16 page with BOM", one("http://h/u16", page.encode("utf-16")), ".warc", 1
    yield "UTF-32-LE page with BOM", one("http://h/u32", b"\xff\xfe\x00\x00" + page.encode("utf-32-le")), ".warc", 1
    yield (
        "UTF-8 page with one stray byte",
        one("http://h/s", page.encode()[:300] + b"\xfe" + page.encode()[300:]),
        ".warc",
        1,
    )
    yield "UTF-8 page cut mid-character (WARC-Truncated)", one("http://h/t", page.encode()[:-20]), ".warc", 1
    text = "正文内容。" * 100 + "\u0301" * 600_000
    yield "600 KB run of combining marks (JSONL text)", json.dumps({"text": text}).encode() + b"\n", ".jsonl", 1
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, make in (
        (
            "Parquet: timestamp past year 9999 in one row of 3",
            lambda: pa.table({"text": ["一", "二", "三"], "date": pa.array([0, 10**12, 0], type=pa.timestamp("s"))}),
        ),
        ("Parquet: one 150 MB text cell among 3", lambda: pa.table({"text": ["一", "长" * 50_000_000, "三"]})),
    ):
        table = make()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        del table  # the runner is forked from this process: keep its memory small
        yield name, buf.getvalue(), ".parquet", 3
        del buf


def _trailer(member: bytes, at: int) -> bytes:
    """Byte ``at`` of the 8-byte trailer changed (0-3: CRC-32, 4-7: length): the data still inflates."""
    return member[: len(member) - 8 + at] + bytes([member[len(member) - 8 + at] ^ 0x5A]) + member[len(member) - 7 + at:]


def issue34_cases():
    """Text that is not valid Unicode, a file name that is not UTF-8, a gzip
    trailer whose check fails: (name, bytes, suffix, offered, file name bytes or None)."""
    page = "<html><body><article><p>" + "国家统计局今天发布数据，前三季度经济平稳增长。" * 30 + "</p></article></body></html>"
    text = "国家统计局今天发布数据，前三季度经济平稳增长。" * 10
    rows = [{"id": "a\ud800", "text": text}, {"id": "b", "url": "http://h/\udc80", "text": text + "二"},
            {"id": "c", "date": "2020\udbff", "text": text + "三"}, {"id": "d", "text": "\udfff" + text + "四"},
            {"id": "e", "t\ud800xt": text}]
    yield ("JSONL: a lone surrogate in id, url, date, text, and a key (5 lines)",
           b"".join(json.dumps(r).encode() + b"\n" for r in rows), ".jsonl", 5, None)
    lines = [json.dumps({"text": f"{text}第{i}行"}, ensure_ascii=False).encode() + b"\n" for i in range(9)]
    members = [gzip.compress(b"".join(lines[i:i + 3]), mtime=0) for i in (0, 3, 6)]
    yield (".jsonl.gz, 3 members of 3 lines: CRC-32 mismatch in the 1st, length mismatch in the 2nd",
           _trailer(members[0], 0) + _trailer(members[1], 5) + members[2], ".jsonl.gz", 9, None)
    one = gzip.compress(b"".join(lines * 40), mtime=0)  # 360 lines (250 KB), inflated in many calls
    yield ".jsonl.gz, one member of 360 lines: CRC-32 mismatch", _trailer(one, 2), ".jsonl.gz", 360, None
    recs = [warc([(f"http://h/{i}", page.encode(), [("Content-Type", "text/html")])], gz=False) for i in range(30)]
    wm = [gzip.compress(r, mtime=0) for r in recs]
    wm[0], wm[9] = _trailer(wm[0], 1), _trailer(wm[9], 7)
    yield "30-member .warc.gz: CRC-32 mismatch in member 1, length mismatch in member 10", b"".join(wm), \
        ".warc.gz", 30, None
    yield "one-stream .warc.gz (10 records): CRC-32 mismatch", _trailer(gzip.compress(b"".join(recs[:10])), 3), \
        ".warc.gz", 10, None
    yield ("JSONL under a file name that is not UTF-8 (caf\\xe9-\\xff.jsonl, 2 lines)",
           b"".join(json.dumps({"text": f"{text}{i}"}, ensure_ascii=False).encode() + b"\n" for i in range(2)),
           ".jsonl", 2, b"caf\xe9-\xff")


def cases():
    html = "text/html"
    page = (
        "<html><body><article><p>"
        + "国家统计局今天发布数据，前三季度经济平稳增长。" * 30
        + "</p></article></body></html>"
    )
    yield (
        "gzip bomb (30 MB of 'a' as Content-Encoding: gzip)",
        warc(
            [
                (
                    "http://h/",
                    gzip.compress(b"<html>" + b"a" * 30_000_000),
                    [("Content-Type", html), ("Content-Encoding", "gzip")],
                )
            ]
        ),
    )
    import brotli

    yield (
        "brotli bomb (30 MB, Content-Encoding: br)",
        warc(
            [
                (
                    "http://h/",
                    brotli.compress(b"<html>" + b"a" * 30_000_000),
                    [("Content-Type", html), ("Content-Encoding", "br")],
                )
            ]
        ),
    )
    yield (
        "giant page (6 MB payload)",
        warc([("http://h/", b"<html><body><p>" + b"x" * 6_000_000 + b"</p></body></html>", [("Content-Type", html)])]),
    )
    yield (
        "deeply nested HTML (100,000 divs)",
        warc(
            [("http://h/", b"<html><body>" + b"<div>" * 100000 + b"x" + b"</div>" * 100000, [("Content-Type", html)])]
        ),
    )
    yield (
        "4.9 MB page of 800,000 tiny tags",
        warc([("http://h/", b"<html><body>" + b"<b>x</b> " * 540_000, [("Content-Type", html)])]),
    )
    yield "binary payload labelled text/html", warc([("http://h/", os.urandom(200_000), [("Content-Type", html)])])
    yield (
        "GBK page labelled UTF-8",
        warc([("http://h/", page.encode("gbk"), [("Content-Type", "text/html; charset=utf-8")])]),
    )
    yield (
        "UTF-8 page labelled GBK",
        warc([("http://h/", page.encode("utf-8"), [("Content-Type", "text/html; charset=gbk")])]),
    )
    yield (
        "mixed UTF-8 + GBK bytes",
        warc([("http://h/", page.encode("utf-8") + page.encode("gbk"), [("Content-Type", html)])]),
    )
    yield (
        "unknown Content-Encoding",
        warc([("http://h/", page.encode(), [("Content-Type", html), ("Content-Encoding", "zstd")])]),
    )
    good = warc([("http://h/1", page.encode(), [("Content-Type", html)])] * 3)
    yield "WARC.gz truncated mid-record (3 records)", good[: len(good) * 2 // 3 + len(good) // 6]
    yield "garbage bytes named .warc.gz", os.urandom(20000)
    yield "plain text named .warc.gz", b"this is not a warc\n" * 100
    yield "empty file", b""
    raw = warc([("http://h/1", page.encode(), [("Content-Type", html)])], gz=False)
    yield "wrong Content-Length (too large)", raw.replace(b"Content-Length: ", b"Content-Length: 9", 1) + raw
    yield "record without WARC headers", b"WARC/1.0\r\n\r\n<html>x</html>\r\n\r\n"


COARSE_STRESS = r"""
import json, random, sys, time
from mdfs.pipeline.config import load_config
from mdfs.pipeline.stages.coarse import CoarseRules
from mdfs.pipeline.records import Document
rules = CoarseRules(load_config().coarse, {"s": ([], 0.0)})
N = 5_000_000  # the largest text one record can carry (read.max_payload_bytes)
rnd = random.Random(0)
han = "".join(chr(rnd.randrange(0x4e00, 0x9fff)) for _ in range(N))
cases = {
    "5M Han characters, one line": han,
    "5M Han, a line break every 20": "\n".join(han[i:i + 20] for i in range(0, N, 20)),
    "one character repeated 5M times": "\u597d" * N,
    "1.25M English words, one line": " ".join(rnd.choice(["the", "a", "cat", "and", "of"]) for _ in range(N // 4)),
    "5M Chinese punctuation": "\u3002\uff0c\uff01\uff1f" * (N // 4),
    "'a.' 2.5M times, no spaces": "a." * (N // 2),
    "the same Chinese sentence, 5M chars": ("\u8fd9\u662f\u4e00\u4e2a\u53e5\u5b50\u3002" * 10 + "\n") * (N // 71),
    "a URL repeated, 5M chars": "http://x.com/" * (N // 13),
    "combining marks, 5M": "\u6b63" + "\u0301" * N,
}
rows = []
for name, text in cases.items():
    t0 = time.perf_counter()
    _, verdict = rules.apply(Document(key="k", id="i", source="s", text=text))
    rows.append({"case": name, "seconds": round(time.perf_counter() - t0, 2),
                 "outcome": "kept" if verdict is None else verdict[0]})
print(json.dumps(rows))
"""


def main():
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-hostile-"))
    rows = []
    # cases are built one at a time: each runner is forked from this process, and a
    # fork starts with its parent's peak RSS, which would hide the runner's own
    built_with = {
        "WARC.gz truncated mid-record (3 records)": 3,
        "garbage bytes named .warc.gz": None,
        "plain text named .warc.gz": None,
        "empty file": 0,
        "wrong Content-Length (too large)": 2,
    }
    # issue25_cases ends with a 150 MB Parquet cell, after which every runner would inherit this process's peak
    all_cases = itertools.chain(((n, d, ".warc.gz", built_with.get(n, 1), None) for n, d in cases()),
                                issue34_cases(), ((*c, None) for c in issue25_cases()))
    for i, (name, data, suffix, offered, stem) in enumerate(all_cases):
        path = os.fsdecode(os.path.join(os.fsencode(str(tmp)), (stem or b"case%d" % i) + suffix.encode()))
        with open(path, "wb") as fh:
            fh.write(data)
        size = len(data)
        del data
        r = subprocess.run(
            [sys.executable, "-c", RUNNER, path, str(REPO / "tests")], capture_output=True, text=True, timeout=600
        )
        line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        res = (
            json.loads(line)
            if line
            else {"outcomes": [f"CRASH: {r.stderr[-300:]}"], "seconds": None, "peak_rss_mb": None, "read": None}
        )
        res["case"], res["bytes"], res["offered"] = name, size, offered
        rows.append(res)
        print(name, res["outcomes"], res["seconds"], res["peak_rss_mb"])
    L = [
        "# Hostile input: measured",
        "",
        "## How records are accounted for",
        "",
        "What a file offers is counted from its container, not from what the record parser managed to read "
        "(`pipeline/io/readers/container.py`): a gzip file is read member by member (zlib finds each member's end and "
        "checks its CRC), a JSONL file line by line, a Parquet file row group by row group against the footer's "
        "row counts. A damaged record is one dead letter and reading resumes after it: at the next gzip member, or "
        "inside a member or an uncompressed file at the next line that starts a WARC header block whose own "
        "Content-Length ends at a record boundary. Where the container says how many records a damaged stretch "
        "held (a member of a one-record-per-member file, a JSONL line, the rows of a Parquet row group) there is "
        "one dead letter per record; otherwise one with `records: null`, counted per source as "
        "`unknown_size_stretches` in `funnel.json`, so `read` never hides a loss.",
        "",
        "A gzip member whose trailer check fails (its CRC-32 or length does not match data that inflated whole) is "
        "inflated again as raw deflate, which checks no trailer, so all its records are counted: those the reader "
        "passed on before the check failed are read, the last one (still held when the check fails) is a "
        "`corrupt_container` dead letter at its offset: a WARC record at its member's byte offset, a JSONL line at "
        "its line index. This holds for the first member as for any other; the next member is then searched from "
        "the damaged one's first byte, as after any damage, since damage over a member's end can run its deflate "
        "stream into the next member's bytes.",
        "",
        "Text that is not valid Unicode: a JSON escape that decodes to a lone surrogate (`\"\\ud800\"`) is "
        "replaced by U+FFFD in whichever field holds it (id, url, date, the text, or the field a source's field "
        "map names) and counted with the invalid UTF-8 bytes (`decoded_with_replacement`), as is one a codec "
        "such as `unicode_escape` produces from a page; a JSONL line or a Parquet string cell whose bytes are not "
        "UTF-8 is one dead letter (`decode_error`, `bad_field`); WARC and ARC header values are decoded with "
        "U+FFFD, so they never hold one. No row is written with a lone surrogate: `pipeline/records.py` replaces "
        "any left in a message (a JSON key quoted in a dead letter) before the row reaches Beam's coders or "
        "Parquet.",
        "",
        "A file name that is not UTF-8 (bytes in a local path, matched by a glob or named exactly) is read: "
        "the name travels between steps as bytes and is written with each byte that is not UTF-8 as `\\xNN` "
        "(`caf\\xe9.jsonl`) in kept, dropped and failed.",
        "",
        "Per-record limits (all in `pipeline/defaults.yaml`): payload, JSONL line and Parquet text cell "
        "`read.max_payload_bytes` (5 MB); decompressed and de-chunked payload `read.max_decompressed_bytes` "
        "(20 MB); WARC and HTTP header blocks `read.max_header_bytes` (256 KiB); chunk sizes are hex digits only "
        "(no sign), so de-chunking always moves forward; runs of combining marks cut at Unicode's stream-safe 30 "
        "before normalisation; extraction in a child process with `extract.timeout_s` (20 s) and "
        "`extract.memory_limit_mb` (2,048 MB); only text encodings are accepted as charsets; UTF-16/32 with a "
        "byte-order mark or a declaration are text; UTF-8 with at most `read.max_invalid_utf8_share` (1 %) invalid "
        "bytes is decoded with U+FFFD (counted as `decoded_with_replacement`). Any exception from one record "
        "becomes that record's dead letter.",
        "",
        "## Cases",
        "",
        f"Generated by `python bench/hostile.py` on {datetime.date.today().isoformat()}: "
        "each case is a file read by the pipeline's reader and extracted by its extractor (child process, "
        "default limits: 5 MB payload, 20 MB decompressed, 20 s, 2,048 MB address space), in a fresh process. "
        "Peak RSS is the larger of the worker and its extractor child.",
        "",
        "",
        "*offered* is the number of records the case was built with (counted when it was written, independently of "
        "the reader; '-' where a cut makes it unknowable); *read* is what the funnel counts: outcome rows, one "
        "per record, plus one `records: null` row per damaged stretch of unknown size. *max s/record* is the "
        "slowest single record through extraction and the coarse stage.",
        "",
        "| case | file bytes | offered | read | outcome per record | seconds | max s/record | peak RSS (MB) |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        outs = r["outcomes"]
        summary = "; ".join(f"{k} ×{outs.count(k)}" if outs.count(k) > 1 else k for k in dict.fromkeys(outs)) or "-"
        L.append(
            f"| {r['case']} | {r['bytes']:,} | {r['offered'] if r['offered'] is not None else '-'} | {r['read']} | "
            f"{summary} | {r['seconds']} | {r.get('max_record_s')} | {r['peak_rss_mb']} |"
        )
    L += [
        "",
        "In every case read = kept + dropped + failed holds (each record read has exactly one outcome above), "
        "and the job goes on. Such cases run as one job in `tests/test_hostile.py::test_hostile_records_end_to_end` "
        "and, for text that is not valid Unicode, a file name that is not UTF-8 and gzip trailers, in "
        "`tests/test_nothing_lost.py::test_hostile_text_names_and_trailers_end_to_end` (exact counts per source); "
        "both check the invariant from the Parquet output.",
        "",
        "Property-based tests (hypothesis) over WARC bytes, HTTP headers, charsets/encodings, HTML, any code point "
        "in any JSONL field and any bytes in a file name (`tests/test_hostile.py`), and over damage at any offset "
        "and in any gzip trailer byte (`tests/test_nothing_lost.py`) run in CI; the long fuzz run is "
        "`python bench/fuzz.py --inputs 10000`.",
    ]
    r = subprocess.run([sys.executable, "-c", COARSE_STRESS], capture_output=True, text=True, timeout=900)
    stress = json.loads(r.stdout.strip().splitlines()[-1])
    L += [
        "",
        "## The coarse stage on the largest text one record can carry",
        "",
        "Normalisation, language ID and every rule on 5-million-character texts of hostile shapes, one core "
        "(all rules are linear in the text; the read caps bound the text):",
        "",
        "| text | seconds | outcome |",
        "|---|---:|---|",
    ]
    L += [f"| {row['case']} | {row['seconds']} | {row['outcome']} |" for row in stress]
    speed = REPO / "bench" / "read_results.json"
    if speed.exists():
        sp = json.loads(speed.read_text())
        L += [
            "",
            "## Reading speed",
            "",
            f"`{sp['command']}`: the reader against the previous warcio-based one "
            f"(git {sp['baseline_rev']}), same files, same run, medians:",
            "",
            "| input | outputs | previous reader s | this reader s | ratio | previous reader's outputs |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in sp["results"]:
            L.append(
                f"| {r['input']} | {r['outputs']:,} | {r['baseline_s']} | {r['new_s']} | {r['ratio']}x | "
                f"{r['baseline_outputs']:,} |"
            )
        L += [
            "",
            "The previous reader read only the first records of a whole-file gzip stream (its outputs "
            "column), so no speed ratio is meaningful on that row: it did not read the file.",
        ]
    fuzz = REPO / "bench" / "fuzz_results.json"
    if fuzz.exists():
        f = json.loads(fuzz.read_text())
        top = ", ".join(f"{k} {v}" for k, v in list(f["outcomes"].items())[:12])
        names = {"warc_mutation": "mutated sample WARCs, random bytes, random HTML",
                 "gzip_trailer": "sample WARCs with damaged gzip trailers",
                 "jsonl_surrogates": "JSONL with lone surrogates in any field, some gzipped with damaged trailers"}
        families = ", ".join(f"{n:,} {names.get(k, k)}" for k, n in f["families"].items())
        L += [
            "",
            "## Long fuzz run",
            "",
            f"`{f['command']}`: {f['inputs']:,} generated inputs ({families}; a fifth of them under a file "
            f"name that is not UTF-8) through the reader and the extractor in {f['seconds']} s: "
            f"**{f['unhandled_exceptions']} unhandled exceptions, {f['unaccounted_inputs']} inputs whose record "
            f"count is known (trailer damage, JSONL lines) with another number of outcomes, "
            f"{f['unwritable_rows']} outcomes with text that strict UTF-8 refuses**. Most frequent outcomes: {top}.",
        ]
    read_back = REPO / "bench" / "read_back_results.json"
    if read_back.exists():  # measured by bench/read_back.py, kept when this page is rewritten
        sys.path.insert(0, str(REPO / "bench"))
        from read_back import section

        L += ["", *section(json.loads(read_back.read_text()))]
    (REPO / "docs" / "HOSTILE_INPUT.md").write_text("\n".join(L) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
