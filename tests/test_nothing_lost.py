"""Nothing lost: what a file offers is counted from its container, a damaged
record never hides the records after it, every per-record step is bounded,
and no single record can end the job.  Each class of damage is planted here
with a known answer per record."""
from __future__ import annotations

import gzip
import io
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.io import payload as pl
from mdfs.pipeline.textnorm import normalise

from helpers import assert_invariant, read_file, real_zh_texts, run_job

ZH = real_zh_texts()[0][:600]
PAGE = f"<html><head><title>t</title></head><body><article><p>{ZH}</p></article></body></html>".encode()


def record(url: str, body: bytes = PAGE, headers=(("Content-Type", "text/html"),), status="200 OK") -> bytes:
    """One uncompressed WARC response record, as a real writer frames it."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    http = StatusAndHeaders(status, list(headers), protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


def urls(n: int) -> list[str]:
    return [f"http://site.example/{i}" for i in range(n)]


def outcome_urls(out) -> dict:
    return {"records": [r.url for r in out["records"]], "dropped": [d.url for d in out["dropped"]],
            "failed": [f.url for f in out["failed"]]}


def set_content_length(rec: bytes, value: str) -> bytes:
    head, sep, rest = rec.partition(b"\r\n\r\n")
    lines = [ln if not ln.lower().startswith(b"content-length:") else b"Content-Length: " + value.encode()
             for ln in head.split(b"\r\n")]
    return b"\r\n".join(lines) + sep + rest


DAMAGE = {
    "length_too_large_by_1000": lambda r: set_content_length(r, str(int(_cl(r)) + 1000)),
    "length_too_large_by_1e15": lambda r: set_content_length(r, str(int(_cl(r)) + 10**15)),
    "length_too_small": lambda r: set_content_length(r, str(int(_cl(r)) - 100)),
    "length_negative": lambda r: set_content_length(r, "-6"),
    "length_not_a_number": lambda r: set_content_length(r, "12abc"),
    "no_target_uri": lambda r: b"\r\n".join(ln for ln in r.split(b"\r\n") if not ln.startswith(b"WARC-Target-URI")),
    "header_block_over_cap": lambda r: r.replace(b"WARC-Type: response\r\n",
                                                  b"WARC-Type: response\r\nX-Big: " + b"a" * 300_000 + b"\r\n", 1),
}


def _cl(r: bytes) -> str:
    for ln in r.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if ln.lower().startswith(b"content-length:"):
            return ln.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Content-Length")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("layout", ["member_per_record", "plain"])
def test_one_damaged_record_never_hides_the_rest(tmp_path, damage, layout):
    """30 records, the 5th damaged: 29 read intact, the damaged one is one dead letter."""
    recs = [record(u) for u in urls(30)]
    recs[4] = DAMAGE[damage](recs[4])
    path = tmp_path / ("x.warc.gz" if layout == "member_per_record" else "x.warc")
    path.write_bytes(b"".join(gzip.compress(r) for r in recs) if layout == "member_per_record" else b"".join(recs))
    out = read_file(path)
    got = outcome_urls(out)
    intact = [u for i, u in enumerate(urls(30)) if i != 4]
    assert got["records"] == intact, damage
    assert len(out["failed"]) == 1 and not out["dropped"]
    failed = out["failed"][0]
    assert failed.records in (1, None)
    if layout == "member_per_record":
        assert failed.records == 1, "a gzip member holds one record: the container says how many were lost"
        assert failed.offset == sum(len(gzip.compress(r)) for r in recs[:4])


@pytest.mark.parametrize("layout", ["whole_file_stream", "several_per_member"])
def test_gzip_layouts_outside_common_crawl_are_read_whole(tmp_path, layout):
    recs = [record(u) for u in urls(12)]
    if layout == "whole_file_stream":  # `gzip file.warc`
        data = gzip.compress(b"".join(recs))
    else:
        data = b"".join(gzip.compress(b"".join(recs[i:i + 4])) for i in range(0, 12, 4))
    path = tmp_path / "x.warc.gz"
    path.write_bytes(data)
    out = read_file(path)
    assert [r.url for r in out["records"]] == urls(12) and not out["failed"]
    assert len({r.key for r in out["records"]}) == 12


def test_damage_inside_a_whole_file_stream_resynchronises(tmp_path):
    recs = [record(u) for u in urls(10)]
    recs[3] = set_content_length(recs[3], str(int(_cl(recs[3])) + 500))
    path = tmp_path / "x.warc.gz"
    path.write_bytes(gzip.compress(b"".join(recs)))
    out = read_file(path)
    assert [r.url for r in out["records"]] == [u for i, u in enumerate(urls(10)) if i != 3]
    assert [f.error_kind for f in out["failed"]] == ["bad_content_length"]


def test_corrupt_and_cut_gzip_members(tmp_path):
    members = [gzip.compress(record(u)) for u in urls(10)]
    corrupt = bytearray(members[2])
    corrupt[len(corrupt) // 2:len(corrupt) // 2 + 40] = b"\x00" * 40  # deflate data destroyed
    cut = members[6][: len(members[6]) // 2]  # a member cut short, followed by intact ones
    path = tmp_path / "x.warc.gz"
    path.write_bytes(b"".join([*members[:2], bytes(corrupt), *members[3:6], cut, *members[7:]]))
    out = read_file(path)
    assert [r.url for r in out["records"]] == [u for i, u in enumerate(urls(10)) if i not in (2, 6)]
    assert len(out["failed"]) == 2 and all(f.records == 1 for f in out["failed"])


def test_payload_text_that_looks_like_a_warc_header_is_not_a_record(tmp_path):
    """Resynchronisation only accepts a header block whose own Content-Length
    ends at a record boundary: WARC/1.0 lines inside a payload are text."""
    inner = b"\n".join([b"WARC/1.0", b"WARC-Type: response", b"Content-Length: 99999", b"", b"fake"])
    body = PAGE.replace(b"</article>", b"<pre>\n" + inner + b"\n</pre></article>")
    recs = [record(urls(3)[0]), record(urls(3)[1], body), record(urls(3)[2])]
    recs[1] = set_content_length(recs[1], str(int(_cl(recs[1])) + 7))
    path = tmp_path / "x.warc"
    path.write_bytes(b"".join(recs))
    out = read_file(path)
    assert [r.url for r in out["records"]] == [urls(3)[0], urls(3)[2]]
    assert len(out["failed"]) == 1


def test_trailing_garbage_and_padding(tmp_path):
    members = [gzip.compress(record(u)) for u in urls(3)]
    padded = tmp_path / "padded.warc.gz"
    padded.write_bytes(b"".join(members) + b"\x00" * 512)  # tape-style padding is not damage
    assert len(read_file(padded)["records"]) == 3 and not read_file(padded)["failed"]
    stray = tmp_path / "stray.warc.gz"
    stray.write_bytes(b"".join(members) + b"X")
    out = read_file(stray)
    assert len(out["records"]) == 3 and [f.records for f in out["failed"]] == [None]


# --- JSONL ---------------------------------------------------------------------------

def _lines(n: int) -> bytes:
    return b"".join(json.dumps({"id": str(i), "text": f"第{i}行"}, ensure_ascii=False).encode() + b"\n"
                    for i in range(n))


def test_jsonl_gzip_with_a_stray_byte_keeps_every_line(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(_lines(50)) + b"\x07")
    out = read_file(path)
    assert len(out["records"]) == 50
    assert [(f.error_kind, f.records) for f in out["failed"]] == [("unreadable_container", None)]


def test_jsonl_gzip_cut_keeps_complete_lines_and_multi_member_is_read(tmp_path):
    data = _lines(400)
    full = gzip.compress(data, compresslevel=1)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: int(len(full) * 0.6)])
    out = read_file(path)
    decoded = gzip.GzipFile(fileobj=io.BytesIO(full[: int(len(full) * 0.6)]))
    complete = 0
    try:
        for line in decoded:
            complete += line.endswith(b"\n")
    except EOFError:
        pass
    assert len(out["records"]) >= complete - 1 and len(out["records"]) > 100
    assert [r.id for r in out["records"]] == [str(i) for i in range(len(out["records"]))]
    assert len(out["failed"]) == 1
    multi = tmp_path / "multi.jsonl.gz"  # `cat a.gz b.gz`, with a line split across the members
    multi.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    assert [r.id for r in read_file(multi)["records"]] == [str(i) for i in range(400)]


def test_jsonl_deep_nesting_and_blank_lines_are_accounted(tmp_path):
    deep = b'{"text": "ok", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "x.jsonl"
    path.write_bytes(_lines(3) + deep + b"\n\n" + _lines(2))
    out = read_file(path)
    assert len(out["records"]) == 5
    assert [f.error_kind for f in out["failed"]] == ["json_error"]
    assert [s.record_type for s in out["skipped"]] == ["blank_line"]


# --- Parquet -----------------------------------------------------------------------

def test_parquet_bad_cell_fails_only_its_row(tmp_path):
    # a timestamp past year 9999 is valid in Parquet but not as a Python datetime
    dates = pa.array([0, 10**12, 0], type=pa.timestamp("s"))  # 10**12 s: year 33658
    table = pa.table({"text": ["a", "b", "c"], "date": dates})
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    out = read_file(path)
    assert [r.text for r in out["records"]] == ["a", "c"]
    assert [(f.error_kind, f.offset) for f in out["failed"]] == [("bad_field", 1)]


def test_parquet_corrupt_row_group_fails_its_rows_only(tmp_path):
    path = tmp_path / "x.parquet"
    table = pa.table({"text": [f"row {i} " + "x" * 200 for i in range(300)]})
    pq.write_table(table, path, row_group_size=100, compression="none")
    md = pq.ParquetFile(path).metadata
    col = md.row_group(1).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + 64] = os.urandom(64)  # the second row group's pages are destroyed
    path.write_bytes(bytes(data))
    out = read_file(path)
    assert len(out["records"]) == 200
    assert len(out["failed"]) == 100 and {f.error_kind for f in out["failed"]} == {"unreadable_row_group"}
    assert sorted(f.offset for f in out["failed"]) == list(range(100, 200))


def test_parquet_cell_cap_and_missing_footer(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["small", "长" * 400_000, "small too"]}), path)
    out = read_file(path, read_overrides={"max_payload_bytes": 100_000})
    assert [r.text for r in out["records"]] == ["small", "small too"]
    assert [d.reason for d in out["dropped"]] == ["too_large"]
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(path.read_bytes()[:-20])
    out = read_file(cut)
    assert [(f.error_kind, f.records) for f in out["failed"]] == [("unreadable_container", None)]


# --- bounded per-record work --------------------------------------------------------

def test_negative_chunk_size_does_not_hang(tmp_path):
    body = b"-6\r\nabcdef\r\n0\r\n\r\n"
    path = tmp_path / "x.warc"
    path.write_bytes(record("http://a/chunk", body, (("Content-Type", "text/html"), ("Transfer-Encoding", "chunked"))))
    t0 = time.monotonic()
    out = read_file(path)
    assert time.monotonic() - t0 < 5
    assert len(out["records"]) + len(out["dropped"]) + len(out["failed"]) == 1


def test_header_caps(tmp_path):
    big_http = record("http://a/big", PAGE, (("Content-Type", "text/html"), ("X-Pad", "a" * 2_000_000)))
    huge_line = b"WARC/1.0\r\nWARC-Type: response\r\nX: " + b"b" * 5_000_000 + b"\r\n\r\n"
    path = tmp_path / "x.warc"
    path.write_bytes(record("http://a/1") + big_http + huge_line + record("http://a/2"))
    t0 = time.monotonic()
    out = read_file(path, read_overrides={"max_header_bytes": 65536})
    assert time.monotonic() - t0 < 10
    assert [r.url for r in out["records"]] == ["http://a/1", "http://a/2"]
    assert len(out["failed"]) == 2


def test_normalisation_of_a_long_run_of_combining_marks_is_fast():
    text = "正文" + "\u0301\u0316\u0323" * 300_000
    t0 = time.monotonic()
    out = normalise(text)
    assert time.monotonic() - t0 < 2
    assert out.startswith("正文") and len(out) <= 2 + 30


# --- charsets ---------------------------------------------------------------------------

@pytest.mark.parametrize("label", ["base64", "rot13", "hex", "zlib", "bz2", "uu", "quopri", "nonsense-charset"])
def test_codec_labels_that_are_not_charsets_are_ignored(label):
    data = f'<html><head><meta charset="{label}"></head><body>{ZH}</body></html>'.encode("utf-8")
    text, enc, _, _ = pl.decode_html(data, label)
    assert ZH[:50] in text and enc == "utf-8"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_pages_are_text(encoding):
    html = f"<html><body><p>{ZH}</p></body></html>"
    data = html.encode(encoding)
    if encoding.endswith(("le", "be")):
        data = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
                "utf-32-be": b"\x00\x00\xfe\xff"}[encoding] + data
    assert not pl.looks_binary(data)
    assert pl.decode_html(data).text.strip() == html
    declared = html.encode("utf-16-le")  # no mark, but the header says so
    assert not pl.looks_binary(declared, "utf-16le") and pl.decode_html(declared, "utf-16le").text == html


def test_utf8_with_a_stray_byte_or_a_cut_character_is_decoded_with_replacement():
    data = f"<html><meta charset=utf-8><p>{ZH}</p>".encode()
    at = data.index(b"<p>") + 3
    stray = data[:at] + b"\xff" + data[at:]
    res = pl.decode_html(stray, "utf-8")
    assert res.replaced == 1 and "\ufffd" in res.text and res.encoding == "utf-8"
    cut = data[:-7] + "中".encode()[:2]  # WARC-Truncated at a byte limit, mid-character
    assert pl.decode_html(cut, "utf-8").replaced == 2
    noise = bytes(range(128, 256)) * 20  # mostly invalid: not UTF-8 with a few bad bytes
    assert pl.decode_text_utf8(b"abc", 0.01) == ("abc", 0)
    with pytest.raises(UnicodeDecodeError):
        pl.decode_text_utf8(data + noise, 0.01)


# --- files, keys, globs (end to end) -------------------------------------------------------

def _jsonl_rows(texts):
    return b"".join(json.dumps({"text": t}, ensure_ascii=False).encode() + b"\n" for t in texts)


def test_same_base_name_in_two_directories_and_overlapping_globs(tmp_path):
    texts = [f"{t}\n第{i}篇。" for i, t in enumerate(real_zh_texts() * 2)]
    for i, d in enumerate(("d1", "d2")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "part-00000.jsonl").write_bytes(_jsonl_rows(texts[i * 3:i * 3 + 3]))
    (tmp_path / "page[1].jsonl").write_bytes(_jsonl_rows(texts[6:7]))
    (tmp_path / "d3.jsonl").mkdir()  # a directory the glob matches
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.jsonl")
    res = run_job(tmp_path / "out", sources=[f"s={tmp_path}/*/part-*.jsonl", f"s={tmp_path}/d1/*.jsonl",
                                             f"e={tmp_path}/page[1].jsonl", f"g={tmp_path}/*.jsonl"],
                  sets=["near_dedup.enabled=false"])
    assert_invariant(res)
    funnel = res["funnel"]["sources"]
    assert funnel["s"]["read"] == 6, "d1 matched twice is read once; d1 and d2 do not collide"
    assert funnel["e"]["read"] == 1, "an exact path with glob characters is that file"
    unreadable = sorted(r["message"].split(": ")[-1] for r in res["failed"] if r["error_kind"] == "unreadable_file")
    assert len(unreadable) == 2 and "is a directory" in unreadable
    assert not any(r["error_kind"] == "duplicate_key" for r in res["failed"])


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


FUZZ_MEMBERS = [gzip.compress(record(u), mtime=0) for u in urls(8)]


@FUZZ
@given(st.data())
def test_fuzz_damage_at_any_offset_of_a_multi_member_file(tmp_path_factory, data):
    """Damage anywhere: every intact member after the damaged one is still read,
    and every member is accounted for (a record, or a dead letter)."""
    n = len(FUZZ_MEMBERS)
    members = FUZZ_MEMBERS
    blob = bytearray(b"".join(members))
    at = data.draw(st.integers(0, len(blob) - 1))
    width = data.draw(st.integers(1, 64))
    kind = data.draw(st.sampled_from(["overwrite", "delete", "insert"]))
    junk = data.draw(st.binary(min_size=width, max_size=width))
    if kind == "overwrite":
        blob[at:at + width] = junk[: len(blob[at:at + width])]
    elif kind == "delete":
        del blob[at:at + width]
    else:
        blob[at:at] = junk
    path = tmp_path_factory.mktemp("fz") / "x.warc.gz"
    path.write_bytes(bytes(blob))
    out = read_file(path)
    bounds = [sum(len(m) for m in members[:i]) for i in range(n + 1)]
    untouched = [i for i in range(n) if bounds[i + 1] <= at]
    after = [i for i in range(n) if bounds[i] >= at + width + (width if kind == "insert" else 0) + 1]
    got = {r.url for r in out["records"]}
    for i in untouched + after:
        assert urls(n)[i] in got, (i, kind, at, width)
    assert len(out["records"]) + len(out["failed"]) + len(out["dropped"]) >= n - 2


@FUZZ
@given(st.sampled_from(sorted(set(__import__("encodings.aliases").aliases.aliases.keys())
                              | {"base64", "rot13", "hex", "zlib", "bz2", "uu", "quopri", "idna", "punycode"})),
       st.binary(max_size=300))
def test_fuzz_any_codec_alias_as_charset(label, body):
    data = b"<html><meta charset=" + label.encode() + b"><p>" + body + b"</p></html>"
    try:
        pl.decode_html(data, label)
    except UnicodeError:
        pass  # a dead letter (decode_error), never another exception


@FUZZ
@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEF-+xX; \t", max_size=12), st.text(max_size=30)),
       st.binary(max_size=200))
def test_fuzz_chunk_sizes_never_loop(size, rest):
    t0 = time.monotonic()
    try:
        pl.dechunk(size.encode("utf-8", "surrogatepass") + b"\r\n" + rest, 1000)
    except (pl.PayloadError, pl.PayloadTooLarge):
        pass
    assert time.monotonic() - t0 < 1


@FUZZ
@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a":']))
def test_fuzz_nesting_depth_is_one_outcome(tmp_path_factory, depth, opener):
    closer = "]" if opener == "[" else "}"
    line = '{"text": "正文", "x": ' + opener * depth + "1" + closer * depth + "}"
    path = tmp_path_factory.mktemp("nest") / "x.jsonl"
    path.write_text(line + "\n" + '{"text": "后"}' + "\n")
    out = read_file(path)
    assert len(out["records"]) + len(out["failed"]) == 2 and out["records"][-1].text == "后"


def test_output_faults_are_one_line_and_write_nothing(tmp_path):
    import subprocess
    import sys

    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):  # the output is a file; a parent of it is a file
        r = subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out)],
                           capture_output=True, text=True, timeout=300)
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("mdfs run:")]
        assert r.returncode == 2 and len(lines) == 1 and "cannot write the output" in lines[0], r.stderr
        assert "Traceback" not in r.stderr
    assert afile.read_text() == "x"


def test_a_duplicate_key_at_a_join_is_a_dead_letter_not_a_silent_pick():
    import apache_beam as beam

    from mdfs.pipeline.stages.dedup_exact import _ApplyDecision
    from mdfs.pipeline.stages.dedup_near import _ApplyNearDecision
    from mdfs.pipeline.records import Document
    from mdfs.pipeline.stage import StageContext

    docs = [Document(key="k", id=f"id{i}", source="s", text="正文", file=f"/d{i}/f.jsonl", offset=0) for i in range(2)]
    for fn, decision in ((_ApplyDecision(StageContext("exact_dedup")), ("k", "id0", 2)),
                         (_ApplyNearDecision(StageContext("near_dedup")), ("keep", "id0", 2))):
        out = list(fn.process(("k", {"doc": docs, "decision": [decision]})))
        failed = [o.value for o in out if isinstance(o, beam.pvalue.TaggedOutput) and o.tag == "failed"]
        kept = [o for o in out if not isinstance(o, beam.pvalue.TaggedOutput)]
        assert [f.id for f in failed] == ["id1"] and failed[0].error_kind == "duplicate_key"
        assert "/d0/f.jsonl" in failed[0].message and [d.id for d in kept] == ["id0"]


def test_a_damaged_first_byte_that_looks_like_json_does_not_make_a_warc_gz_plain(tmp_path):
    """Found by the fuzz test: byte 0 of a .warc.gz overwritten with "{" once made
    the reader take the file for uncompressed text and lose every member."""
    blob = bytearray(b"".join(FUZZ_MEMBERS))
    blob[0:1] = b"{"
    path = tmp_path / "x.warc.gz"
    path.write_bytes(bytes(blob))
    out = read_file(path)
    assert sorted(r.url for r in out["records"]) == urls(8)[1:]
    assert [f.offset for f in out["failed"]] == [0]


# --- gzip trailers, text that is not valid Unicode, file names that are not UTF-8 --------

def damage_trailer(member: bytes, at: int, xor: int = 1) -> bytes:
    """Flip bits of byte ``at`` (0-3: CRC-32, 4-7: length) of a gzip member's
    8-byte trailer: the data still inflates, the check fails."""
    b = bytearray(member)
    b[len(b) - 8 + at] ^= xor
    return bytes(b)


def _member_offset(members: list, i: int) -> int:
    return sum(len(m) for m in members[:i])


@pytest.mark.parametrize("at", [0, 3, 4, 7])  # first and last byte of the CRC-32 and of the length
@pytest.mark.parametrize("which", [0, 4, 7])  # the first, a middle and the last member
def test_a_failed_trailer_check_in_any_member_of_a_warc_gz_loses_no_record(tmp_path, which, at):
    """The member inflates whole; zlib refuses its trailer.  Its record is
    counted and is one dead letter at the member's offset; all others are read."""
    members = list(FUZZ_MEMBERS)
    members[which] = damage_trailer(members[which], at)
    path = tmp_path / "x.warc.gz"
    path.write_bytes(b"".join(members))
    out = read_file(path)
    assert [r.url for r in out["records"]] == [u for i, u in enumerate(urls(8)) if i != which]
    assert [(f.error_kind, f.records, f.offset, f.url) for f in out["failed"]] == \
        [("corrupt_container", 1, _member_offset(members, which), urls(8)[which])]
    assert ("CRC-32" if at < 4 else "length") in out["failed"][0].message


