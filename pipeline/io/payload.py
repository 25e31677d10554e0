"""Bounded decoding of HTTP payloads: chunked transfer coding, Content-Encoding
(gzip, deflate, br) and the text charset.

Every decoder takes a byte cap, so a decompression bomb is refused after it has
produced ``cap`` bytes, never inflated in full.
"""
from __future__ import annotations

import codecs
import re
import zlib
from typing import NamedTuple

import brotli
import charset_normalizer

from ..textnorm import replace_surrogates


class PayloadTooLarge(Exception):
    """Decoded payload would exceed the configured cap (a policy drop)."""


class PayloadError(Exception):
    """Payload bytes are corrupt (a failure)."""


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


def dechunk(data: bytes, cap: int) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding; raises PayloadError if malformed,
    PayloadTooLarge past ``cap`` output bytes.  A chunk size is hex digits only
    (no sign, no ``0x``), so every step moves forward through ``data``."""
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise PayloadError("chunked: missing chunk-size line")
        size_field = data[pos:eol].split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise PayloadError(f"chunked: bad chunk size {size_field[:20]!r}")
        size = int(size_field, 16)
        if size == 0:
            return bytes(out)
        start = eol + 2
        if start + size > len(data):
            raise PayloadError("chunked: truncated chunk")
        if len(out) + size > cap:
            raise PayloadTooLarge(f"dechunked size exceeds {cap} bytes")
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
    """The Python codec of a charset label, if it is a *text* encoding.  Codecs
    such as base64, rot13, hex, zlib, bz2, uu or quopri are not charsets."""
    if not label:
        return None
    label = label.strip().lower()
    label = _SUPERSETS.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


# UTF-32-LE's mark begins with UTF-16-LE's, so it is tried first
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_WIDE = ("utf-16", "utf-32")


class Decoded(NamedTuple):
    text: str
    encoding: str
    evidence: str
    replaced: int  # invalid UTF-8 bytes (decode_text_utf8) and lone surrogates decoded as U+FFFD


def bom_encoding(data: bytes) -> str | None:
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc
    return None


def is_wide(encoding: str | None) -> bool:
    return bool(encoding) and encoding.replace("_", "-").startswith(_WIDE)


def decode_text_utf8(data: bytes, max_invalid_share: float) -> tuple[str, int]:
    """UTF-8 with a few invalid bytes (a stray byte, a character cut by
    ``WARC-Truncated``) decodes with U+FFFD for each; more than
    ``max_invalid_share`` of the bytes invalid raises UnicodeDecodeError.
    Returns ``(text, replaced_bytes)``."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError as first:
        # surrogateescape turns each invalid byte into one lone surrogate: count, then replace
        text = data.decode("utf-8", "surrogateescape")
        bad = len(_ESCAPED.findall(text))
        if bad > max_invalid_share * max(len(data), 1):
            raise first
        return _ESCAPED.sub("\ufffd", text), bad


_ESCAPED = re.compile("[\udc80-\udcff]")


def decode_html(data: bytes, header_charset: str | None = None, max_invalid_share: float = 0.01) -> Decoded:
    """``_decode_html``, then any lone surrogate a codec produced (unicode_escape
    and raw_unicode_escape are text encodings that decode ``\\ud800`` to one)
    replaced by U+FFFD and counted with the invalid bytes."""
    res = _decode_html(data, header_charset, max_invalid_share)
    if res.encoding == "utf-8":
        # strict UTF-8 rejects encoded surrogates, and decode_text_utf8 replaces the
        # ones surrogateescape made: nothing to scan (a scan of every page was 0.4 ms,
        # a sixth of the fast engine's extraction time)
        return res
    text, n = replace_surrogates(res.text)
    return res._replace(text=text, replaced=res.replaced + n) if n else res


def _decode_html(data: bytes, header_charset: str | None, max_invalid_share: float) -> Decoded:
    """Decode HTML bytes by the best available evidence.

    Order: byte-order mark (UTF-8/16/32), a UTF-16/32 declaration in the HTTP
    header, strict UTF-8, the HTTP header charset, the ``<meta>`` charset,
    charset_normalizer's detection, and last UTF-8 with at most
    ``max_invalid_share`` of its bytes invalid (replaced by U+FFFD and counted).
    A declared charset is used only if the bytes decode under it without
    error; a wrong declaration (GBK labelled UTF-8 or the reverse) falls through
    to the next evidence instead of producing mojibake.  Labels that name a
    codec but not a text encoding (base64, rot13, ...) are ignored.  Raises
    ``UnicodeError`` if nothing decodes the bytes.
    """
    enc = bom_encoding(data)
    if enc:
        try:
            return Decoded(data.decode(enc).lstrip("\ufeff"), enc, "bom", 0)
        except UnicodeDecodeError:
            pass
    declared_header = _canonical(header_charset)
    if is_wide(declared_header):
        try:
            return Decoded(data.decode(declared_header).lstrip("\ufeff"), declared_header, "http_header", 0)
        except UnicodeDecodeError:
            declared_header = None
    # Valid multi-byte UTF-8 almost never happens by chance in another encoding,
    # so bytes that decode strictly as UTF-8 are UTF-8 whatever the label says
    # (this catches UTF-8 pages labelled GBK, which GB18030 would turn to mojibake).
    meta = _META_CHARSET.search(data[:4096])
    declared_meta = _canonical(meta.group(1).decode("ascii", "replace")) if meta else None
    try:
        text = data.decode("utf-8")
        evidence = ("http_header" if declared_header == "utf-8" else
                    "meta" if declared_meta == "utf-8" else "valid_utf8")
        return Decoded(text, "utf-8", evidence, 0)
    except UnicodeDecodeError:
        pass
    for evidence, enc in (("http_header", declared_header), ("meta", declared_meta)):
        if not enc or enc == "utf-8" or is_wide(enc):
            continue  # UTF-8 failed above; a meta tag readable as ASCII is not UTF-16
        try:
            return Decoded(data.decode(enc), enc, evidence, 0)
        except UnicodeDecodeError:
            continue
    utf8_declared = "utf-8" in (declared_header, declared_meta)
    if utf8_declared:  # declared UTF-8 with a stray byte or a cut character
        try:
            text, replaced = decode_text_utf8(data, max_invalid_share)
            return Decoded(text, "utf-8", "utf8_with_replacement", replaced)
        except UnicodeDecodeError:
            pass
    best = charset_normalizer.from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        enc = _canonical(best.encoding) or _canonical(best.encoding.replace("_", "-"))
        if enc:
            try:
                return Decoded(data.decode(enc), enc, "detected", 0)
            except UnicodeDecodeError:
                pass
    try:
        text, replaced = decode_text_utf8(data, max_invalid_share)
        return Decoded(text, "utf-8", "utf8_with_replacement", replaced)
    except UnicodeDecodeError:
        pass
    raise UnicodeError("no charset decodes the payload cleanly "
                       f"(header={header_charset!r}, meta={meta.group(1)[:30] if meta else None!r})")


def looks_binary(data: bytes, charset: str | None = None) -> bool:
    """NUL bytes or a high share of control bytes in the head: not text.
    UTF-16/32 text (byte-order mark, or declared in ``charset``) is text."""
    head = data[:4096]
    if not head:
        return False
    if bom_encoding(head) or is_wide(_canonical(charset)):
        return False
    if b"\x00" in head:
        return True
    ctrl = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return ctrl / len(head) > 0.1


# C0 controls other than tab, newline, vertical tab, form feed, carriage return
_CONTROL_BYTES = bytes([*range(0, 9), *range(14, 32)])
