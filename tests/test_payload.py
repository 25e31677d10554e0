"""Charset and Content-Encoding decoding, with planted cases of known answer."""
from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from mdfs.pipeline.io import payload as pl

ZH = "中文网页的正文内容，用于测试字符集识别。这是第二句话！" * 5


def _page(body: str, meta: str | None = None) -> str:
    head = f'<meta charset="{meta}">' if meta else ""
    return f"<html><head>{head}<title>测试</title></head><body><p>{body}</p></body></html>"


def test_header_charset_used():
    text, enc, ev, _ = pl.decode_html(_page(ZH).encode("gb18030"), "gbk")
    assert ZH in text and enc == "gb18030" and ev == "http_header"


def test_meta_charset_used_when_no_header():
    text, enc, ev, _ = pl.decode_html(_page(ZH, "gb2312").encode("gbk"), None)
    assert ZH in text and ev == "meta"


def test_gbk_labelled_utf8_is_not_mojibake():
    data = _page(ZH, "utf-8").encode("gbk")
    text, enc, ev, _ = pl.decode_html(data, "utf-8")
    assert ZH in text and enc == "gb18030" and ev == "detected"


def test_utf8_labelled_gbk_is_not_mojibake():
    data = _page(ZH, "gbk").encode("utf-8")
    text, enc, ev, _ = pl.decode_html(data, "gbk")
    assert ZH in text and enc == "utf-8"


def test_big5_detected_without_any_label():
    trad = "這是一段繁體中文的新聞內容，說明字元集偵測的結果。" * 8
    page = f"<html><head><title>新聞</title></head><body><p>{trad}</p></body></html>"
    text, enc, _, _ = pl.decode_html(page.encode("big5"), None)
    assert trad in text


def test_bom_wins():
    text, enc, ev, _ = pl.decode_html(b"\xef\xbb\xbf" + _page(ZH).encode("utf-8"), "iso-8859-1")
    assert ZH in text and ev == "bom"


def test_latin1_label_decodes_as_windows_1252():
    text, enc, _, _ = pl.decode_html("<p>caf\u00e9 \u2019quoted\u2019</p>".encode("cp1252"), "iso-8859-1")
    assert "café ’quoted’" in text and enc == "cp1252"


def test_binary_sniffing():
    assert pl.looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert not pl.looks_binary(_page(ZH).encode("utf-8"))
    assert not pl.looks_binary(b"")
    # the share of C0 control bytes (tab, newlines, form feed not counted) decides: 10 %
    assert pl.looks_binary(b"a" * 88 + b"\x01" * 12)
    assert not pl.looks_binary(b"a" * 92 + b"\x01" * 8)
    assert not pl.looks_binary(b"a\t\n\r\x0b\x0c" * 20)


@pytest.mark.parametrize("enc,fn", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
    ("br", brotli.compress),
])
def test_content_encoding(enc, fn):
    body = _page(ZH).encode("utf-8")
    assert pl.decode_content_encoding(fn(body), enc, 10_000_000) == body


def test_content_encoding_already_decoded_is_passed_through():
    body = _page(ZH).encode("utf-8")
    assert pl.decode_content_encoding(body, "gzip", 10_000_000) == body


@pytest.mark.parametrize("enc,fn", [("gzip", gzip.compress), ("br", brotli.compress)])
def test_decompression_is_capped(enc, fn):
    bomb = fn(b"<" + b"a" * 5_000_000)
    with pytest.raises(pl.PayloadTooLarge):
        pl.decode_content_encoding(bomb, enc, 100_000)


def test_corrupt_encoding_is_an_error():
    with pytest.raises(pl.PayloadError):
        pl.decode_content_encoding(b"\x1f\x8b\x08\x00garbage-not-gzip", "gzip", 1000)
    with pytest.raises(pl.PayloadError):
        pl.decode_content_encoding(b"xx", "compress", 1000)


def test_dechunk():
    assert pl.dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", 100) == b"hello world"
    with pytest.raises(pl.PayloadError):
        pl.dechunk(b"zz\r\nhello", 100)
    with pytest.raises(pl.PayloadError):
        pl.dechunk(b"ff\r\nshort", 100)
    # a signed, prefixed or over-long size is not a chunk size: no backwards step, no loop
    for size in (b"-6", b"+5", b"0x5", b" -1", b"1" * 20):
        with pytest.raises(pl.PayloadError):
            pl.dechunk(size + b"\r\nhello world\r\n0\r\n\r\n", 100)
    with pytest.raises(pl.PayloadTooLarge):
        pl.dechunk(b"b\r\nhello world\r\n0\r\n\r\n", 10)
