"""Bounded decoding of HTTP payloads: chunked transfer coding, Content-Encoding
(gzip, deflate, br) and the text charset.

Every decoder takes a byte cap, so a decompression bomb is refused after it has
produced ``cap`` bytes, never inflated in full.
"""
from __future__ import annotations

import codecs
import re
import zlib

import brotli
import charset_normalizer


class PayloadTooLarge(Exception):
    """Decoded payload would exceed the configured cap (a policy drop)."""


class PayloadError(Exception):
    """Payload bytes are corrupt (a failure)."""


def dechunk(data: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding; raises PayloadError if malformed."""
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise PayloadError("chunked: missing chunk-size line")
        size_field = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise PayloadError(f"chunked: bad chunk size {size_field[:20]!r}") from None
        if size == 0:
            return bytes(out)
        start = eol + 2
        if start + size > len(data):
            raise PayloadError("chunked: truncated chunk")
        out += data[start:start + size]
        pos = start + size + 2


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, cap + 1)
    if len(out) > cap or d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed size exceeds {cap} bytes")
    return out + d.flush()


def _unbrotli(data: bytes, cap: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray(d.process(data, output_buffer_limit=cap + 1))
    while len(out) <= cap and not d.is_finished() and not d.can_accept_more_data():
        out += d.process(b"", output_buffer_limit=cap + 1 - len(out))
    if len(out) > cap:
        raise PayloadTooLarge(f"decompressed size exceeds {cap} bytes")
    return bytes(out)


def decode_content_encoding(data: bytes, encoding: str | None, cap: int) -> bytes:
    """Decode a Content-Encoding chain (e.g. ``gzip`` or ``deflate, br``).

    Crawlers often store the payload already decoded while keeping the header
    (Common Crawl renames it, others do not), so a payload that does not look
    encoded but does look like markup is passed through unchanged.
    """
    if not encoding:
        return data
    for enc in reversed([e.strip().lower() for e in encoding.split(",") if e.strip()]):
        if enc in ("identity", "none", "utf-8", "utf8"):
            continue
        try:
            if enc in ("gzip", "x-gzip"):
                if data[:2] != b"\x1f\x8b" and _looks_like_markup(data):
                    continue
                data = _inflate(data, 16 + zlib.MAX_WBITS, cap)
            elif enc == "deflate":
                if _looks_like_markup(data):
                    continue
                try:
                    data = _inflate(data, zlib.MAX_WBITS, cap)
                except zlib.error:  # raw deflate, as some servers send
                    data = _inflate(data, -zlib.MAX_WBITS, cap)
            elif enc == "br":
                if _looks_like_markup(data):
                    continue
                data = _unbrotli(data, cap)
            else:
                raise PayloadError(f"unsupported Content-Encoding {enc!r}")
        except (zlib.error, brotli.error) as exc:
            raise PayloadError(f"Content-Encoding {enc}: {exc}") from exc
    return data


def _looks_like_markup(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == b"<"


# --- charset --------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([a-zA-Z0-9_:.\-]+)""", re.I)

# WHATWG encoding-label practice: decode with the superset the browser uses.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252",
              "latin-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252",
              "big5": "big5hkscs", "shift_jis": "cp932", "sjis": "cp932", "euc-kr": "cp949",
              "ks_c_5601-1987": "cp949", "tis-620": "cp874", "windows-874": "cp874"}


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m.group(1) if m else None


def _canonical(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_html(data: bytes, header_charset: str | None = None) -> tuple[str, str, str]:
    """Decode HTML bytes by the best available evidence.

    Order: byte-order mark, the HTTP header charset, the ``<meta>`` charset, then
    charset_normalizer's detection.  A declared charset is used only if the bytes
    decode under it without error; a wrong declaration (GBK labelled UTF-8 or the
    reverse) falls through to the next evidence instead of producing mojibake.
    Returns ``(text, encoding, evidence)``; raises ``UnicodeError`` if nothing
    decodes the bytes cleanly.
    """
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), enc, "bom"
            except UnicodeDecodeError:
                break
    # Valid multi-byte UTF-8 almost never happens by chance in another encoding,
    # so bytes that decode strictly as UTF-8 are UTF-8 whatever the label says
    # (this catches UTF-8 pages labelled GBK, which GB18030 would turn to mojibake).
    meta = _META_CHARSET.search(data[:4096])
    declared_header = _canonical(header_charset)
    declared_meta = _canonical(meta.group(1).decode("ascii", "replace")) if meta else None
    try:
        text = data.decode("utf-8")
        evidence = ("http_header" if declared_header == "utf-8" else
                    "meta" if declared_meta == "utf-8" else "valid_utf8")
        return text, "utf-8", evidence
    except UnicodeDecodeError:
        pass
    for evidence, enc in (("http_header", declared_header), ("meta", declared_meta)):
        if not enc or enc == "utf-8" or enc.startswith("utf_16") or enc.startswith("utf-16"):
            continue  # UTF-8 failed above; a meta tag readable as ASCII is not UTF-16
        try:
            return data.decode(enc), enc, evidence
        except UnicodeDecodeError:
            continue
    best = charset_normalizer.from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        enc = _canonical(best.encoding) or best.encoding
        try:
            return data.decode(enc), enc, "detected"
        except UnicodeDecodeError:
            pass
    raise UnicodeError("no charset decodes the payload cleanly "
                       f"(header={header_charset!r}, meta={meta.group(1)[:30] if meta else None!r})")


def looks_binary(data: bytes) -> bool:
    """NUL bytes or a high share of control bytes in the head: not text."""
    head = data[:4096]
    if not head:
        return False
    if b"\x00" in head and not (head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE)):
        return True
    ctrl = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return ctrl / len(head) > 0.1


# C0 controls other than tab, newline, vertical tab, form feed, carriage return
_CONTROL_BYTES = bytes([*range(0, 9), *range(14, 32)])
