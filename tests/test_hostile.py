"""Hostile input and faults: planted damage, property-based fuzzing of the
reader and the extractor, deterministic retries, and a killed run."""
from __future__ import annotations

import gzip
import io
import os
import random
import signal
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.stages.extract import ExtractDoFn
from mdfs.pipeline.io.payload import decode_content_encoding, decode_html, PayloadError, PayloadTooLarge
from mdfs.pipeline.records import RawRecord

from helpers import assert_invariant, read_file, real_zh_texts, run_job, write_jsonl_gz


def _record_bytes(url: str, body: bytes, headers: list[tuple[str, str]], status: str = "200 OK") -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


PAGE = ("<html><head><title>t</title></head><body><article><p>" + real_zh_texts()[0][:800] +
        "</p></article></body></html>").encode("utf-8")


def test_wrong_content_length_and_missing_headers(tmp_path):
    good = _record_bytes("http://a/1", PAGE, [("Content-Type", "text/html")])
    lying = good.replace(b"Content-Length: ", b"Content-Length: 9", 1)  # claims far more than is there
    no_headers = b"WARC/1.0\r\n\r\n" + b"<html>no warc headers</html>\r\n\r\n"
    expected = {  # name: (records kept, [(error kind, records the dead letter stands for)])
        "lying.warc": (1, [("truncated_record", 1)]),
        "noheaders.warc": (0, [("bad_content_length", 1)]),
        "tail.warc": (1, [("unreadable_container", None)]),  # NUL bytes after the last record: a stretch
    }
    for name, data in (("lying.warc", good + lying), ("noheaders.warc", no_headers), ("tail.warc", good + b"\x00" * 50)):
        path = tmp_path / name
        path.write_bytes(data)
        out = read_file(path)
        got = (len(out["records"]), [(f.error_kind, f.records) for f in out["failed"]])
        assert got == expected[name], name
        assert not out["dropped"]


def test_mixed_and_invalid_encodings(tmp_path):
    zh = real_zh_texts()[1][:300]
    mixed = zh.encode("utf-8") + "，后半部分是GBK编码。".encode("gbk")
    # 3 % of the bytes are not UTF-8 (over the 1 % replacement allowance) and no
    # single charset decodes the whole: refused (a decode_error dead letter), never mojibake
    with pytest.raises(UnicodeError):
        decode_html(mixed)
    wet = tmp_path / "bad.warc.wet.gz"
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    w.write_record(w.create_warc_record("http://a/", "conversion", payload=io.BytesIO(b"\xff\xfe\xfd" * 50 + b"\x00\x81"),
                                        warc_content_type="text/plain"))
    wet.write_bytes(buf.getvalue())
    out = read_file(wet)
    # all invalid as UTF-8, but it starts with a UTF-16-LE byte-order mark: decoded by that evidence
    assert len(out["records"]) == 1 and not out["failed"] and out["records"][0].text


def test_retried_bundle_gives_identical_outputs():
    """Runners retry bundles and discard a failed attempt's output; that is only
    safe if processing is deterministic and side-effect free.  Run reader and
    extractor twice over the same bundle with fresh DoFn instances."""
    path = SAMPLES_DIR / "warc" / "cc-main-2020-34_sample_resiliparse.warc.gz"
    first, second = read_file(path), read_file(path)
    assert [r.__dict__ for r in first["records"]] == [r.__dict__ for r in second["records"]]
    cfg = load_config().extract

    def extract_all(records):
        fn = ExtractDoFn(cfg, 0.01)
        fn.setup()
        try:
            return [(o.tag, o.value) if isinstance(o, beam.pvalue.TaggedOutput) else ("kept", o)
                    for r in records for o in fn.process(r)]
        finally:
            fn.teardown()

    assert extract_all(first["records"]) == extract_all(second["records"])


