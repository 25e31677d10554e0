"""WARC (and WET, ARC) records out of container units, with resynchronisation.

``iter_unit`` frames records inside one unit (an uncompressed file, or one
gzip member) without trusting any single record: a header block is capped
(``read.max_header_bytes``), a block is held only up to the payload cap and
skipped past it, and a record counts as framed only when its Content-Length
ends exactly at the ``CRLF CRLF`` that closes it.  When that fails the record
is reported as broken and the parser looks for the next *parseable* WARC
header block at a line start (one whose own Content-Length again ends at a
record boundary), so ``WARC/1.0`` text inside a payload is not taken for a
record.  What lies between is reported as an unreadable stretch.

``classify`` turns a framed record into a document candidate, a policy drop,
a non-document record type, or a malformed record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional

from .. import payload as pl
from ...records import DROPPED, SKIPPED, RawRecord
from .container import CHUNK, Unit

if TYPE_CHECKING:
    from ...schema import Read

DOCUMENT_WARC_TYPES = ("response", "resource", "revisit", "conversion")
NON_DOCUMENT_WARC_TYPES = ("request", "metadata", "warcinfo", "continuation")
RECORD_END = b"\r\n\r\n"
MAX_RESYNC_CANDIDATES = 1000  # header look-alikes tried per damaged stretch
_DIGITS = re.compile(rb"[0-9]{1,18}")


class FramingError(Exception):
    """The bytes at this position are not a well-formed record header."""


@dataclass
class Framed:
    """A record whose header block parsed and whose block ends at a record boundary."""

    offset: int  # in the unit (decompressed coordinates)
    headers: dict  # lower-case WARC header names -> values
    block: bytes  # the first min(Content-Length, cap + 1) bytes of the block
    length: int  # Content-Length
    version: str = "WARC/1.0"


@dataclass
class Broken:
    """A record whose header parsed but that cannot be used as a whole (one record)."""

    offset: int
    headers: dict
    message: str
    kind: str = "malformed_record"


@dataclass
class Stretch:
    """Bytes that do not form a record; how many records they held is not known."""

    offset: int
    length: Optional[int]
    message: str


@dataclass
class ParserLimits:
    max_header_bytes: int
    max_block_bytes: int
    arc: bool = False


def _parse_warc_header(unit: Unit, cap: int) -> tuple[str, dict]:
    line = unit.readline(min(cap, 64))
    if not line.startswith(b"WARC/"):
        raise FramingError(f"not a WARC header: {line[:30]!r}")
    version = line.strip().decode("ascii", "replace")
    headers: dict[str, str] = {}
    total, last = len(line), None
    while True:
        line = unit.readline(cap - total + 1)
        total += len(line)
        if total > cap:
            raise FramingError(f"WARC header block exceeds {cap} bytes")
        if not line:
            raise FramingError("input ends inside a WARC header block")
        if line in (b"\r\n", b"\n"):
            return version, headers
        if line[:1] in (b" ", b"\t") and last:  # folded continuation line
            headers[last] += " " + line.strip().decode("utf-8", "replace")
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise FramingError(f"malformed WARC header line {line[:40]!r}")
        last = name.strip().lower().decode("latin-1")
        headers[last] = value.strip().decode("utf-8", "replace")


def _parse_arc_header(unit: Unit, cap: int) -> tuple[str, dict]:
    """ARC v1: one line ``URL IP date content-type length``; mapped onto WARC names."""
    line = unit.readline(cap + 1)
    if len(line) > cap or not line.endswith(b"\n"):
        raise FramingError("ARC header line missing or too long")
    parts = line.decode("utf-8", "replace").split()
    if len(parts) != 5 or not parts[4].isdigit():
        raise FramingError(f"not an ARC header: {line[:60]!r}")
    url, _ip, date, ctype, length = parts
    if url.startswith("filedesc:"):
        rtype, ctype = "warcinfo", "text/plain"
    else:
        rtype, ctype = "response", "application/http; msgtype=response"
    return "ARC/1.0", {"warc-type": rtype, "warc-target-uri": url, "warc-date": date,
                       "content-type": ctype, "content-length": length}


def _content_length(headers: dict) -> int:
    raw = headers.get("content-length")
    if raw is None:
        raise FramingError("no Content-Length")
    if not _DIGITS.fullmatch(raw.strip().encode("ascii", "replace")):
        raise FramingError(f"bad Content-Length {raw[:30]!r}")
    return int(raw)


def _ends_at_boundary(unit: Unit, arc: bool) -> bool:
    """After a block: CRLF CRLF (WARC) or LF (ARC), or the unit's end with only
    line breaks left (some writers drop the final separator)."""
    want = b"\n" if arc else RECORD_END
    tail = unit.read(len(want))
    if tail == want:
        return True
    return not tail.strip(b"\r\n") and unit.at_end()


def _frame_at(unit: Unit, limits: ParserLimits, hold: bool):
    """Parse one record at the unit's position.  Returns (version, headers,
    block, length); raises FramingError (bad header) or _Cut (bad block)."""
    parse = _parse_arc_header if limits.arc else _parse_warc_header
    version, headers = parse(unit, limits.max_header_bytes)
    try:
        length = _content_length(headers)
    except FramingError as exc:
        raise _Cut(headers, str(exc), "bad_content_length") from None
    cap = limits.max_block_bytes + 1 if hold else 0
    block = unit.read(min(length, cap)) if cap else b""
    got = len(block) + unit.skip(length - len(block))
    if got < length:
        why = unit.error or f"the record ends after {got} of its {length} Content-Length bytes"
        raise _Cut(headers, why, "truncated_record")
    if not _ends_at_boundary(unit, limits.arc):
        raise _Cut(headers, f"Content-Length {length} does not end at a record boundary", "bad_content_length")
    return version, headers, block, length


class _Cut(Exception):
    def __init__(self, headers: dict, message: str, kind: str):
        super().__init__(message)
        self.headers, self.message, self.kind = headers, message, kind


def _skip_padding(unit: Unit) -> bool:
    """Skip blank lines between records; False at the unit's end."""
    while True:
        chunk = unit.peek(CHUNK)
        if not chunk:
            return False
        stripped = chunk.lstrip(b"\r\n")
        unit.skip(len(chunk) - len(stripped))
        if stripped:
            return True