JSONL_LAYOUTS = {  # name: (lines, lines per member)
    "4 members of 3 lines": (12, 3),
    "one member of 12 lines": (12, 12),
    "one member of 3,000 lines (inflated in many calls)": (3000, 3000),
}


@pytest.mark.parametrize("at", [0, 5])
@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("layout", sorted(JSONL_LAYOUTS))
def test_a_failed_trailer_check_in_a_jsonl_gz_loses_no_line(tmp_path, layout, which, at):
    """Every line of the member is counted: the lines before its end are read
    as they inflated, its last line (still held when the check fails) is one
    dead letter with its line index, as the last record of a WARC member is."""
    n, per = JSONL_LAYOUTS[layout]
    data = _lines(n).splitlines(keepends=True)
    members = [gzip.compress(b"".join(data[i:i + per]), mtime=0) for i in range(0, n, per)]
    m = 0 if which == "first" else len(members) - 1
    members[m] = damage_trailer(members[m], at)
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"".join(members))
    out = read_file(path)
    last = m * per + per - 1
    assert [r.id for r in out["records"]] == [str(i) for i in range(n) if i != last]
    assert [(f.error_kind, f.records, f.offset) for f in out["failed"]] == [("corrupt_container", 1, last)]
    assert f"gzip member at byte {_member_offset(members, m)}" in out["failed"][0].message


