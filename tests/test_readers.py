"""Readers on real sample files and on planted damage."""
from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.config import SAMPLES_DIR
from mdfs.pipeline.io.readers import detect_format

from helpers import read_file, write_jsonl_gz

WARC = SAMPLES_DIR / "warc"


def test_common_crawl_segment_counts_every_record_type():
    # 1 warcinfo, 17 request, 16 response, 16 metadata (SOURCES.md)
    out = read_file(WARC / "cc-main-2020-34_sample_resiliparse.warc.gz")
    assert len(out["records"]) == 16
    assert not out["dropped"] and not out["failed"]
    types = {s.record_type: s.count for s in out["skipped"]}  # one count per type and file
    assert types == {"request": 17, "metadata": 16, "warcinfo": 1}
    rec = out["records"][0]
    assert rec.payload.lstrip().startswith(b"<") and rec.url.startswith("http")
    assert rec.date.startswith("2020-08")
    assert len({r.key for r in out["records"]}) == 16  # unique keys
    offsets = [r.offset for r in out["records"]]
    assert offsets == sorted(offsets) and offsets[0] == 940  # real byte offsets of the responses


def test_ids_are_stable_across_reads_and_unique_across_directories(tmp_path):
    a = read_file(WARC / "cc-main-2020-34_sample_resiliparse.warc.gz")
    again = read_file(WARC / "cc-main-2020-34_sample_resiliparse.warc.gz")
    assert [r.id for r in a["records"]] == [r.id for r in again["records"]]
    # the usual shard layout: the same base name in two directories must not collide
    (tmp_path / "d1").mkdir(), (tmp_path / "d2").mkdir()
    copies = []
    for d in ("d1", "d2"):
        copy = tmp_path / d / "cc-main-2020-34_sample_resiliparse.warc.gz"
        copy.write_bytes((WARC / "cc-main-2020-34_sample_resiliparse.warc.gz").read_bytes())
        copies.append({r.key for r in read_file(copy)["records"]})
    assert copies[0] and not copies[0] & copies[1]
    other_source = read_file(WARC / "cc-main-2020-34_sample_resiliparse.warc.gz", {"name": "other"})
    assert not {r.id for r in a["records"]} & {r.id for r in other_source["records"]}


def test_revisit_is_dropped_with_reason():
    out = read_file(WARC / "revisit-example_warcio.warc.gz")
    assert [d.reason for d in out["dropped"]] == ["revisit_no_payload"]
    assert len(out["records"]) == 1  # the response (gzip Content-Encoding, decoded)
    assert b"Example Domain" in out["records"][0].payload


def test_brotli_payload_is_decoded():
    out = read_file(WARC / "brotli-payload_ukwa.warc.gz")
    assert len(out["records"]) == 1
    assert out["records"][0].payload.lstrip().lower().startswith(b"<!doctype html") or b"<html" in out["records"][0].payload.lower()
    # the wget log 'resource' record is text/plain: a document-bearing record, rejected by policy
    assert [d.reason for d in out["dropped"]] == ["not_html"]


def test_truncated_record_is_dead_lettered_with_offset():
    out = read_file(WARC / "truncated-record_resiliparse.warc.gz")
    assert not out["records"]
    assert len(out["failed"]) == 1
    f = out["failed"][0]
    assert f.error_kind == "truncated_record" and f.offset == 0 and "houstonpress" in f.url
    assert f.file.endswith("truncated-record_resiliparse.warc.gz")