def test_killed_run_leaves_no_complete_looking_output(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "config.yaml").exists() and time.time() < deadline:  # the run has begun
        time.sleep(0.05)
    time.sleep(1.0)  # mid-run: the pipeline is being built or is reading and extracting
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists()
    assert not list((out / "kept").glob("part-*.parquet")) if (out / "kept").exists() else True
    # rerunning into it is refused, or replaces it cleanly with --overwrite
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    r = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (out / "_SUCCESS").exists()
    clean = run_job(tmp_path / "clean")
    from helpers import load_output

    again = load_output(out)
    assert sorted(r["id"] for r in again["kept"]) == sorted(r["id"] for r in clean["kept"])


def test_hostile_records_end_to_end(tmp_path):
    """Every hostile case in one job: the job finishes and accounts for all."""
    records = [
        ("http://h/bomb", gzip.compress(b"<html>" + b"a" * 30_000_000), [("Content-Type", "text/html"),
                                                                          ("Content-Encoding", "gzip")]),
        ("http://h/binary", random.Random(0).randbytes(5000), [("Content-Type", "text/html")]),
        ("http://h/deep", b"<html><body>" + b"<div>" * 50000 + b"x" + b"</div>" * 50000 + b"</body></html>",
         [("Content-Type", "text/html")]),
        ("http://h/giant", b"<html><body><p>" + "长".encode() * 2_000_000 + b"</p></body></html>",
         [("Content-Type", "text/html")]),
        ("http://h/badenc", PAGE, [("Content-Type", "text/html"), ("Content-Encoding", "zstd-nonsense")]),
        ("http://h/ok", PAGE, [("Content-Type", "text/html; charset=gbk")]),  # UTF-8 labelled GBK
    ]
    data = b"".join(_record_bytes(u, b, h) for u, b, h in records)
    (tmp_path / "hostile.warc").write_bytes(data)
    (tmp_path / "trunc.warc.gz").write_bytes(gzip.compress(data)[:5000])
    (tmp_path / "notgzip.warc.gz").write_bytes(b"plain text, not gzip at all")
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    write_jsonl_gz(tmp_path / "lines.jsonl.gz", [{"id": "ok", "text": real_zh_texts()[2]}],
                   raw_lines=[b'{"text": "\\ud800 lone surrogate"}', b"\xff\xfe", b'{"text": "' + b"x" * 100 + b'"'])
    res = run_job(tmp_path / "o", sources=[f"h={tmp_path}/*.warc*", f"j={tmp_path}/lines.jsonl.gz"])
    assert_invariant(res)
    outcomes = {r["url"]: r.get("reason") or r.get("error_kind") for r in res["dropped"] + res["failed"]
                if r["url"] and r["file"].endswith("hostile.warc")}
    assert outcomes["http://h/bomb"] == "decompressed_too_large"
    assert outcomes["http://h/binary"] == "binary_payload"  # NUL bytes, no byte-order mark
    assert outcomes["http://h/giant"] == "too_large"
    assert outcomes["http://h/badenc"] == "malformed_record"
    assert "http://h/ok" in {r["url"] for r in res["kept"]}
    kinds = {r["error_kind"] for r in res["failed"]}
    assert {"empty_file", "unreadable_container"} <= kinds


# --- property-based fuzzing (the long run: python bench/fuzz.py) ------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4000))
def test_fuzz_reader_never_raises_on_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fz") / "x.warc.gz"
    path.write_bytes(data)
    out = read_file(path)
    # every non-empty file has at least one outcome: records, or a dead letter for what is not one
    assert sum(len(v) for v in out.values()) >= (1 if data else 0)
    assert data or [f.error_kind for f in out["failed"]] == ["empty_file"]


@FUZZ
@given(st.lists(st.tuples(st.text(min_size=1, max_size=30), st.text(max_size=60)), max_size=6),
       st.sampled_from(["200 OK", "404 Not Found", "301 Moved", "999 Weird", "200"]), st.binary(max_size=3000))
