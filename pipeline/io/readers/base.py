"""The readers' one interface, in the shape of Beam's ``FileBasedSource.read_records``
and datatrove's ``BaseDiskReader.read_file``.

A reader (one per format: ``warc_reader.WarcReader`` for WARC/WET/ARC,
``jsonl.JsonlReader``, ``parquet.ParquetReader``, ``cc_index.FetchReader``) is
built once per source with its name, its configuration (``schema.Source``)
and the ``read`` section (``schema.Read``), and is then called on an open
file and a byte range of it::

    for outcome in reader.read_records(fh, path, size, Span(start, stop, claim)):
        ...

``fh`` is a seekable binary stream of the file (undecompressed), ``path`` its
name as read, ``size`` its length in bytes.  ``Span`` says which part of the
file is this call's: a reader that can read part of a file (``splittable``:
WARC files of many gzip members) reads the units that *start* in
``[start, stop)`` and asks ``claim(offset)`` before each (a runner's restriction
tracker); others read the whole file and are given ``Span(0, None)``.

It yields every outcome of the records the span offers, in file order, each
record in exactly one of them:

* ``RawRecord``: a record ready for the next stage (JSONL, Parquet), its text
  fields valid Unicode (``RawRecord.well_formed``: no later stage sees a lone
  surrogate);
* ``Candidate``: a document record the language gate judges first (WARC, WET),
  with the WARC-Record-ID that pairs it with its ``CCMetadata`` (Common
  Crawl's metadata record, carrying CLD2's verdict);
* ``Dropped``: a policy drop (not HTML, HTTP status, too large, revisit);
* ``Failed``: a record that cannot be read, or a damaged stretch of the file
  with its offset and ``records`` = how many records it held where the
  container says (one per Parquet row, one per gzip member of a file of one
  record per member), else None;
* ``Skipped``: records that never carry a document (WARC request, metadata,
  warcinfo; blank JSONL lines);

and, last, one ``Offered``: what the container offered (gzip members, lines,
the Parquet footer's rows, an index row's range), counted from the container
itself, independently of what the record parser managed to read, so a test or
a caller can check that nothing the file holds went unaccounted.

Readers know nothing about Beam: the shared splittable DoFn
(``dofn.ReadFileDoFn``) splits files into ranges, opens them, dispatches by
format (``formats.REGISTRY``), applies the language gate and turns outcomes into
tagged outputs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from ...records import Failed, RawRecord, record_key

if TYPE_CHECKING:
    from ...schema import Fields, Read, Source

STAGE = "read"


@dataclass
class Span:
    """The part of a file one call reads: units starting in [start, stop);
    ``stop`` None = to the end; ``claim`` None = every unit is this call's."""

    start: int = 0
    stop: Optional[int] = None
    claim: Optional[Callable[[int], bool]] = None


@dataclass
class Candidate:
    """A document record the language gate has not judged yet."""

    rec: RawRecord
    record_id: Optional[str]


@dataclass
class CCMetadata:
    """Common Crawl's metadata record for the response named by ``concurrent_to``."""

    concurrent_to: str
    cld2: object


@dataclass
class Offered:
    """What the container offered: ``count`` units of kind ``unit`` ("gzip
    member", "line", "row", "range", "byte"); None where it cannot say."""

    unit: str
    count: Optional[int]


class Reader:
    """One format's reader (see the module docstring for the contract)."""

    splittable = False  # whether a call may read a part of a file (Span.claim)

    def __init__(self, name: str, source: Source, read: Read, pair_metadata: bool = False):
        """``name``: the source's name (records carry it); ``source``: its
        configuration; ``read``: the ``read`` section.  ``pair_metadata``: the
        caller's language gate is on, so a reader of Common Crawl WARC files
        yields each response's ``CCMetadata`` (and may read a little past its
        span for it); other readers ignore it."""
        self.name, self.source, self.cfg = name, source, read
        self.pair_metadata = pair_metadata

    def read_records(self, fh, path: str, size: Optional[int], span: Span) -> Iterator:
        raise NotImplementedError


# --- building outcomes --------------------------------------------------------------

def shown_path(path: str) -> str:
    """A file name as mdfs writes it (records, dead letters, messages): the
    bytes of a local name that are not UTF-8 (which ``os.fsdecode`` turns into
    lone surrogates, unwritable as Parquet or JSON text) are shown as ``\\xNN``,
    so every name is printable and stays distinct."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def file_failure(source: str, path: str, offset: int, kind: str, message: str, records: int | None = None,
                 position: str | None = None) -> Failed:
    """A dead letter for a stretch of a file (not one parsed record)."""
    path = shown_path(path)
    key = record_key(source, path, position or f"stretch@{offset}")
    return Failed(source=source, stage=STAGE, error_kind=kind, message=message[:2000], key=key,
                  id=f"{source}-{key}", file=path, offset=offset, records=records)


def raw_record(source: str, path: str, position, offset: int, **kw) -> RawRecord:
    """A record of ``path`` at ``position`` (its key) and ``offset``."""
    path = shown_path(path)
    key = record_key(source, path, position)
    return RawRecord(key=key, id=f"{source}-{key}", source=source, file=path, offset=offset, **kw)


def from_row(rec: RawRecord, row: dict, fields: Fields, columns=None):
    """A JSONL or Parquet row as a record (``RawRecord``), or ``Failed`` when the
    text field is missing or not text.  ``columns``: the file's own (Parquet
    reads only the mapped ones, so the row cannot say)."""
    try:
        text = row.get(fields.text)
        if not isinstance(text, str):
            kind = "missing_field" if text is None else "bad_field"
            what = "missing" if text is None else type(text).__name__
            has = ", ".join(sorted(map(str, row if columns is None else columns))[:20]) or "no fields"
            return Failed.of(rec, STAGE, kind, f"field {fields.text!r} is {what} "
                                               f"(the record has: {has}; see sources.NAME.fields)")
        given_id = row.get(fields.id)
        if given_id is not None and str(given_id) != "":
            rec.id = str(given_id)[:1000]
        rec.url = _str_or_none(row.get(fields.url))
        rec.date = _str_or_none(row.get(fields.date))
    except Exception as exc:  # noqa: BLE001 - e.g. a field whose str() fails or recurses
        return Failed.of(rec, STAGE, "bad_field", f"{type(exc).__name__}: {exc}")
    rec.text = text
    return rec.well_formed()


def _str_or_none(v):
    return None if v is None else str(v)