@FUZZ
@given(st.integers(0, len(FUZZ_MEMBERS) - 1), st.integers(0, 7), st.integers(1, 255),
       st.integers(0, len(FUZZ_MEMBERS) - 1), st.integers(0, 7), st.integers(0, 255))
def test_fuzz_trailer_damage_in_any_members(tmp_path_factory, m1, at1, xor1, m2, at2, xor2):
    """Any trailer byte of one or two members, any bit pattern: exactly one
    outcome per record, the damaged members' records dead letters."""
    members = list(FUZZ_MEMBERS)
    members[m1] = damage_trailer(members[m1], at1, xor1)
    members[m2] = damage_trailer(members[m2], at2, xor2)
    damaged = {i for i in (m1, m2) if members[i] != FUZZ_MEMBERS[i]}
    path = tmp_path_factory.mktemp("tr") / "x.warc.gz"
    path.write_bytes(b"".join(members))
    out = read_file(path)
    assert [r.url for r in out["records"]] == [u for i, u in enumerate(urls(8)) if i not in damaged]
    assert sorted((f.offset, f.records) for f in out["failed"]) == [(_member_offset(members, i), 1) for i in sorted(damaged)]


SURROGATE_VALUES = {"start": "\ud800abc", "middle": "ab\udfffc", "end": "abc\udc80", "only": "\udbff",
                    "reversed pair": "\udc00\ud800"}


