"""Extraction: real pages, charset from the three kinds of evidence, the hard
time limit, crashes of the extractor process, binary payloads."""
from __future__ import annotations

import time

import apache_beam as beam
import pytest

from mdfs.pipeline.config import SAMPLES_DIR, load_config
from mdfs.pipeline.stages.extract import ExtractCrash, ExtractDoFn, ExtractMemoryLimit, ExtractorProcess, ExtractTimeout
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
    cfg = load_config().extract.model_copy(update=cfg_over)
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
    fn = ExtractDoFn(load_config().extract, 0.01)
    fn.setup()
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, text="兹拉坦&middot;伊布")
    assert [d.text for d in fn.process(rec)] == ["兹拉坦·伊布"]


# --- extract.engine and the fallback (issue #38) ---------------------------

def _record(html: str, url: str | None = None) -> RawRecord:
    return RawRecord(key="k", id="i", source="s", file="f", offset=0, url=url, payload=html.encode("utf-8"),
                     charset="utf-8")


ARTICLE = ("<html><head><title>新闻</title></head><body><nav><a href='/'>首页</a> <a href='/n'>新闻中心</a> "
           "<a href='/s'>体育频道</a></nav><article><h1>国家统计局发布四月经济数据</h1>"
           + "".join(f"<p>第{i}段：国家统计局今天发布数据，四月份规模以上工业增加值同比增长，消费市场继续恢复。</p>"
                     for i in range(1, 9))
           + "</article><footer>版权所有 京ICP备00000000号 联系我们</footer></body></html>")

# Short reviews in comment-classed blocks, the shape of movie.douban.com's
# comments page in magic-html: trafilatura (comments off) keeps only the chrome.
REVIEWS = ("<html><head><title>短评</title></head><body><nav><a href='/'>首页</a> <a href='/movie'>电影</a></nav>"
           "<div id='content'><h1>不够善良的我们 短评</h1><div id='comments'>"
           + "".join(f"<div class='comment-item'><span class='comment-info'>用户{i}</span><p class='comment-content'>"
                     + f"第{i}条短评：剧情节奏很好，演员表演自然，值得推荐给朋友。" * 2 + "</p></div>"
                     for i in range(1, 21))
           + "</div></div><footer>版权所有 © 2024</footer></body></html>")


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse"])
@pytest.mark.parametrize("isolation", ["subprocess", "inprocess"])
def test_engines_keep_the_article_and_drop_navigation(engine, isolation):
    res = _extract([_record(ARTICLE)], engine=engine, isolation=isolation)
    text = res["kept"][0].text
    assert "第8段：国家统计局今天发布数据" in text and "第1段" in text
    assert "体育频道" not in text and "京ICP备" not in text


def test_resiliparse_engine_is_bounded_by_the_time_limit(zh_records):
    res = _extract(zh_records[:2], engine="resiliparse", timeout_s=0.000001)
    assert {f.error_kind for f in res["failed"]} == {"extract_timeout"}


def test_fallback_recovers_comment_shaped_posts_trafilatura_drops():
    without = _extract([_record(REVIEWS)], fallback_min_share=0)["kept"][0].text
    assert "短评：" not in without  # trafilatura alone: the page's chrome only
    text = _extract([_record(REVIEWS)])["kept"][0].text  # defaults: fallback at 0.3
    assert "第1条短评" in text and "第20条短评" in text


def test_fallback_leaves_a_good_trafilatura_text_alone():
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options

    opts = extraction_options(load_config().extract)
    assert extract_text(ARTICLE, None, opts) == extract_text(ARTICLE, None, {**opts, "fallback_min_share": 0})


