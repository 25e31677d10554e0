"""The language gate before extraction (pipeline/io/language_gate.py): planted
cases with known answers, and the real Common Crawl sample."""
from __future__ import annotations

import io
import json

import pytest
from helpers import read_file
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.io import language_gate as lg
from mdfs.pipeline.config import SAMPLES_DIR, load_config

CC_SAMPLE = SAMPLES_DIR / "warc" / "cc-main-2020-34_sample_resiliparse.warc.gz"
WET_SAMPLE = SAMPLES_DIR / "wet" / "cc-main-2024-22_whirlwind.warc.wet.gz"

ZH_PAGE = ("<html><head><title>新闻</title><script>var x = 'english words here';</script></head><body>"
           + "<p>" + "国家统计局今天发布了最新的经济数据，显示今年前三个季度国内生产总值同比增长，消费和投资保持稳定。" * 6
           + "</p></body></html>").encode("utf-8")
EN_PAGE = ("<html><head><title>News</title><style>p {color: red}</style></head><body><p>"
           "The city council met on Tuesday evening to discuss the new budget for public schools and roads. "
           "Several residents spoke about the condition of the bridge near the river, which has been closed since "
           "spring. The mayor said that the repairs would be finished before the winter, and that the money would "
           "come from the state. Teachers asked for more funding for books and computers, while parents wanted "
           "longer library hours. After three hours of debate, the council voted to approve the plan.</p>"
           "</body></html>").encode("utf-8")


def cld2(reliable: bool, *langs) -> bytes:
    obj = {"reliable": reliable, "text-bytes": 5000,
           "languages": [{"code": c, "code-iso-639-3": lg.iso639_3(c), "text-covered": s, "score": 1000.0,
                          "name": c} for c, s in langs]}
    return b"fetchTimeMs: 12\r\ncharset-detected: UTF-8\r\nlanguages-cld2: " + json.dumps(obj).encode() + b"\r\n"


def write_warc(path, pages):
    """pages: [(url, html, metadata_block or None, metadata_for)], metadata_for: 'self' or another url."""
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        ids = {}
        for url, html, meta, meta_for in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            resp = w.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=http)
            w.write_record(resp)
            ids[url] = resp.rec_headers.get_header("WARC-Record-ID")
            if meta is not None:
                target = ids[url] if meta_for == "self" else "<urn:uuid:00000000-0000-0000-0000-000000000000>"
                w.write_record(w.create_warc_record(url, "metadata", payload=io.BytesIO(meta),
                                                    warc_content_type="application/warc-fields",
                                                    warc_headers_dict={"WARC-Concurrent-To": target}))
    return path


def outcome(res) -> dict:
    out = {r.url: "kept" for r in res["records"]}
    out.update({d.url: f"{d.reason}" for d in res["dropped"]})
    return out


# --- the rules ----------------------------------------------------------------------

def test_iso_codes_map_config_codes_to_common_crawls():
    assert lg.iso639_3("zh") == "zho" and lg.iso639_3("zh-Hant") == "zho" and lg.iso639_3("en") == "eng"
    assert lg.iso639_3("yue") == "yue" and lg.iso639_3("arg") == "arg" and lg.iso639_3("bh") == "bih"
    assert lg.wanted_iso3(["zh", "en"]) == {"zho", "eng"}


def test_cld2_rule_on_planted_verdicts():
    zh = frozenset({"zho"})
    sure_en = lg.parse_cc_metadata(cld2(True, ("en", 0.92), ("zh", 0.07)))
    assert sure_en.languages == (("eng", 0.92), ("zho", 0.07))
    assert lg.decide_on_cld2(sure_en, zh, 0.1).keep is False
    assert lg.decide_on_cld2(sure_en, zh, 0.05).keep is True  # 7 % Chinese passes a 5 % rule
    assert lg.decide_on_cld2(sure_en, frozenset({"zho", "eng"}), 0.1).keep is True
    # Simplified and Traditional Chinese are one language (zho): 0.06 + 0.06 passes 0.1
    split = lg.parse_cc_metadata(cld2(True, ("ja", 0.88), ("zh", 0.06), ("zh-Hant", 0.06)))
    assert lg.decide_on_cld2(split, zh, 0.1).keep is True
    # unreliable, empty, absent or unreadable verdicts are no evidence
    assert lg.decide_on_cld2(lg.parse_cc_metadata(cld2(False, ("en", 0.99))), zh, 0.1) is None
    assert lg.decide_on_cld2(lg.parse_cc_metadata(cld2(True)), zh, 0.1) is None
    assert lg.parse_cc_metadata(b"fetchTimeMs: 12\r\ncharset-detected: UTF-8\r\n") is None
    assert lg.parse_cc_metadata(b"languages-cld2: {not json\r\n") is None


