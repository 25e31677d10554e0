"""Extraction: real pages, charset from the three kinds of evidence, the hard
time limit, crashes of the extractor process, binary payloads."""
from __future__ import annotations


import apache_beam as beam
import pytest

from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.extract import ExtractCrash, ExtractDoFn, ExtractMemoryLimit, ExtractorProcess, ExtractTimeout
from mdfs.pipeline.records import RawRecord

from helpers import read_file

OPTIONS = {"include_comments": False, "include_tables": True, "favor": "balanced", "fast": False,
           "deduplicate": False}


def _split(outputs):
    res = {"kept": [], "dropped": [], "failed": []}
    for o in outputs:
        if isinstance(o, beam.pvalue.TaggedOutput):
            res[o.tag].append(o.value)
        else:
            res["kept"].append(o)
    return res


def _extract(records, **cfg_over):
    cfg = {**load_config()["extract"], **cfg_over}
    fn = ExtractDoFn(cfg, 0.01)
    fn.setup()
    try:
        return _split([o for r in records for o in fn.process(r)])
    finally:
        fn.teardown()


@pytest.fixture(scope="module")
def zh_records():
    return read_file(SAMPLES_DIR / "web_zh" / "magic-html_zh_pages.warc.gz", {"name": "web_zh"})["records"]


def test_real_chinese_pages_extract_without_mojibake(zh_records):
    res = _extract(zh_records[:12])
    assert len(res["kept"]) + len(res["dropped"]) == 12 and not res["failed"]
    assert len(res["kept"]) >= 10
    for doc in res["kept"]:
        cjk = sum(1 for c in doc.text if "\u4e00" <= c <= "\u9fff")
        assert cjk / max(len(doc.text), 1) > 0.3, doc.url  # Chinese text, not mojibake
        assert "\ufffd" not in doc.text
        assert doc.raw_byte_count > len(doc.text)


def test_subprocess_and_inprocess_agree(zh_records):
    a = _extract(zh_records[:5])
    b = _extract(zh_records[:5], isolation="inprocess")
    assert [d.text for d in a["kept"]] == [d.text for d in b["kept"]]


def test_gbk_page_labelled_utf8_in_http_header():
    body = "<html><body><article><p>" + "北京时间今天上午，国家统计局发布了最新的经济数据。" * 20 + "</p></article></body></html>"
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, url="http://x/",
                    payload=body.encode("gbk"), charset="utf-8")
    res = _extract([rec])
    assert res["kept"] and "国家统计局" in res["kept"][0].text


def test_binary_payload_is_dropped():
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, payload=b"\x00\x01\x02PK\x03\x04" * 100)
    res = _extract([rec])
    assert [d.reason for d in res["dropped"]] == ["binary_payload"]


def test_page_without_main_text_is_dropped():
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, payload=b"<html><body></body></html>")
    res = _extract([rec])
    assert [d.reason for d in res["dropped"]] == ["no_main_text"]


def test_text_records_pass_through():
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, text="已经是纯文本。\ud800")
    res = _extract([rec])
    assert res["kept"][0].text == "已经是纯文本。\ufffd"  # lone surrogate made writable


def test_hard_time_limit_kills_and_recovers(zh_records):
    page = max(zh_records, key=lambda r: len(r.payload))
    html = page.payload.decode("utf-8", "replace")
    proc = ExtractorProcess(OPTIONS, timeout_s=0.001, memory_limit_mb=0)
    try:
        with pytest.raises(ExtractTimeout):
            proc.extract(html * 3, page.url)
        proc.timeout_s = 30  # the next page gets a fresh process and succeeds
        assert proc.extract("<html><body><p>" + "正文内容。" * 50 + "</p></body></html>", None)
    finally:
        proc.close()


def test_timeout_becomes_failed_record(zh_records):
    res = _extract(zh_records[:3], timeout_s=0.001)
    assert len(res["failed"]) == 3
    assert {f.error_kind for f in res["failed"]} == {"extract_timeout"}
    assert all(f.file and f.offset is not None for f in res["failed"])


def test_memory_limit_is_enforced_and_process_recovers():
    # 60 MB of address space: the child either cannot start lxml (crash) or
    # reports MemoryError; both end this page, neither reaches the worker
    proc = ExtractorProcess(OPTIONS, timeout_s=30, memory_limit_mb=60)
    page = "<html><body>" + "<div><p>段落内容。</p></div>" * 20000 + "</body></html>"
    try:
        with pytest.raises((ExtractCrash, ExtractMemoryLimit)):
            proc.extract(page, None)
        proc.memory_limit_mb = 2048
        assert "段落内容" in proc.extract(page[:5000] + "</body></html>", None)
    finally:
        proc.close()


def test_entities_in_already_extracted_text_are_resolved_once():
    from mdfs.pipeline.textnorm import unescape_entities

    assert unescape_entities("兹拉坦&middot;伊布拉西莫维奇") == "兹拉坦·伊布拉西莫维奇"
    assert unescape_entities("&#x4E2D;&#25991; &amp;lt;") == "中文 &lt;"  # once: &amp;lt; becomes &lt;, no further
    assert unescape_entities("?a=1&para=2 &copy 2024 &nosuchentity;") == "?a=1&para=2 &copy 2024 &nosuchentity;"
    fn = ExtractDoFn(load_config()["extract"], 0.01)
    fn.setup()
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, text="兹拉坦&middot;伊布")
    assert [d.text for d in fn.process(rec)] == ["兹拉坦·伊布"]