def next_header(unit: Unit, start: int, limits: ParserLimits) -> Optional[int]:
    """The first line start at or after ``start`` (>= 1) where a record frames
    cleanly; None if there is none in the unit."""
    marker = b"\n" if limits.arc else b"\nWARC/"
    scan, tried = start - 1, 0
    while tried < MAX_RESYNC_CANDIDATES:
        unit.seek(scan)
        chunk = unit.read(CHUNK + len(marker))
        if len(chunk) < len(marker):
            return None
        i = chunk.find(marker)
        while 0 <= i < CHUNK and tried < MAX_RESYNC_CANDIDATES:
            tried += 1
            unit.seek(scan + i + 1)
            try:
                _frame_at(unit, limits, hold=False)
                return scan + i + 1
            except (FramingError, _Cut):
                pass
            i = chunk.find(marker, i + 1)
        scan += CHUNK
    return None


def iter_unit(unit: Unit, limits: ParserLimits) -> Iterator:
    """Framed / Broken / Stretch items of one unit, in order, covering all of it."""
    while _skip_padding(unit):
        start = unit.tell()
        try:
            version, headers, block, length = _frame_at(unit, limits, hold=True)
        except FramingError as exc:
            nxt = next_header(unit, start + 1, limits)
            yield Stretch(start, None if nxt is None else nxt - start, str(exc))
            if nxt is None:
                return
            unit.seek(nxt)
            continue
        except _Cut as cut:
            yield Broken(start, cut.headers, cut.message, cut.kind)
            nxt = next_header(unit, start + 1, limits)
            if nxt is None:
                return
            unit.seek(nxt)
            continue
        yield Framed(start, headers, block, length, version)


# --- classification ------------------------------------------------------------

@dataclass
class Verdict:
    kind: str  # "ok" | DROPPED | SKIPPED | "malformed" | "failed" (reason: the error kind)
    record: Optional[RawRecord] = None
    reason: Optional[str] = None
    detail: Optional[str] = None
    record_type: Optional[str] = None
    extra: dict = field(default_factory=dict)


