"""The readers' one interface (readers/base.py) and the one list of formats
(pipeline/formats.py): each reader called on a file accounts for what its
container offered, and every text that names formats agrees with the list."""
from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mdfs.pipeline import schema
from mdfs.pipeline.config import SAMPLES_DIR
from mdfs.pipeline.io.readers.base import Offered, Reader, Span
from mdfs.pipeline.io.readers.cc_index import FetchReader, IndexedSpan
from mdfs.pipeline.formats import FORMATS, REGISTRY, detect_format, reader_class
from mdfs.pipeline.io.readers.jsonl import JsonlReader
from mdfs.pipeline.io.readers.parquet import ParquetReader
from mdfs.pipeline.io.readers.warc_reader import WarcReader

from helpers import REPO, read_with

CC_SAMPLE = SAMPLES_DIR / "warc" / "cc-main-2020-34_sample_resiliparse.warc.gz"


def _accounted(out: dict) -> int:
    """Records the outcomes stand for (a Skipped may stand for several)."""
    return (len(out["records"]) + len(out["candidates"]) + len(out["dropped"]) + len(out["failed"])
            + sum(s.count for s in out["skipped"]))


def test_the_warc_reader_offers_candidates_for_the_gate_and_counts_members():
    out = read_with(WarcReader, CC_SAMPLE)
    # 1 warcinfo, 17 request, 16 response, 16 metadata, one gzip member each (SOURCES.md)
    assert out["offered"] == [Offered("gzip member", 50)]
    assert len(out["candidates"]) == 16 and not out["records"]  # the language gate decides, not the reader
    assert all(c.record_id and c.rec.payload for c in out["candidates"])
    assert {s.record_type for s in out["skipped"]} == {"warcinfo", "request", "metadata"}
    assert _accounted(out) == 50


def test_the_jsonl_reader_accounts_for_every_line(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [json.dumps({"id": str(i), "text": f"t{i}"}).encode() for i in range(5)]
    lines += [b"", b"{broken", json.dumps({"text": "x" * 500}).encode(), json.dumps({"text": 3}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = read_with(JsonlReader, path, read_overrides={"max_payload_bytes": 200})
    assert out["offered"] == [Offered("line", 9)] and _accounted(out) == 9
    assert [r.id for r in out["records"]] == ["0", "1", "2", "3", "4"]
    assert [f.error_kind for f in out["failed"]] == ["json_error", "bad_field"]
    assert [d.reason for d in out["dropped"]] == ["too_large"]
    assert [(s.record_type, s.count) for s in out["skipped"]] == [("blank_line", 1)]


def test_the_parquet_reader_offers_the_footers_rows(tmp_path):
    path = tmp_path / "x.parquet"
    texts = [f"text {i}" for i in range(10)] + [None, "y" * 500]
    pq.write_table(pa.table({"text": texts}), path, row_group_size=4)
    out = read_with(ParquetReader, path, read_overrides={"max_payload_bytes": 200})
    assert out["offered"] == [Offered("row", 12)] and _accounted(out) == 12
    assert [r.offset for r in out["records"]] == list(range(10))
    assert [(f.offset, f.error_kind) for f in out["failed"]] == [(10, "missing_field")]
    assert [(d.offset, d.reason) for d in out["dropped"]] == [(11, "too_large")]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\x00" * 100)
    out = read_with(ParquetReader, bad)  # no footer: how many rows it held is not known
    assert out["offered"] == [Offered("row", None)]
    assert [(f.error_kind, f.records) for f in out["failed"]] == [("unreadable_container", None)]


def test_the_fetch_reader_reads_exactly_one_indexed_range():
    from test_cc_index import sample_index

    row = sample_index()[0][0]
    src = {"name": "cc", "format": "cc_index", "warc_root": str(CC_SAMPLE.parent)}  # the reader is given the file
    off, length = row["warc_record_offset"], row["warc_record_length"]
    span = IndexedSpan(off, off + length, url=row["url"], where="i.parquet row 0")
    out = read_with(FetchReader, CC_SAMPLE, src, span=span)
    assert out["offered"] == [Offered("range", 1)]
    assert [(r.url, r.offset) for r in out["records"]] == [(row["url"], off)] and _accounted(out) == 1
    wrong = read_with(FetchReader, CC_SAMPLE, src, span=IndexedSpan(off, off + length, url="http://other/",
                                                                     where="i.parquet row 0"))
    assert [f.error_kind for f in wrong["failed"]] == ["index_mismatch"] and not wrong["records"]
    short = read_with(FetchReader, CC_SAMPLE, src, span=IndexedSpan(off, off + length - 1, url=row["url"]))
    assert [f.error_kind for f in short["failed"]] == ["bad_index_range"]


# --- the one list of formats ---------------------------------------------------------

def test_every_format_has_a_reader_and_every_suffix_detects_its_format():
    for fmt in REGISTRY.values():
        assert issubclass(reader_class(fmt.name), Reader)
        for suffix in fmt.suffixes:
            assert detect_format(f"s3://b/dir/Name{suffix.upper()}") == fmt.name
    assert FORMATS == ("auto", *REGISTRY)
    assert schema.FORMATS is FORMATS  # the schema's choices are the registry's
    # a splittable reader reads part of a file; only WARC/WET are
    assert {f for f in REGISTRY if reader_class(f).splittable} == {"warc", "wet"}
    assert Span() == Span(0, None, None)


def _suffixes_by_format(text: str, pattern: str) -> dict:
    found = {}
    for suffixes, fmt in re.findall(pattern, " ".join(text.split())):
        found[fmt] = set(re.findall(r"\.[a-z][a-z.]*[a-z]", suffixes))
    return found


def test_the_readme_and_defaults_name_the_registered_suffixes():
    want = {f.name: set(f.suffixes) for f in REGISTRY.values() if f.suffixes}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    para = readme[readme.index("format follows from the file name:"):readme.index("Paths may be on any")]
    assert _suffixes_by_format(para, r"((?:`\.[\w.]+`,? ?)+)\((\w+)\)") == want
    defaults = (REPO / "pipeline" / "defaults.yaml").read_text(encoding="utf-8")
    comment = " ".join(ln.lstrip("# ") for ln in defaults.splitlines()[:20] if ln.startswith("#"))
    para = comment[comment.index("from the file name ("):comment.index('"fields" maps')]
    assert _suffixes_by_format(para, r"((?:\.[a-z][\w.]* ?)+): (\w+)") == want
    assert set(re.findall(r"\w+", para[para.index("one set here:"):])) >= set(REGISTRY)


@pytest.mark.parametrize("fmt", sorted(REGISTRY))
def test_a_source_accepts_every_registered_format(fmt):
    from mdfs.pipeline.config import load_config

    sets = ["sources.s.paths=[x]", f"sources.s.format={fmt}"] + (["sources.s.warc_root=/m"] if fmt == "cc_index"
                                                                 else [])
    assert load_config(sets=sets).sources["s"].format == fmt
