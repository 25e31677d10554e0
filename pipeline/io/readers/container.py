"""Byte containers below the record parsers: plain files and gzip members.

A record parser never talks to the file directly.  It reads *units*: the whole
file when it is uncompressed, one gzip member at a time when it is gzipped.
Units are what the container itself says about the file, independently of
what the record parser makes of the bytes inside:

* gzip members are found by zlib (end of a deflate stream plus its CRC and
  length trailer), so a damaged record inside one member never hides the
  members after it;
* a member that zlib cannot decode is reported with its compressed offset, and
  reading resumes at the next offset where a gzip member header starts and
  decodes (``GzipMembers`` scans for it);
* a member whose data inflates but whose trailer (CRC-32, length) does not
  match is inflated again as raw deflate, so all of its bytes reach the
  record parser, and is reported with ``check_failed``;
* bytes after the last member that are not a member are reported as such.

Inflation is zlib-ng's (the ``zlib-ng`` package: the zlib module's interface,
the same errors and messages, about 1.5x the inflate speed of CPython's zlib
on Common Crawl's members); inflating is most of what reading a WARC costs.

Every unit is a small seekable byte stream in *decompressed* coordinates, so
the record parsers can resynchronise (look ahead, go back) inside a unit.  A
backwards seek in a gzip member restarts its decompression: linear in the
member's size and needed only after damage.

A byte-range (splittable) reader uses the same layer: ``units(start, end,
claim)`` begins at the first member at or after ``start`` whose inflated
prefix is a record header (``record_start``), and stops at the first unit the
range does not own (``claim`` refuses it).  The rule on both sides of a split
is the same: a unit (member or damaged stretch) belongs to the range in which
it starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from zlib_ng import zlib_ng as zlib

CHUNK = 1 << 16
GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1 ID2 CM=deflate (RFC 1952)
PADDING = b" \t\r\n\x00"
_ARC_START = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")  # an ARC v1 header line starts with its URL


class Unit:
    """A seekable stream of decompressed bytes; ``error`` says why it ended early."""

    offset: int  # where the unit starts in the file (compressed coordinates)
    error: Optional[str] = None
    check_failed = False  # only a gzip member's trailer check can fail with all its data read

    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def seek(self, pos: int) -> None:
        raise NotImplementedError

    def tell(self) -> int:
        raise NotImplementedError

    def readline(self, limit: int) -> bytes:
        """One line (with its newline) of at most ``limit`` bytes."""
        out = bytearray()
        while len(out) < limit:
            chunk = self.peek(min(CHUNK, limit - len(out)))
            if not chunk:
                break
            nl = chunk.find(b"\n")
            take = len(chunk) if nl < 0 else nl + 1
            out += self.read(take)
            if nl >= 0:
                break
        return bytes(out)

    def peek(self, n: int) -> bytes:
        pos = self.tell()
        data = self.read(n)
        self.seek(pos)
        return data

    def finish(self) -> Optional[str]:
        """Read to the unit's end as its container requires; its error, if any."""
        return self.error

    def at_end(self) -> bool:
        return not self.peek(1)

    def skip(self, n: int) -> int:
        """Move ``n`` bytes forward without holding them; returns how many there were."""
        done = 0
        while done < n:
            got = len(self.read(min(CHUNK, n - done)))
            if not got:
                break
            done += got
        return done


_TRAILER_CHECK = re.compile(r"incorrect (data|length) check")  # zlib's words for a trailer mismatch


def gzip_header_length(head: bytes) -> Optional[int]:
    """Length of the gzip member header at the start of ``head`` (RFC 1952,
    2.3: 10 fixed bytes, then FEXTRA, FNAME, FCOMMENT, FHCRC as FLG says);
    None if it is not a complete header."""
    if len(head) < 10 or head[:3] != GZIP_MAGIC:
        return None
    flg, pos = head[3], 10
    if flg & 0x04:  # FEXTRA: 2-byte little-endian length, then that many bytes
        if len(head) < pos + 2:
            return None
        pos += 2 + int.from_bytes(head[pos:pos + 2], "little")
    for bit in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flg & bit:
            end = head.find(b"\0", pos)
            if end < 0:
                return None
            pos = end + 1
    if flg & 0x02:  # FHCRC
        pos += 2
    return pos if pos <= len(head) else None


class PlainUnit(Unit):
    """An uncompressed file as one unit (the raw stream must be seekable)."""

    def __init__(self, raw, size: Optional[int]):
        self.raw, self.size, self.offset = raw, size, 0
        self.raw.seek(0)

    def read(self, n: int) -> bytes:
        return self.raw.read(n)

    def seek(self, pos: int) -> None:
        self.raw.seek(pos)

    def tell(self) -> int:
        return self.raw.tell()

    def readline(self, limit: int) -> bytes:
        return self.raw.readline(limit)

    def peek(self, n: int) -> bytes:
        pos = self.raw.tell()
        data = self.raw.read(n)
        self.raw.seek(pos)
        return data

    def skip(self, n: int) -> int:
        pos = self.raw.tell()
        end = pos + n if self.size is None else min(pos + n, self.size)
        self.raw.seek(end)
        return end - pos