def _parse_http(block: bytes, cap: int) -> tuple[int, dict, bytes]:
    """Status line and headers of an HTTP response block; the body after them."""
    end = block.find(b"\r\n\r\n", 0, cap + 4)
    sep = 4
    if end < 0:
        end = block.find(b"\n\n", 0, cap + 2)
        sep = 2
    if end < 0:
        raise ValueError(f"HTTP header block missing or over {cap} bytes")
    lines = block[:end].decode("latin-1").splitlines()
    status_line = lines[0].split(None, 2) if lines else []
    if len(status_line) < 2 or not status_line[0].upper().startswith("HTTP/") or not status_line[1].isdigit():
        raise ValueError(f"bad HTTP status line {lines[0][:60] if lines else ''!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers[name.strip().lower()] = value.strip()
    return int(status_line[1]), headers, block[end + sep:]


def classify(fr: Framed, source: str, path: str, cfg: Read) -> Verdict:
    """What a framed record is: a document candidate, a policy drop, a record
    type that never carries a document, or malformed (``cfg``: the ``read`` section)."""
    h = fr.headers
    rtype = (h.get("warc-type") or "").lower()
    if rtype in NON_DOCUMENT_WARC_TYPES:
        return Verdict(SKIPPED, record_type=rtype)
    if rtype not in DOCUMENT_WARC_TYPES:
        return Verdict("malformed", detail=f"missing or unknown WARC-Type {h.get('warc-type')!r}")
    url = h.get("warc-target-uri")
    rec = RawRecord(key="", id="", source=source, file=path, offset=0, url=url, date=h.get("warc-date"))
    if not url:
        return Verdict("malformed", rec, detail="record has no WARC-Target-URI")
    max_bytes = cfg.max_payload_bytes
    if rtype == "revisit":
        return Verdict(DROPPED, rec, "revisit_no_payload", h.get("warc-refers-to-target-uri"))
    if fr.length > max_bytes and rtype == "conversion":
        return Verdict(DROPPED, rec, "too_large", f">{max_bytes} bytes")
    if rtype == "conversion":  # WET: plain text, UTF-8 by spec
        try:
            rec.text, replaced = pl.decode_text_utf8(fr.block, cfg.max_invalid_utf8_share)
        except UnicodeDecodeError:
            try:  # another encoding only on clear evidence
                rec.text, _, _, replaced = pl.decode_html(fr.block, None, cfg.max_invalid_utf8_share)
            except UnicodeError as exc:  # the same error kind as a JSONL line or an HTML page
                return Verdict("failed", rec, reason="decode_error", detail=str(exc))
        rec.language_hint = h.get("warc-identified-content-language")
        rec.replaced_bytes = replaced
        return Verdict("ok", rec)
    block = fr.block
    ctype_header = (h.get("content-type") or "").lower()
    if rtype == "response" and ctype_header.startswith("application/http"):
        try:
            status, http, body = _parse_http(block, cfg.max_header_bytes)
        except ValueError as exc:
            return Verdict("malformed", rec, detail=str(exc))
        ctype = http.get("content-type", "").lower()
        cenc, tenc = http.get("content-encoding"), http.get("transfer-encoding", "").lower()
        if status not in cfg.accept_status:
            return Verdict(DROPPED, rec, "http_status", str(status))
    else:  # resource records, or responses for non-HTTP URIs such as dns:
        ctype, cenc, tenc, body = ctype_header, None, "", block
    mime = ctype.split(";")[0].strip()
    if not mime.startswith(tuple(t.lower() for t in cfg.html_content_types)):
        return Verdict(DROPPED, rec, "not_html", mime or "no content type")
    if fr.length > max_bytes:
        return Verdict(DROPPED, rec, "too_large", f">{max_bytes} payload bytes")
    if not body.strip():
        return Verdict(DROPPED, rec, "empty_payload")
    if "chunked" in tenc:
        try:
            body = pl.dechunk(body, cfg.max_decompressed_bytes)
        except pl.PayloadTooLarge as exc:
            return Verdict(DROPPED, rec, "decompressed_too_large", str(exc))
        except pl.PayloadError:
            pass  # many archives store the payload de-chunked but keep the header
    try:
        body = pl.decode_content_encoding(body, cenc, cfg.max_decompressed_bytes)
    except pl.PayloadTooLarge as exc:
        return Verdict(DROPPED, rec, "decompressed_too_large", str(exc))
    except pl.PayloadError as exc:
        return Verdict("malformed", rec, detail=f"content_encoding_error: {exc}")
    rec.payload = body
    rec.charset = pl.charset_from_content_type(ctype)
    return Verdict("ok", rec)
