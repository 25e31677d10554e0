"""Index-driven reading: Common Crawl's columnar URL index selects the
records, and only their byte ranges of the WARC files are read.

Common Crawl publishes, per crawl, a Parquet table with one row per capture
(``cc-index/table/cc-main/warc/crawl=CC-MAIN-.../subset=warc/*.parquet``).
The columns used here are Common Crawl's own names: ``url``,
``fetch_status``, ``content_mime_detected``, ``content_languages``
(comma-separated ISO 639-3 codes from CLD2, best first), ``warc_filename``,
``warc_record_offset`` and ``warc_record_length``; ``subset`` (only ``warc``
rows are captures) and ``url_host_name`` are used when present.

Selection (per row, vectorised over Arrow batches, one batch in memory):
``subset`` = warc, ``fetch_status`` in the source's ``status``,
``content_mime_detected`` in ``mime``, any of ``content_languages`` kept by
the source's ``languages`` (a row without languages is selected: no verdict
is not evidence against), host matching one of ``hosts``.  Rows not selected
are counted per reason in the funnel's skipped records (``index:<reason>``);
they are not records of this job.  Each selected row is fetched: its range
must be exactly one gzip member holding one WARC record of the row's URL,
else the row is a dead letter (``missing_warc_file``, ``bad_index_range``,
``index_mismatch``).  The index is data: a ``warc_filename`` that would leave
``warc_root`` (``..``, absolute, a URL scheme, percent-encoded separators, a
link resolving outside a local root) is a dead letter, ``path_outside_root``,
and the file is never opened (``readback.confine``).  A fetched record is then classified like any WARC
record, so every selected row ends as kept, dropped or failed.

``FetchReader`` is the reader of one selected row's range (the interface:
``base``; its span is an ``IndexedSpan``, which also carries the URL the index
lists); ``iter_index`` reads the index itself.
"""
from __future__ import annotations

import fnmatch
import io
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from ...fs import exists
from ..language_gate import wanted_iso3
from ...records import Dropped, Failed, Skipped
from . import warc as wr
from .base import STAGE, Candidate, Offered, Reader, Span, raw_record
from .container import PlainUnit
from .warc_reader import WarcReader

if TYPE_CHECKING:
    from ...schema import Read, Source

REQUIRED = ("url", "fetch_status", "content_mime_detected", "content_languages", "warc_filename",
            "warc_record_offset", "warc_record_length")
OPTIONAL = ("subset", "url_host_name")
DEFAULT_MIME = ["text/html", "application/xhtml+xml"]
DEFAULT_STATUS = [200]
BATCH_ROWS = 8192

SELECTED, NOT_SELECTED, BAD_FILE = "selected", "not_selected", "bad_file"


@dataclass
class IndexRow:
    """One selected index row: what to fetch and where it was listed."""

    source: str
    index_file: str
    row: int
    url: str
    warc_filename: str
    offset: int
    length: int


@dataclass(frozen=True)
class Selection:
    languages: frozenset  # ISO 639-3; empty: every language
    mime: tuple
    status: tuple
    hosts: tuple  # fnmatch patterns; empty: every host

    @classmethod
    def of(cls, source: Source) -> "Selection":
        return cls(wanted_iso3(source.languages),
                   tuple(m.lower() for m in (source.mime or DEFAULT_MIME)),
                   tuple(source.status or DEFAULT_STATUS),
                   tuple(h.lower() for h in (source.hosts or [])))