def test_code_list_rule_for_wet_and_index():
    zh = frozenset({"zho"})
    assert lg.decide_on_code_list("zho,eng", zh, "wet-header", "h").keep is True
    assert lg.decide_on_code_list("eng,zho", zh, "wet-header", "h").keep is True  # any listed language
    assert lg.decide_on_code_list("spa,arg", zh, "wet-header", "h").keep is False
    assert lg.decide_on_code_list("", zh, "wet-header", "h") is None
    assert lg.decide_on_code_list(None, zh, "wet-header", "h") is None


def test_cheap_text_drops_scripts_and_styles_and_stays_bounded():
    text = lg.cheap_text(ZH_PAGE, "utf-8", 65536)
    assert "国家统计局" in text and "english words" not in text and "var x" not in text
    assert "color: red" not in lg.cheap_text(EN_PAGE, None, 65536)
    # cut inside a 3-byte character: the head still decodes as UTF-8, no U+FFFD
    head = lg.cheap_text(ZH_PAGE, None, 200)
    assert "\ufffd" not in head and len(head) < 100
    assert lg.cheap_text(b"\x00\x01\x02 binary", None, 65536) is not None


def test_fasttext_rule_drops_only_when_confident():
    from mdfs.classifiers.langid import FastTextLangID

    model = FastTextLangID().model
    zh = frozenset({"zho"})
    en_text = lg.cheap_text(EN_PAGE, None, 65536)
    d = lg.decide_on_fasttext(model, en_text, zh, 0.9)
    assert d.keep is False and d.detail.startswith("fastText") and "en 0." in d.detail
    assert lg.decide_on_fasttext(model, en_text, zh, 1.0).keep is True  # never that sure: keep
    assert lg.decide_on_fasttext(model, lg.cheap_text(ZH_PAGE, None, 65536), zh, 0.9).keep is True
    assert lg.decide_on_fasttext(model, "Short English title", zh, 0.5) is None  # too short to judge


# --- in the reader -----------------------------------------------------------------

def test_real_common_crawl_sample_drops_by_its_metadata_records():
    gated = read_file(CC_SAMPLE, {"languages": ["zh"]})
    open_ = read_file(CC_SAMPLE, {"languages": []})
    # same records offered, nothing lost: the gate only moves records from "records" to "dropped"
    assert len(gated["records"]) + len(gated["dropped"]) == len(open_["records"]) + len(open_["dropped"])
    assert gated["failed"] == open_["failed"] == []
    prefilter = {d.url: d.detail for d in gated["dropped"] if d.reason == "language_prefilter"}
    assert set(prefilter) == {"http://01spb.ru/company/", "http://037426.cn/",
                              "http://06.live-radsport.ch/fahrerstatistik_801/Anthony_Ravard.html",
                              "http://06.live-radsport.ch/tippspiel/stats_140_petzi.html",
                              "http://0900-hovenier.nl/gelderland/oosterbeek/"}
    assert prefilter["http://037426.cn/"] == ("cc-metadata languages-cld2: eng 0.92, zho 0.07 "
                                              "(reliable, 1413 text bytes)")
    assert "http://003338.cn/l41/481397.html" in {r.url for r in gated["records"]}
    # the metadata records are still counted as skipped records
    assert sum(s.count for s in gated["skipped"] if s.record_type == "metadata") == 16