class GzipMember(Unit):
    """One gzip member, decompressed on demand with a bounded buffer."""

    def __init__(self, members: "GzipMembers", offset: int):
        self._m, self.offset = members, offset
        self.end: Optional[int] = None  # compressed end offset, once known
        self.error = None
        # the data inflated to the end of its deflate stream but the trailer's
        # CRC-32 or length did not match: every byte of the member was delivered
        self.check_failed = False
        self._deflate_start: Optional[int] = None  # set when the member is replayed as raw deflate
        self._restart()

    def _restart(self):
        if self._deflate_start is None:
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._raw_pos = self.offset  # file offset of the byte after self._in
        else:  # raw deflate after the gzip header: zlib checks no trailer
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            self._raw_pos = self._deflate_start
        self._in = b""  # compressed bytes read but not yet decompressed
        self._out = bytearray()  # decompressed bytes not yet returned
        self._pos = 0  # decompressed position of self._out[0]
        self._done = False

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._done:
            if not self._in:
                self._in = self._m.read_raw(self._raw_pos, CHUNK)
                self._raw_pos += len(self._in)
                if not self._in:
                    self._done = True
                    self.error = self.error or "file ends inside a gzip member (truncated)"
                    break
            try:
                out = self._d.decompress(self._in, max(want - len(self._out), CHUNK))
            except zlib.error as exc:
                if _TRAILER_CHECK.search(str(exc)) and self._replay_without_check(str(exc)):
                    continue  # the same bytes again, now with the trailer left to us
                self._done = True
                self.error = self.error or f"corrupt gzip member: {exc}"
                break
            self._out += out
            if self._d.eof:
                self._in = self._d.unused_data
                # raw deflate ends before the 8-byte trailer (CRC-32, length), gzip after it
                self.end = self._raw_pos - len(self._d.unused_data) + (8 if self.check_failed else 0)
                self._done = True
            else:
                self._in = self._d.unconsumed_tail

    def _replay_without_check(self, message: str) -> bool:
        """zlib raised on the trailer, discarding the output of the call that
        reached it: inflate the member again as raw deflate (which has no
        trailer check) up to where the consumer is, so the whole member is
        still delivered and its records counted.  False if the gzip header
        cannot be parsed (then the member is damaged as a whole)."""
        start = gzip_header_length(self._m.read_raw(self.offset, CHUNK))
        if start is None or self.check_failed:
            return False
        what = "CRC-32" if "data check" in message else "length"
        self.error = (f"the gzip trailer's {what} does not match the member's data (it inflated whole; "
                      f"zlib: {message})")
        self.check_failed = True
        self._deflate_start = self.offset + start
        pos, held = self._pos, bytes(self._out)
        self._restart()
        while self._pos < pos + len(held) and not self._done:  # the bytes already delivered or held
            self._fill(min(CHUNK, pos + len(held) - self._pos))
            take = min(len(self._out), pos + len(held) - self._pos)
            del self._out[:take]
            self._pos += take
        self._out[:0] = held
        self._pos = pos
        return True

    def read(self, n: int) -> bytes:
        self._fill(n)
        data = bytes(self._out[:n])
        del self._out[:n]
        self._pos += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit:
            if not self._out:
                self._fill(CHUNK)
                if not self._out:
                    break
            nl = self._out.find(b"\n", 0, limit - len(out))
            take = nl + 1 if nl >= 0 else min(len(self._out), limit - len(out))
            out += self._out[:take]
            del self._out[:take]  # O(1) from the front of a bytearray
            self._pos += take
            if nl >= 0:
                break
        return bytes(out)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        if pos < self._pos:
            keep_error = self.error
            self._restart()
            self.error = keep_error
        self.skip(pos - self._pos)

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._out[:n])

    def finish(self) -> Optional[str]:
        """Decompress to the member's end (verifying its CRC) without holding
        it; returns the member's error, if any."""
        while not self._done:
            self._pos += len(self._out)
            self._out.clear()
            self._fill(CHUNK)
        self._pos += len(self._out)
        self._out.clear()
        return self.error


@dataclass
class Garbage:
    """Bytes between members (or after the last) that do not start a gzip member."""

    offset: int
    length: int