def test_fuzz_http_headers(tmp_path_factory, headers, status, body):
    safe = [(k.replace("\r", "").replace("\n", "").replace(":", "") or "X", v.replace("\r", "").replace("\n", ""))
            for k, v in headers]
    try:
        data = _record_bytes("http://f/", body, safe, status)
    except Exception:  # warcio refuses some header values itself: nothing to test
        return
    path = tmp_path_factory.mktemp("fh") / "h.warc"
    path.write_bytes(data)
    out = read_file(path)
    assert len(out["records"]) + len(out["dropped"]) + len(out["failed"]) == 1


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([None, "utf-8", "gbk", "big5", "latin-1", "nonsense-charset"]))
def test_fuzz_decoding_never_raises_unexpectedly(data, charset):
    try:
        text, enc, evidence, _ = decode_html(data, charset)
        assert isinstance(text, str)
    except UnicodeError:
        pass
    for enc in ("gzip", "deflate", "br", "gzip, br"):
        try:
            decode_content_encoding(data, enc, 100_000)
        except (PayloadError, PayloadTooLarge):
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000))
def test_fuzz_extractor_inprocess(html):
    cfg = load_config().extract.model_copy(update={"isolation": "inprocess"})
    fn = ExtractDoFn(cfg, 0.01)
    fn.setup()
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, payload=html.encode("utf-8", "surrogatepass"))
    outs = list(fn.process(rec))
    assert len(outs) == 1


ANY_CODE_POINT = st.text(st.one_of(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
                                   st.characters(codec=None, blacklist_categories=())), max_size=20)  # surrogates often


@FUZZ
@given(st.lists(st.fixed_dictionaries({}, optional={"id": ANY_CODE_POINT, "url": ANY_CODE_POINT,
                                                    "date": ANY_CODE_POINT, "body": ANY_CODE_POINT,
                                                    "extra": ANY_CODE_POINT}), min_size=1, max_size=5),
       st.sampled_from(["text", "body"]))
def test_fuzz_jsonl_any_code_point_in_any_field(tmp_path_factory, rows, text_field):
    """Any code point, lone surrogates included, in any field or the field map's
    target: one outcome per line, every value valid Unicode, every surrogate counted."""
    if text_field == "text":
        rows = [{("text" if k == "body" else k): v for k, v in r.items()} for r in rows]
    path = tmp_path_factory.mktemp("sg") / "x.jsonl"
    path.write_bytes(b"".join(__import__("json").dumps(r).encode() + b"\n" for r in rows))
    fields = {"id": "id", "text": text_field, "url": "url", "date": "date"}
    out = read_file(path, {"fields": fields})
    assert len(out["records"]) + len(out["dropped"]) + len(out["failed"]) == len(rows)
    texts = [(rec.id, rec.url, rec.date, rec.text) for rec in out["records"]]
    assert all(_strict_utf8(v) for values in texts for v in values if v is not None)
    assert all(_strict_utf8(v) for x in out["failed"] + out["dropped"] for v in x.to_row().values()
               if isinstance(v, str))
    surrogates = sum(_surrogates(r[f]) for r in rows if isinstance(r.get(text_field), str)
                     for f in fields.values() if f in r)
    assert sum(rec.replaced_bytes for rec in out["records"]) == surrogates


def _strict_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _surrogates(text: str) -> int:
    return sum("\ud800" <= c <= "\udfff" for c in text)


@FUZZ
@given(st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")))
def test_fuzz_any_bytes_in_a_file_name(tmp_path_factory, name):
    """A name of any bytes: the file is read and its name written printable."""
    folder = tmp_path_factory.mktemp("nm")
    path = os.fsdecode(os.path.join(os.fsencode(str(folder)), name + b".jsonl"))
    with open(path, "wb") as fh:
        fh.write(b'{"text": "x"}\n{"nope\n')
    out = read_file(path)
    assert len(out["records"]) == 1 and [f.error_kind for f in out["failed"]] == ["json_error"]
    shown = {r.file for r in out["records"]} | {f.file for f in out["failed"]}
    assert len(shown) == 1 and os.fsencode(path).decode("utf-8", "backslashreplace") in shown