def _host(url: Optional[str]) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def select_batch(batch: pa.RecordBatch, sel: Selection) -> tuple[pa.Array, dict]:
    """(mask of selected rows, {reason: rows not selected for it}); a row is
    charged to the first criterion it fails, in the order of the checks."""
    n = batch.num_rows
    remaining = pa.array([True] * n)
    not_selected: dict[str, int] = {}

    def apply(reason: str, ok: pa.Array):
        nonlocal remaining
        ok = pc.fill_null(ok, False)
        failed = pc.and_(remaining, pc.invert(ok))
        count = pc.sum(failed).as_py() or 0
        if count:
            not_selected[reason] = not_selected.get(reason, 0) + count
        remaining = pc.and_(remaining, ok)

    names = batch.schema.names
    if "subset" in names:
        apply("subset", pc.equal(batch.column("subset"), "warc"))
    apply("status", pc.is_in(pc.cast(batch.column("fetch_status"), pa.int64()),
                             value_set=pa.array(sel.status, pa.int64())))
    mime = pc.utf8_lower(pc.cast(batch.column("content_mime_detected"), pa.string()))
    apply("mime", pc.is_in(mime, value_set=pa.array(sel.mime, pa.string())))
    if sel.languages:
        langs = pc.cast(batch.column("content_languages"), pa.string())
        pattern = "(^|,)(" + "|".join(re.escape(c) for c in sorted(sel.languages)) + ")(,|$)"
        listed = pc.match_substring_regex(pc.utf8_lower(langs), pattern)
        # a row without languages is selected: no verdict is no evidence against
        unknown = pc.or_(pc.is_null(langs), pc.fill_null(pc.equal(pc.utf8_trim_whitespace(langs), ""), True))
        apply("language", pc.or_(pc.fill_null(listed, False), unknown))
    if sel.hosts:
        if "url_host_name" in names:
            hosts = [h or "" for h in batch.column("url_host_name").to_pylist()]
        else:
            hosts = [_host(u) for u in batch.column("url").to_pylist()]
        apply("host", pa.array([any(fnmatch.fnmatchcase(h.lower(), p) for p in sel.hosts) for h in hosts]))
    for col in ("warc_filename", "warc_record_offset", "warc_record_length", "url"):
        apply("incomplete_row", pc.is_valid(batch.column(col)))
    return remaining, not_selected


def iter_index(pf, sel: Selection) -> Iterator[tuple]:
    """(SELECTED, row_index, url, warc_filename, offset, length) |
    (NOT_SELECTED, reason, count) | (BAD_FILE, rows, message)."""
    names = set(pf.schema_arrow.names)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        yield BAD_FILE, pf.metadata.num_rows, f"not a Common Crawl columnar index: no column {', '.join(missing)}"
        return
    columns = list(REQUIRED) + [c for c in OPTIONAL if c in names]
    base = 0
    for group in range(pf.num_row_groups):
        rows_in_group = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=columns):
                # a batch's events are all built before any is given out: a batch that fails half-way
                # is counted once, with the rest of its row group (never its first rows twice)
                events = _batch_events(batch, sel, base + done)
                yield from events
                done += batch.num_rows
        except Exception as exc:  # noqa: BLE001 - a damaged row group: its remaining rows are one dead letter
            left = rows_in_group - done
            if left > 0:
                yield BAD_FILE, left, f"row group {group} unreadable after {done} rows: {type(exc).__name__}: {exc}"
        else:
            if done < rows_in_group:  # fewer rows decoded than the footer says: the rest, once
                yield BAD_FILE, rows_in_group - done, f"row group {group} holds {done} rows, its footer says " \
                                                      f"{rows_in_group}"
        base += rows_in_group


def _batch_events(batch: pa.RecordBatch, sel: Selection, first_row: int) -> list:
    mask, not_selected = select_batch(batch, sel)
    events = [(NOT_SELECTED, reason, count) for reason, count in not_selected.items()]
    picked = batch.filter(mask)
    positions = pc.indices_nonzero(mask).to_pylist()
    cols = [picked.column(c).to_pylist() for c in ("url", "warc_filename", "warc_record_offset", "warc_record_length")]
    events += [(SELECTED, first_row + pos, url, fname, int(off), int(length))
               for pos, url, fname, off, length in zip(positions, *cols)]
    return events


# --- fetching one range ------------------------------------------------------------

class RangeError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


class TooLarge(Exception):
    pass