class GzipMembers:
    """The members of a gzip file, one after another, with resynchronisation.

    ``units()`` yields ``GzipMember`` units and ``Garbage`` stretches in file
    order.  The consumer reads a member as far as it wants; the next iteration
    finishes it (decompressing to its end, which also checks its CRC).  A member
    that zlib rejects ends with ``error`` set; the next member is then searched
    from the damaged member's first byte on, so a member cut short by a
    truncation is found again at its successor.
    """

    def __init__(self, raw, size: Optional[int]):
        self.raw, self.size = raw, size
        self.members = 0
        self.damaged = 0
        self.stopped_at: Optional[int] = None  # the first unit a range's claim refused

    def record_start(self, pos: int, arc: bool = False) -> bool:
        """Whether a gzip member starts at ``pos`` and its first bytes are a WARC
        (or ARC) record header: the test for a range's first member, strict
        enough that the magic bytes inside compressed data never pass it."""
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            head = d.decompress(self.read_raw(pos, 4096), 64).lstrip(b"\r\n")
        except zlib.error:
            return False
        return bool(_ARC_START.match(head)) if arc else head.startswith(b"WARC/")

    def first_record_member(self, start: int, end: int, arc: bool = False) -> Optional[int]:
        """The first offset in [start, end) where a record's gzip member begins."""
        pos = start
        while pos < end:
            chunk = self.read_raw(pos, min(CHUNK, end - pos) + len(GZIP_MAGIC) - 1)
            i = chunk.find(GZIP_MAGIC)
            while 0 <= i and pos + i < end:
                if self.record_start(pos + i, arc):
                    return pos + i
                i = chunk.find(GZIP_MAGIC, i + 1)
            if len(chunk) < len(GZIP_MAGIC):
                return None
            pos += CHUNK
        return None

    def read_raw(self, pos: int, n: int) -> bytes:
        self.raw.seek(pos)
        return self.raw.read(n)

    def _next_header(self, start: int) -> Optional[int]:
        """The first offset >= start where a decodable gzip member begins."""
        pos = start
        while True:
            chunk = self.read_raw(pos, CHUNK + len(GZIP_MAGIC))
            if len(chunk) < len(GZIP_MAGIC):
                return None
            i = chunk.find(GZIP_MAGIC)
            while 0 <= i <= CHUNK:
                if self._decodes_at(pos + i):
                    return pos + i
                i = chunk.find(GZIP_MAGIC, i + 1)
            pos += CHUNK

    def _decodes_at(self, pos: int) -> bool:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            d.decompress(self.read_raw(pos, 4096), 1)
        except zlib.error:
            return False
        return True

    def _padding_to(self, pos: int) -> int:
        """Skip NUL/whitespace padding from pos; returns the first other offset."""
        while True:
            chunk = self.read_raw(pos, CHUNK)
            if not chunk:
                return pos
            stripped = chunk.lstrip(PADDING)
            if stripped:
                return pos + len(chunk) - len(stripped)
            pos += len(chunk)

    def units(self, start: int = 0, end: Optional[int] = None, claim=None, arc: bool = False) -> Iterator:
        """Units in file order.  A byte range [start, end) of the file: begins at
        its first record member (``first_record_member``) and ends before the
        first unit that ``claim(offset)`` refuses (offsets are claimed in
        increasing order; ``stopped_at`` is set to that unit's offset)."""
        if start > 0:
            first = self.first_record_member(start, end if end is not None else (self.size or start + CHUNK), arc)
            if first is None:
                return
            pos = first
        else:
            pos = 0
        while True:
            pos = self._padding_to(pos)
            head = self.read_raw(pos, len(GZIP_MAGIC))
            if not head:
                return
            if claim is not None and not claim(pos):
                self.stopped_at = pos
                return
            if head != GZIP_MAGIC or not self._decodes_at(pos):
                nxt = self._next_header(pos + 1)
                stop = nxt if nxt is not None else self._end_of_file(pos)
                yield Garbage(pos, stop - pos)
                if nxt is None:
                    return
                pos = nxt
                continue  # the member after the garbage is a unit of its own: claimed first
            member = GzipMember(self, pos)
            self.members += 1
            yield member
            member.finish()
            if member.error is None:
                pos = member.end
                continue
            # even after a mere trailer mismatch the next member is searched from this
            # one's first byte: damage that merged two members' bytes must not hide the second
            self.damaged += 1
            nxt = self._next_header(pos + 1)
            if nxt is None:
                return
            pos = nxt

    def _end_of_file(self, pos: int) -> int:
        if self.size is not None:
            return self.size
        while True:
            chunk = self.read_raw(pos, CHUNK)
            if not chunk:
                return pos
            pos += len(chunk)


def is_gzip(raw) -> bool:
    raw.seek(0)
    head = raw.read(2)
    raw.seek(0)
    return head == b"\x1f\x8b"


_PLAIN_STARTS = (b"WARC/", b"filedesc://", b"{", b"[")
_WARC_STARTS = (b"WARC/", b"filedesc://")  # an uncompressed WARC (or ARC) starts with its header
_JSON_STARTS = (b"{", b"[")


def gzipped(raw, path: str) -> bool:
    """Gzip by its magic bytes; a file named .gz without them is still read as
    gzip members (so a damaged first member is reported and the members after
    it are found) unless it plainly starts as an uncompressed file of the
    format its name says: a WARC header for .warc.gz/.wet.gz/.arc.gz, a JSON
    value for .jsonl.gz (a damaged first byte that happens to be "{" does not
    make a WARC file plain)."""
    if is_gzip(raw):
        return True
    low = path.lower()
    if not low.endswith(".gz"):
        return False
    starts = _WARC_STARTS if low.endswith((".warc.gz", ".wet.gz", ".arc.gz")) else \
        _JSON_STARTS if low.endswith((".jsonl.gz", ".json.gz", ".ndjson.gz")) else _PLAIN_STARTS
    raw.seek(0)
    head = raw.read(64).lstrip(b" \t\r\n")
    raw.seek(0)
    return not head.startswith(starts)
