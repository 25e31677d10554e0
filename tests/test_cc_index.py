"""Index-driven reading (format cc_index): a small columnar index with Common
Crawl's column names over the real Common Crawl sample WARC, plus planted
rows that point at good, missing and damaged records."""
from __future__ import annotations

import os
import shutil

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import run_job
from warcio.archiveiterator import ArchiveIterator

from mdfs.pipeline.io import language_gate as lg
from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.io.readers import FetchIndexedDoFn, ReadIndexDoFn
from mdfs.pipeline.io.readers import cc_index as cci
from mdfs.pipeline.schema import Read, Source

CC_SAMPLE = SAMPLES_DIR / "warc" / "cc-main-2020-34_sample_resiliparse.warc.gz"
REL = "crawl-data/CC-MAIN-2020-34/segments/1596439737645.2/warc/CC-MAIN-20200808-00000.warc.gz"
COLUMNS = ("url", "fetch_status", "content_mime_detected", "content_languages", "warc_filename",
           "warc_record_offset", "warc_record_length", "subset")


def _index_row(rec, it, languages) -> dict:
    rec.content_stream().read()
    return {"url": rec.rec_headers.get_header("WARC-Target-URI"), "fetch_status": 200,
            "content_mime_detected": "text/html", "content_languages": languages, "warc_filename": REL,
            "warc_record_offset": it.get_record_offset(), "warc_record_length": it.get_record_length(),
            "subset": "warc"}


def sample_index() -> tuple[list[dict], dict]:
    """One index row per response of the sample (languages from its own metadata
    records), and a row that points at its first request record."""
    rows, ids, langs, request = [], [], {}, None
    with open(CC_SAMPLE, "rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            if rec.rec_type == "response":
                ids.append(rec.rec_headers.get_header("WARC-Record-ID"))
                rows.append(_index_row(rec, it, None))
            elif rec.rec_type == "request" and request is None:
                request = _index_row(rec, it, "zho")
            elif rec.rec_type == "metadata":
                verdict = lg.parse_cc_metadata(rec.content_stream().read())
                if verdict:
                    langs[rec.rec_headers.get_header("WARC-Concurrent-To")] = ",".join(c for c, _ in verdict.languages)
    for r, rid in zip(rows, ids):
        r["content_languages"] = langs.get(rid)
    return rows, request


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    (root / os.path.dirname(REL)).mkdir(parents=True)
    shutil.copy(CC_SAMPLE, root / REL)
    good, request = sample_index()
    zh = [r for r in good if r["content_languages"] and "zho" in r["content_languages"].split(",")]
    first = zh[0]
    planted = [
        {**first, "warc_filename": REL.replace("00000", "99999")},                       # missing WARC file
        {**first, "warc_record_offset": first["warc_record_offset"] + 7},                # not a member start
        {**first, "warc_record_length": first["warc_record_length"] + zh[1]["warc_record_length"]},  # too long
        {**first, "warc_record_length": first["warc_record_length"] - 20},               # cut short
        {**first, "url": "http://elsewhere.example/"},                                   # index and record disagree
        request,                                                                         # points at a request record
        {**first, "content_languages": None},                                            # no verdict: selected
        {**first, "fetch_status": 404},                                                  # not selected: status
        {**first, "content_mime_detected": "image/png"},                                 # not selected: MIME
        {**first, "subset": "robotstxt"},                                                # not selected: subset
    ]
    index = root / "index"
    index.mkdir()
    rows = good + planted
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in COLUMNS}), index / "part-00000.parquet",
                   row_group_size=7)
    return {"root": root, "index": index, "good": good, "zh": zh, "planted": planted}


def source(crawl, **over) -> tuple[Source, Read]:
    """(the source cc, the read section) as the loader validates them; ``over``: source keys set."""
    cfg = load_config(sets=["sources.cc.format=cc_index", f"sources.cc.paths=[{crawl['index']}/*.parquet]",
                            f"sources.cc.warc_root={crawl['root']}", "sources.cc.languages=[zh]"])
    return Source.model_validate({**cfg.sources["cc"].model_dump(), **over}), cfg.read


def run_dofn(fn, element) -> dict:
    fn.setup()
    out = {"main": [], "dropped": [], "failed": [], "skipped": []}
    for item in fn.process(element):
        if isinstance(item, beam.pvalue.TaggedOutput):
            out[item.tag].append(item.value)
        else:
            out["main"].append(item)
    return out