@pytest.mark.parametrize("where", sorted(SURROGATE_VALUES))
@pytest.mark.parametrize("field", ["id", "url", "date", "text", "body"])  # body: a field map's target for text
def test_a_lone_surrogate_in_any_field_is_replaced_and_counted(tmp_path, field, where):
    """A JSON escape that decodes to a lone surrogate is valid JSON but not
    Unicode: each one becomes U+FFFD, like an invalid UTF-8 byte, and the
    record counts it (``decoded_with_replacement`` in the funnel)."""
    value = SURROGATE_VALUES[where]
    row = {"id": "i", "url": "http://a/", "date": "2020-01-01", "text": "正文"}
    row["text" if field == "body" else field] = value
    mapping = {"id": "id", "text": "text", "url": "url", "date": "date"}
    if field == "body":
        row["body"] = row.pop("text")
        mapping["text"] = "body"
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps(row).encode() + b"\n")  # ensure_ascii: the surrogates as \uXXXX escapes
    out = read_file(path, {"fields": mapping})
    [rec] = out["records"]
    want = value.translate({c: "\ufffd" for c in range(0xD800, 0xE000)})
    assert getattr(rec, "text" if field == "body" else field) == want
    assert rec.replaced_bytes == sum(1 for c in value if "\ud800" <= c <= "\udfff")
    for v in (rec.id, rec.url, rec.date, rec.text):
        v.encode("utf-8")  # strict: what Parquet and Beam's coders require