def test_wechat_body_hidden_by_style_is_extracted():
    from mdfs.pipeline.stages.extract_worker import unhide_wechat_body

    body = "".join(f"<p>第{i}段：绥德县表彰退役军人，讲述他们在乡村振兴中的故事。</p>" for i in range(1, 8))
    page = ("<html><body><div id='js_name'>掌上绥德</div><div class=\"rich_media_content\" id=\"js_content\" "
            f"style=\"visibility: hidden;\">{body}</div><div>扫码关注</div></body></html>")
    assert 'style="">' in unhide_wechat_body(page) and unhide_wechat_body("<p>x</p>") == "<p>x</p>"
    hostile = "<div " * 400_000 + 'id="js_content" style="visibility: hidden">'  # 2 MB of unclosed tags
    t0 = time.monotonic()
    assert unhide_wechat_body(hostile).endswith('<div id="js_content" style="">')  # only the nearest tag
    assert time.monotonic() - t0 < 2  # linear (a backtracking pattern took 11 s here)
    for engine in ("resiliparse", "trafilatura"):
        text = _extract([_record(page, "http://mp.weixin.qq.com/s?__biz=x")], engine=engine)["kept"][0].text
        assert "第7段：绥德县表彰退役军人" in text, engine


def test_unknown_engine_is_refused():
    with pytest.raises(Exception, match="engine"):
        load_config(sets=["extract.engine=boilerpipe"])


# --- decoding in the bounded child (the page crosses the pipe as read) -----

MIXED = ("<html><body><p>" + "北京时间今天上午，国家统计局发布了最新的经济数据。" * 10).encode("utf-8") + \
    "，后半部分是GBK编码。</p></body></html>".encode("gbk")  # no single charset decodes it


@pytest.mark.parametrize("isolation", ["subprocess", "inprocess"])
def test_undecodable_payload_is_a_decode_error_dead_letter(isolation):
    from mdfs.pipeline.io.payload import decode_html

    with pytest.raises(UnicodeError) as exc:
        decode_html(MIXED, "utf-8", 0.01)
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, payload=MIXED, charset="utf-8")
    res = _extract([rec], isolation=isolation)
    assert [(f.error_kind, f.message) for f in res["failed"]] == [("decode_error", f"UnicodeError: {exc.value}")]


@pytest.mark.parametrize("isolation", ["subprocess", "inprocess"])
def test_charset_evidence_and_replaced_bytes_come_back_from_the_child(isolation):
    broken = ARTICLE.encode("utf-8").replace("第3段".encode(), b"\xff\xfe3")  # 2 invalid bytes, under 1 %
    rec = RawRecord(key="k", id="i", source="s", file="f", offset=0, payload=broken, charset="utf-8")
    doc = _extract([rec], isolation=isolation)["kept"][0]
    assert doc.extra.get("replaced_bytes") == 2 and "第8段" in doc.text
    empty = RawRecord(key="k", id="i", source="s", file="f", offset=0,  # GBK that is not valid UTF-8
                      payload='<html><head><meta charset="gbk"><title>标题</title></head><body></body></html>'
                      .encode("gbk"))
    for engine in ("resiliparse", "trafilatura"):
        dropped = _extract([empty], isolation=isolation, engine=engine)["dropped"]
        assert [(d.reason, d.detail) for d in dropped] == [("no_main_text", "charset gb18030 (meta)")], engine


def test_decoding_in_the_child_is_bounded_by_the_time_limit(zh_records):
    # a page that must be detected (no declaration, not UTF-8) is decoded in the
    # child too, inside the same deadline
    gbk = RawRecord(key="k", id="i", source="s", file="f", offset=0,
                    payload=("<html><body><p>" + "北京时间今天上午，国家统计局发布了最新的经济数据。" * 3000
                             + "</p></body></html>").encode("gbk"))
    assert {f.error_kind for f in _extract([gbk], timeout_s=0.000001)["failed"]} == {"extract_timeout"}
    assert "国家统计局" in _extract([gbk])["kept"][0].text


def test_the_parent_does_not_decode_what_the_child_decodes(monkeypatch):
    from mdfs.pipeline.io import payload

    def refuse(*_a, **_k):
        raise AssertionError("decoded in the parent")

    monkeypatch.setattr(payload, "decode_html", refuse)  # the parent's module; the child imports its own
    assert "第8段" in _extract([_record(ARTICLE)], engine="resiliparse")["kept"][0].text
    failed = _extract([_record(ARTICLE)], isolation="inprocess")["failed"]  # the patch does reach the parent
    assert [(f.error_kind, f.message) for f in failed] == [("decode_error", "AssertionError: decoded in the parent")]