def test_rows_are_selected_by_language_status_mime_and_subset(crawl):
    src, _ = source(crawl)
    path = str(crawl["index"] / "part-00000.parquet")
    out = run_dofn(ReadIndexDoFn("cc", src), ("cc", path, os.path.getsize(path)))
    skipped = {}
    for s in out["skipped"]:  # one count per reason and batch
        skipped[s.record_type] = skipped.get(s.record_type, 0) + s.count
    non_zh = len(crawl["good"]) - len(crawl["zh"])
    assert skipped == {"index:status": 1, "index:mime": 1, "index:subset": 1, "index:language": non_zh}
    assert len(out["main"]) == len(crawl["zh"]) + 7 and out["failed"] == []
    assert {r.row for r in out["main"]} >= {i for i, r in enumerate(crawl["good"]) if r in crawl["zh"]}
    # hosts: fnmatch patterns on the URL's host
    only = run_dofn(ReadIndexDoFn("cc", source(crawl, hosts=["*.psb556.com"])[0]), ("cc", path, os.path.getsize(path)))
    assert {r.url for r in only["main"]} == {"http://035.psb556.com/24/i/u_1090813/article.html"}
    # languages: [] selects every language
    every = run_dofn(ReadIndexDoFn("cc", source(crawl, languages=[])[0]), ("cc", path, os.path.getsize(path)))
    assert len(every["main"]) == len(crawl["good"]) + 7


def test_an_index_without_commons_crawls_columns_is_one_dead_letter_per_row(tmp_path, crawl):
    path = tmp_path / "not-an-index.parquet"
    pq.write_table(pa.table({"url": ["a", "b", "c"]}), path)
    src, _ = source(crawl)
    out = run_dofn(ReadIndexDoFn("cc", src), ("cc", str(path), os.path.getsize(path)))
    assert [(f.error_kind, f.records) for f in out["failed"]] == [("bad_index", 3)]
    assert "no column fetch_status" in out["failed"][0].message


def test_fetch_reads_exactly_the_range_and_refuses_bad_ones(crawl):
    src, read = source(crawl)
    fn = FetchIndexedDoFn("cc", src, read)
    fn.setup()

    def fetch(row):
        r = cci.IndexRow("cc", "index.parquet", 0, row["url"], row["warc_filename"], row["warc_record_offset"],
                         row["warc_record_length"])
        out = run_dofn(fn, r)
        return out

    ok = fetch(crawl["zh"][0])
    assert len(ok["main"]) == 1 and ok["main"][0].url == crawl["zh"][0]["url"] and ok["main"][0].payload
    assert ok["main"][0].file.endswith(REL) and ok["main"][0].offset == crawl["zh"][0]["warc_record_offset"]
    kinds = [fetch(r)["failed"][0].error_kind for r in crawl["planted"][:6]]
    assert kinds == ["missing_warc_file", "bad_index_range", "bad_index_range", "bad_index_range", "index_mismatch",
                     "index_mismatch"]
    fn.teardown()


def test_the_job_accounts_for_every_selected_row(tmp_path, crawl):
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(f"sources:\n  cc:\n    format: cc_index\n    paths: ['{crawl['index']}/*.parquet']\n"
                   f"    warc_root: '{crawl['root']}'\n    languages: [zh]\n")
    res = run_job(tmp_path / "out", config=str(cfg))
    f = res["funnel"]["sources"]["cc"]
    assert f["invariant_ok"]
    assert f["read"] == len(crawl["zh"]) + 7  # selected rows, each kept, dropped or failed
    assert f["failed_by_error"] == {"read/missing_warc_file": 1, "read/bad_index_range": 3,
                                    "read/index_mismatch": 2}
    assert f["skipped_records"]["index:language"] == len(crawl["good"]) - len(crawl["zh"])
    kept_urls = {r["url"] for r in res["kept"]}
    assert kept_urls <= {r["url"] for r in crawl["zh"]}
    missing = next(r for r in res["failed"] if r["error_kind"] == "missing_warc_file")
    assert "99999" in missing["message"] and "row" in missing["message"]


def test_index_keys_are_refused_elsewhere_and_warc_root_is_required(crawl):
    with pytest.raises(ValueError, match="warc_root: only for format cc_index"):
        load_config(sets=["sources.s.paths=[x.warc.gz]", "sources.s.warc_root=/m"])
    with pytest.raises(ValueError, match="needs warc_root"):
        load_config(sets=["sources.s.paths=[x.parquet]", "sources.s.format=cc_index"])
    with pytest.raises(ValueError, match="status"):
        load_config(sets=["sources.s.paths=[x.parquet]", "sources.s.format=cc_index", "sources.s.warc_root=/m",
                          "sources.s.status=[999]"])