def test_a_lone_surrogate_in_a_key_or_a_nested_value_is_writable(tmp_path):
    """Surrogates the readers do not take as a field still reach a row through
    a message (the keys of the object) or str() of a nested id: writable."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps({"t\ud800": "x"}).encode() + b"\n" + json.dumps({"id": ["\ud800"], "text": "t"}).encode())
    out = read_file(path)
    [failed], [rec] = out["failed"], out["records"]
    assert failed.error_kind == "missing_field" and "t\ufffd" in failed.to_row()["message"]
    assert rec.id == "['\\ud800']"  # repr escapes a surrogate: printable text


def test_text_that_is_not_unicode_in_warc_headers_and_parquet_cells(tmp_path):
    """Where the bytes themselves are not UTF-8: a WARC header value is decoded
    with U+FFFD (the record is read), a Parquet string cell fails its row only."""
    rec = record("http://a/X").replace(b"http://a/X", b"http://a/\xed\xa0\x80", 1)  # an encoded surrogate
    warc = tmp_path / "x.warc"
    warc.write_bytes(rec + record("http://a/2"))
    out = read_file(warc)
    assert [r.url for r in out["records"]] == ["http://a/\ufffd\ufffd\ufffd", "http://a/2"]
    cells = pa.array([b"a", b"\xed\xa0\x80", b"\xff"], pa.binary()).view(pa.string())  # unvalidated bytes
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["1", "2", "3"], "text": ["一", "二", "三"], "url": cells}), path)
    out = read_file(path)
    assert [r.text for r in out["records"]] == ["一"]
    assert [(f.error_kind, f.offset) for f in out["failed"]] == [("bad_field", 1), ("bad_field", 2)]


def _not_utf8(folder, name: bytes) -> str:
    return os.fsdecode(os.path.join(os.fsencode(str(folder)), name))


def test_a_file_name_that_is_not_utf8_is_read_and_shown_escaped(tmp_path):
    path = _not_utf8(tmp_path, b"caf\xe9-\xff.jsonl")
    with open(path, "wb") as fh:
        fh.write(_lines(2) + b"{broken\n")
    os.mkdir(_not_utf8(tmp_path, b"dir\xfe.jsonl"))
    out = read_file(path)
    shown = str(tmp_path) + "/caf\\xe9-\\xff.jsonl"
    assert [(r.id, r.file) for r in out["records"]] == [("0", shown), ("1", shown)]
    assert [(f.error_kind, f.file) for f in out["failed"]] == [("json_error", shown)]
    from mdfs.pipeline.io.readers import MatchPatternDoFn

    matched = list(MatchPatternDoFn().process(("s", f"{tmp_path}/*.jsonl")))
    assert ("s", os.fsencode(path)) in [key for key, _ in matched]  # travels as bytes between steps
    assert (os.fsencode(path), os.path.getsize(path)) in [v for _, v in matched]
    [unreadable] = [v for _, (_, v) in matched if not isinstance(v, int)]
    assert unreadable.file == str(tmp_path) + "/dir\\xfe.jsonl" and unreadable.error_kind == "unreadable_file"


def test_hostile_text_names_and_trailers_end_to_end(tmp_path):
    """The three classes in one job, with exact counts per source: lone
    surrogates in every field, a file name that is not UTF-8, a failed trailer
    check in the first and a later member of a .jsonl.gz and a .warc.gz."""
    texts = [f"{t}\n第{i}篇。" for i, t in enumerate(real_zh_texts() * 4)]  # distinct for exact dedup
    names = tmp_path / "names"
    names.mkdir()
    rows = [{"id": "a\ud800", "text": texts[0]}, {"id": "b", "url": "http://x/\udc80", "text": texts[1]},
            {"id": "c", "date": "2020\ud800", "text": texts[2]}, {"id": "d", "text": "\udfff" + texts[3]},
            {"id": "e", "t\ud800xt": texts[4]}]
    with open(_not_utf8(names, b"caf\xe9.jsonl"), "wb") as fh:
        fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    lines = [json.dumps({"id": f"j{i}", "text": t}, ensure_ascii=False).encode() + b"\n" for i, t in enumerate(texts[5:14])]
    members = [gzip.compress(b"".join(lines[i:i + 3]), mtime=0) for i in (0, 3, 6)]
    members[0], members[1] = damage_trailer(members[0], 1), damage_trailer(members[1], 6)
    (tmp_path / "t.jsonl.gz").write_bytes(b"".join(members))
    paragraphs = ["".join(f"<p>{line}</p>" for line in t.splitlines()) for t in texts[14:18]]
    pages = [record(f"http://w/{i}", f"<html><body><article>{p}</article></body></html>".encode())
             for i, p in enumerate(paragraphs)]
    wmembers = [gzip.compress(p, mtime=0) for p in pages]
    wmembers[0] = damage_trailer(wmembers[0], 2)
    (tmp_path / "t.warc.gz").write_bytes(b"".join(wmembers))
    res = run_job(tmp_path / "out", sources=[f"s={names}/*.jsonl", f"j={tmp_path}/t.jsonl.gz",
                                             f"w={tmp_path}/t.warc.gz"], sets=["near_dedup.enabled=false"])
    assert_invariant(res)
    f = res["funnel"]["sources"]
    counts = {s: (f[s]["read"], f[s]["kept"], f[s]["dropped"], f[s]["failed"]) for s in "sjw"}
    assert counts == {"s": (5, 4, 0, 1), "j": (9, 7, 0, 2), "w": (4, 3, 0, 1)}
    assert f["s"]["decoded_with_replacement"] == 4 and f["s"]["failed_by_error"] == {"read/missing_field": 1}
    assert f["j"]["failed_by_error"] == {"read/corrupt_container": 2}
    assert f["w"]["failed_by_error"] == {"read/corrupt_container": 1}
    kept = {r["id"]: r for r in res["kept"] if r["source"] == "s"}
    assert (kept["a\ufffd"]["url"], kept["b"]["url"], kept["c"]["date"]) == (None, "http://x/\ufffd", "2020\ufffd")
    assert {r["file"] for r in res["kept"] + res["failed"] if r["source"] == "s"} == {f"{names}/caf\\xe9.jsonl"}
    assert sorted(r["offset"] for r in res["failed"] if r["source"] == "j") == [2, 5]
    assert [r["url"] for r in res["failed"] if r["source"] == "w"] == ["http://w/0"]


@pytest.mark.parametrize("width", [12, 25, 40])
def test_zeros_over_a_members_end_and_trailer_do_not_hide_the_next_member(tmp_path, width):
    """Found by the fuzz test: zeros over the last bytes of a member's deflate
    data and its trailer inflate on into the next member's bytes before the
    check fails; the next member is then searched from the damaged one's start."""
    blob = bytearray(b"".join(FUZZ_MEMBERS))
    end = len(FUZZ_MEMBERS[0])
    blob[end - width:end] = bytes(width)
    path = tmp_path / "x.warc.gz"
    path.write_bytes(bytes(blob))
    out = read_file(path)
    assert [r.url for r in out["records"]] == urls(8)[1:]
    assert [(f.offset, f.records) for f in out["failed"]] == [(0, 1)]