def frame_range(data: bytes, limits: wr.ParserLimits, max_inflated: int) -> wr.Framed:
    """The one WARC record a byte range holds: the range must be exactly one
    gzip member (or one uncompressed record) whose content frames cleanly."""
    if data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        try:
            content = inflater.decompress(data, max_inflated + 1)
        except zlib.error as exc:
            raise RangeError("bad_index_range", f"the range is not a gzip member: {exc}") from None
        if len(content) > max_inflated:
            raise TooLarge(f"record inflates past {max_inflated} bytes")
        if not inflater.eof:
            raise RangeError("bad_index_range", "the range ends inside its gzip member (length too short)")
        if inflater.unused_data:
            raise RangeError("bad_index_range", f"{len(inflater.unused_data)} bytes after the gzip member "
                             "(length too long, or several members)")
    elif data[:5] == b"WARC/":
        content = data
    else:
        raise RangeError("bad_index_range", f"the range does not start a gzip member or a WARC record: {data[:8]!r}")
    items = list(wr.iter_unit(PlainUnit(io.BytesIO(content), len(content)), limits))
    framed = [i for i in items if isinstance(i, wr.Framed)]
    if len(items) != 1 or len(framed) != 1:
        what = ", ".join(type(i).__name__ + (f" ({i.message})" if hasattr(i, "message") else "") for i in items)
        raise RangeError("bad_index_range", f"the range holds {what or 'nothing'}, not one WARC record")
    return framed[0]


@dataclass
class IndexedSpan(Span):
    """The byte range one index row names, with the URL it lists and where it
    was listed (for messages)."""

    url: Optional[str] = None
    where: str = ""


class FetchReader(Reader):
    """One index row's range of a WARC file -> its record's outcome: exactly one
    of record, drop or dead letter; what it offered: one range."""

    def __init__(self, name: str, source: Source, read: Read, pair_metadata: bool = False):
        super().__init__(name, source, read)
        self.warc = WarcReader(name, source, read)  # no pairing: the index's own CLD2 languages selected the row
        self.limits = self.warc.limits()
        # a record whose header blocks and payload stay within the caps never inflates past this
        self.max_inflated = read.max_payload_bytes + 4 * read.max_header_bytes

    def read_records(self, fh, path: str, size, span: IndexedSpan) -> Iterator:
        yield from self._outcomes(fh, path, span)
        yield Offered("range", 1)

    def _outcomes(self, fh, path: str, span: IndexedSpan) -> Iterator:
        offset, length, where = span.start, span.stop - span.start, span.where
        rec = raw_record(self.name, path, offset, offset, url=span.url)
        if length <= 0 or offset < 0:
            yield Failed.of(rec, STAGE, "bad_index_range", f"offset {offset}, length {length} ({where})")
            return
        if length > self.max_inflated:
            yield Dropped.of(rec, STAGE, "too_large", f"{length} bytes in the WARC file")
            return
        try:
            fh.seek(offset)
            data = fh.read(length)
        except Exception as exc:  # noqa: BLE001 - missing object, no permission, I/O error
            missing = isinstance(exc, (FileNotFoundError, IOError)) and not exists(path)
            yield Failed.of(rec, STAGE, "missing_warc_file" if missing else "unreadable_file",
                            f"{path}: {type(exc).__name__}: {exc} ({where})")
            return
        if len(data) < length:
            yield Failed.of(rec, STAGE, "bad_index_range",
                            f"{path} ends {length - len(data)} bytes before the range does ({where})")
            return
        try:
            framed = frame_range(data, self.limits, self.max_inflated)
        except TooLarge as exc:
            yield Dropped.of(rec, STAGE, "too_large", str(exc))
            return
        except RangeError as exc:
            yield Failed.of(rec, STAGE, exc.kind, f"{exc.message} ({where}: {path} @{offset}+{length})")
            return
        got = framed.headers.get("warc-target-uri")
        if got != span.url:
            yield Failed.of(rec, STAGE, "index_mismatch", f"the index lists {span.url!r}, the record is {got!r} "
                                                          f"({where})")
            return
        for out in self.warc.classified(framed, path, offset, offset):
            if isinstance(out, Candidate):  # selected by the index's own CLD2 languages: no gate
                yield out.rec
            elif isinstance(out, Skipped):
                # a row that points at a request or metadata record is a wrong index row, not a skip
                yield Failed.of(rec, STAGE, "index_mismatch", f"the range holds a {out.record_type} record ({where})")
            else:
                yield out