def test_records_before_damage_are_kept(tmp_path):
    data = (WARC / "cc-main-2020-34_sample_resiliparse.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:60000])  # inside the 7th response record
    out = read_file(cut)
    assert len(out["records"]) == 5
    # the 7th response is one record cut by the end of the file: one dead letter that stands for it
    assert [(f.error_kind, f.records) for f in out["failed"]] == [("truncated_record", 1)]
    assert out["failed"][0].offset >= out["records"][-1].offset


def test_wet_conversion_record():
    out = read_file(SAMPLES_DIR / "wet" / "cc-main-2024-22_whirlwind.warc.wet.gz")
    assert len(out["records"]) == 1
    rec = out["records"][0]
    assert rec.payload is None and "Escopete" in rec.text
    assert rec.language_hint  # WARC-Identified-Content-Language
    assert [s.record_type for s in out["skipped"]] == ["warcinfo"]


def _warc_with(records: list[tuple[str, bytes, list]]) -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    for url, body, headers in records:
        http = StatusAndHeaders(headers[0], headers[1:], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


def test_policy_drops_status_type_size(tmp_path):
    big = b"<html><body>" + b"x" * 50_000 + b"</body></html>"
    path = tmp_path / "planted.warc.gz"
    path.write_bytes(_warc_with([
        ("http://a/404", b"<html>gone</html>", ["404 Not Found", ("Content-Type", "text/html")]),
        ("http://a/img", b"\x89PNG....", ["200 OK", ("Content-Type", "image/png")]),
        ("http://a/big", big, ["200 OK", ("Content-Type", "text/html")]),
        ("http://a/ok", b"<html><p>fine</p></html>", ["200 OK", ("Content-Type", "text/html; charset=gbk")]),
        ("http://a/empty", b"", ["200 OK", ("Content-Type", "text/html")]),
    ]))
    out = read_file(path, read_overrides={"max_payload_bytes": 20_000})
    reasons = {d.url: (d.reason, d.detail) for d in out["dropped"]}
    assert reasons["http://a/404"] == ("http_status", "404")
    assert reasons["http://a/img"] == ("not_html", "image/png")
    assert reasons["http://a/big"][0] == "too_large"
    assert reasons["http://a/empty"][0] == "empty_payload"
    assert [r.url for r in out["records"]] == ["http://a/ok"]
    assert out["records"][0].charset == "gbk"


def test_decompression_bomb_is_dropped_not_inflated(tmp_path):
    bomb = gzip.compress(b"<html>" + b"a" * 30_000_000)
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(_warc_with([("http://a/bomb", bomb, ["200 OK", ("Content-Type", "text/html"),
                                                          ("Content-Encoding", "gzip")])]))
    out = read_file(path, read_overrides={"max_decompressed_bytes": 1_000_000})
    assert [d.reason for d in out["dropped"]] == ["decompressed_too_large"]


@pytest.mark.parametrize("content", [b"", b"this is not a warc file at all\n" * 10, b"\x1f\x8b\x08garbage"])
def test_broken_containers_become_dead_letters(tmp_path, content):
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(content)
    out = read_file(path)
    assert not out["records"]
    # an empty file, or bytes that are no record: one dead letter whose record count is unknown
    assert [(f.error_kind, f.records) for f in out["failed"]] == [
        ("empty_file" if not content else "unreadable_container", None)]


def test_jsonl_fields_ids_and_bad_lines(tmp_path):
    path = tmp_path / "news.jsonl.gz"
    write_jsonl_gz(path, [
        {"doc_id": "n1", "body": "第一篇新闻。", "link": "http://x/1", "published": "2024-01-01"},
        {"body": "没有编号的新闻。", "link": "http://x/2"},
        {"doc_id": "n3", "body": 42},
        {"doc_id": "n4"},
    ], raw_lines=[b"{not json", b'{"body": "\xff\xfe bad utf8"}', b"[1, 2]"])
    fields = {"id": "doc_id", "text": "body", "url": "link", "date": "published"}
    out = read_file(path, {"name": "news", "fields": fields})
    ids = [r.id for r in out["records"]]
    assert ids[0] == "n1" and ids[1].startswith("news-") and len(ids) == 2
    assert out["records"][0].date == "2024-01-01" and out["records"][1].offset == 1
    kinds = sorted(f.error_kind for f in out["failed"])
    assert kinds == ["bad_field", "decode_error", "json_error", "json_error", "missing_field"]
    again = read_file(path, {"name": "news", "fields": fields})
    assert [r.id for r in again["records"]] == ids  # derived ids are stable


def test_truncated_jsonl_gzip_keeps_lines_before_damage(tmp_path):
    good = tmp_path / "full.jsonl.gz"
    write_jsonl_gz(good, [{"id": str(i), "text": "文本" * 200 + str(i)} for i in range(200)])
    data = good.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    out = read_file(cut)
    assert 0 < len(out["records"]) < 200
    assert [f.error_kind for f in out["failed"]] == ["unreadable_container"]
    assert out["failed"][0].offset == len(out["records"])  # the line where reading stopped


def test_parquet_reader(tmp_path):
    out = read_file(SAMPLES_DIR / "forum" / "magic-html_forum.parquet", {"name": "forum"})
    assert len(out["records"]) == 103 and not out["failed"]
    path = tmp_path / "books.parquet"
    pq.write_table(pa.table({"title": ["a", "b"], "content": ["书的正文。", None]}), path)
    out = read_file(path, {"name": "books", "fields": {"id": "id", "text": "content", "url": "url", "date": "date"}})
    assert len(out["records"]) == 1 and out["records"][0].text == "书的正文。"
    assert [f.error_kind for f in out["failed"]] == ["missing_field"]
    out = read_file(path, {"name": "books"})  # no text column: the message names the file's columns
    assert {f.message for f in out["failed"]} == {"field 'text' is missing (the record has: content, title; "
                                                  "see sources.NAME.fields)"}
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x00" * 100)
    out = read_file(corrupt)
    assert [f.error_kind for f in out["failed"]] == ["unreadable_container"]


@pytest.mark.parametrize("name,fmt", [("a.warc", "warc"), ("a.warc.gz", "warc"), ("CC.warc.wet.gz", "wet"),
                                      ("x.wet.gz", "wet"), ("n.jsonl", "jsonl"), ("n.jsonl.gz", "jsonl"),
                                      ("b.parquet", "parquet")])
def test_detect_format(name, fmt):
    assert detect_format(f"gs://bucket/dir/{name}") == fmt


def test_detect_format_unknown():
    with pytest.raises(ValueError):
        detect_format("notes.txt")


@pytest.mark.parametrize("cut", [20, 60, 200])
def test_truncation_inside_a_gzip_member_is_not_silent(tmp_path, cut):
    """warcio stops quietly when a gzip member ends early: the reader must still
    dead-letter the bytes after the last complete record."""
    body = ("<html><body><p>" + "正文内容。" * 40 + "</p></body></html>").encode()
    one = _warc_with([("http://a/1", body, ["200 OK", ("Content-Type", "text/html")])])
    data = one + one + one
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: 2 * len(one) + cut])
    out = read_file(path)
    assert len(out["records"]) == 2
    assert len(out["failed"]) == 1 and out["failed"][0].offset == 2 * len(one)
    plain = gzip.decompress(one)
    path = tmp_path / "padded.warc"
    path.write_bytes(plain + plain + b"\r\n\r\n")  # whitespace padding is not damage
    out = read_file(path)
    assert len(out["records"]) == 2 and not out["failed"]