def test_metadata_present_absent_unreliable_and_unpaired(tmp_path):
    pages = [
        ("http://a.example/zh-by-meta", ZH_PAGE, cld2(True, ("zh", 0.97)), "self"),
        ("http://a.example/en-by-meta", EN_PAGE, cld2(True, ("en", 0.99)), "self"),
        # the metadata says English: it is trusted over the page (documented rule)
        ("http://a.example/zh-page-en-meta", ZH_PAGE, cld2(True, ("en", 0.99)), "self"),
        # unreliable verdicts fall back to fastText on the page
        ("http://a.example/en-unreliable", EN_PAGE, cld2(False, ("zh", 0.6)), "self"),
        ("http://a.example/zh-unreliable", ZH_PAGE, cld2(False, ("en", 0.6)), "self"),
        # no metadata record, or one that names another record: fastText
        ("http://a.example/en-no-meta", EN_PAGE, None, None),
        ("http://a.example/zh-no-meta", ZH_PAGE, None, None),
        ("http://a.example/en-unpaired", EN_PAGE, cld2(True, ("zh", 0.99)), "other"),
    ]
    path = write_warc(tmp_path / "planted.warc.gz", pages)
    got = outcome(read_file(path, {"languages": ["zh"]}))
    assert got == {
        "http://a.example/zh-by-meta": "kept", "http://a.example/en-by-meta": "language_prefilter",
        "http://a.example/zh-page-en-meta": "language_prefilter",
        "http://a.example/en-unreliable": "language_prefilter", "http://a.example/zh-unreliable": "kept",
        "http://a.example/en-no-meta": "language_prefilter", "http://a.example/zh-no-meta": "kept",
        "http://a.example/en-unpaired": "language_prefilter"}
    # metadata only: pages without usable metadata pass to extraction
    meta_only = outcome(read_file(path, {"languages": ["zh"]}, {"language_gate": "metadata"}))
    assert [u for u, o in meta_only.items() if o != "kept"] == ["http://a.example/en-by-meta",
                                                                  "http://a.example/zh-page-en-meta"]
    # off, or a source that keeps every language: nothing dropped by the gate
    assert set(outcome(read_file(path, {"languages": ["zh"]}, {"language_gate": "off"})).values()) == {"kept"}
    assert set(outcome(read_file(path, {"languages": []})).values()) == {"kept"}
    # a source keeping English too keeps the English pages
    both = outcome(read_file(path, {"languages": ["zh", "en"]}))
    assert set(both.values()) == {"kept"}


def test_wet_records_use_identified_content_language():
    assert [d.detail for d in read_file(WET_SAMPLE, {"languages": ["zh"]})["dropped"]] == [
        "WARC-Identified-Content-Language: spa"]
    assert len(read_file(WET_SAMPLE, {"languages": ["es"]})["records"]) == 1
    assert len(read_file(WET_SAMPLE, {"languages": ["zh"]}, {"language_gate": "off"})["records"]) == 1


def test_gate_modes_are_checked():
    with pytest.raises(ValueError, match="read.language_gate"):
        load_config(sets=["read.language_gate=fasttext"])
    assert load_config(sets=["read.language_gate=off"]).read.language_gate == "off"


def test_the_gate_adds_no_per_page_failure_on_hostile_html(tmp_path):
    hostile = [("http://h.example/nul", b"<html>\x00\x00<body>" + b"\xff\xfe" * 5000, None, None),
               ("http://h.example/deep", b"<div>" * 20000 + "深".encode() * 10, None, None),
               ("http://h.example/empty-body", b"<html></html>", None, None)]
    res = read_file(write_warc(tmp_path / "h.warc.gz", hostile), {"languages": ["zh"]})
    assert res["failed"] == [] and len(res["records"]) + len(res["dropped"]) == 3



def test_a_reader_error_after_a_held_response_still_accounts_for_it(tmp_path, monkeypatch):
    from mdfs.pipeline.io.readers import warc as wr

    path = write_warc(tmp_path / "two.warc.gz", [("http://a.example/1", ZH_PAGE, None, None),
                                                 ("http://a.example/2", ZH_PAGE, None, None)])
    real = wr.iter_unit
    calls = []

    def failing(unit, limits):
        calls.append(1)
        if len(calls) == 2:  # the second record's member: the reader breaks while the first is held back
            raise RuntimeError("disk went away")
        yield from real(unit, limits)

    monkeypatch.setattr(wr, "iter_unit", failing)
    res = read_file(path, {"languages": ["zh"]})
    assert [r.url for r in res["records"]] == ["http://a.example/1"]
    assert [f.error_kind for f in res["failed"]] == ["read_error"]
