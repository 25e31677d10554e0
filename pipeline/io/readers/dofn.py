"""The shared splittable DoFn over input files, and the DoFns of Common Crawl's index.

``ReadFileDoFn`` is the one DoFn every file source is read by.  Its element is
``(source, path, size)`` (``size`` is a ``Failed`` for a glob entry that is not
a readable file); its restriction is a byte range of the file (``FileRange``).
It splits (``split``: a WARC/WET file of many gzip members into ranges of
``read.split_bytes``; other files are one range, read whole), and hands each
range to ``Dispatch``: the Beam-free core that picks the format's reader
(``formats.REGISTRY``), reports files that cannot be read at all, and applies
the language gate (``pipeline/io/language_gate.py``) to the reader's document
candidates.  The DoFn then tags the outcomes (records main, dropped, failed,
skipped) and counts them for live progress.

A cc_index source is read by ``ReadIndexDoFn`` (index file -> selected rows)
and ``FetchIndexedDoFn`` (row -> the record, through ``cc_index.FetchReader``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from .. import language_gate as lg
from ..readback import PathEscape, confine
from ...records import DROPPED, FAILED, SKIPPED, Dropped, Failed, RawRecord, Skipped
from . import cc_index as cci
from .base import STAGE, Candidate, CCMetadata, Span, file_failure, raw_record, shown_path
from .container import is_gzip
from ...formats import detect_format, reader_class
from .match import openable

if TYPE_CHECKING:
    from ...schema import Read, Source

FIRST_MEMBER_LIMIT = 1 << 20  # a first gzip member longer than this: one stream for the whole file, not split
MIN_RANGES_PER_FILE = 8  # a file smaller than 8 x read.split_bytes is cut into 8 ranges ...
MIN_RANGE_BYTES = 256 << 10  # ... of at least 256 KiB


class _Emit:
    """Tags outcomes as outputs and counts them for live progress (Beam counters)."""

    def __init__(self, source: str):
        self.source = source
        self.read = beam.metrics.Metrics.counter("mdfs.read", source)

    def __call__(self, out):
        """The output for one outcome; None for what is not a record (``Offered``)."""
        if isinstance(out, RawRecord):
            self.read.inc()
            return out  # well formed: the readers' contract (base)
        if isinstance(out, Dropped):
            self.read.inc()
            beam.metrics.Metrics.counter("mdfs.dropped", f"{self.source}.{STAGE}.{out.reason}").inc()
            return beam.pvalue.TaggedOutput(DROPPED, out)
        if isinstance(out, Failed):
            self.read.inc()
            beam.metrics.Metrics.counter("mdfs.failed", f"{self.source}.{STAGE}.{out.error_kind}").inc()
            return beam.pvalue.TaggedOutput(FAILED, out)
        if isinstance(out, Skipped):
            return beam.pvalue.TaggedOutput(SKIPPED, out)
        return None


# --- byte ranges of a file (splittable reading) ----------------------------------------

class FileRange(OffsetRange):
    """A byte range of one input file; ``splittable`` is False for files read
    whole (uncompressed WARC, JSONL, Parquet, a gzip file of one member)."""

    def __init__(self, start: int, stop: int, splittable: bool):
        super().__init__(start, stop)
        self.splittable = splittable

    def __reduce__(self):
        return FileRange, (self.start, self.stop, self.splittable)


class FileRangeTracker(OffsetRestrictionTracker):
    """Claims are unit (gzip member) start offsets; a range of a file that is
    read whole refuses dynamic splits."""

    def try_split(self, fraction_of_remainder):
        if not self._range.splittable:
            return None
        split = super().try_split(fraction_of_remainder)
        if split is None:
            return None
        primary, residual = split
        self._range = FileRange(self._range.start, primary.stop, True)
        return FileRange(primary.start, primary.stop, True), FileRange(residual.start, residual.stop, True)


def splittable_file(path: str, size: int, fmt: str, split_bytes: int) -> bool:
    """A file of a splittable format (WARC/WET) of many gzip members, larger than one split."""
    if fmt is None or not reader_class(fmt).splittable or not size or size <= split_bytes:
        return False
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            if not is_gzip(raw):
                return False
            import zlib

            inflater, read = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
            while read < FIRST_MEMBER_LIMIT and not inflater.eof:
                chunk = raw.read(1 << 16)
                if not chunk:
                    return False
                read += len(chunk)
                while chunk and not inflater.eof:
                    inflater.decompress(chunk, 1 << 20)
                    chunk = inflater.unconsumed_tail
            return inflater.eof
    except Exception:  # noqa: BLE001 - the reader reports what is wrong with the file
        return False


# --- dispatch and the language gate (no Beam outputs) -----------------------------------

class Dispatch:
    """Reads a span of a file of a source: its format's reader, then the source's
    language gate.  Outcomes: ``RawRecord``, ``Dropped``, ``Failed``,
    ``Skipped`` (counted once per record type and span) and the reader's ``Offered``."""

    def __init__(self, sources: dict[str, Source], read: Read, lid_model: str | None = None):
        """``sources``: {name: source}; ``read``: the ``read`` section."""
        self.sources, self.cfg = sources, read
        self.gates = {n: lg.LanguageGate(s.languages, read, lid_model) for n, s in sources.items()}
        self._readers: dict = {}

    def format_of(self, name: str, path: str) -> str:
        fmt = self.sources[name].format
        return detect_format(path) if fmt == "auto" else fmt

    def reader(self, name: str, fmt: str):
        if (name, fmt) not in self._readers:
            self._readers[name, fmt] = reader_class(fmt)(name, self.sources[name], self.cfg,
                                                         pair_metadata=self.gates[name].active)
        return self._readers[name, fmt]

    def read(self, name: str, path: str, size, span: Span) -> Iterator:
        try:
            fmt = self.format_of(name, path)
        except ValueError as exc:
            yield file_failure(name, path, 0, "unknown_format", str(exc))
            return
        if size == 0:  # an input file that holds nothing is most often a failed copy: say so
            yield file_failure(name, path, 0, "empty_file", "file is empty")
            return
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # noqa: BLE001 - permissions, vanished object, ...
            yield file_failure(name, path, span.start, "unreadable_file", f"{type(exc).__name__}: {exc}",
                               position=f"open@{span.start}")
            return
        with stream:
            try:
                yield from self._gated(name, self.reader(name, fmt).read_records(stream, path, size, span))
            except Exception as exc:  # noqa: BLE001 - a reader bug or I/O error ends this range, not the job
                yield file_failure(name, path, span.start, "read_error",
                                   f"{type(exc).__name__}: {exc} (reading stopped here)",
                                   position=f"read_error@{span.start}")

    def _gated(self, name: str, outcomes) -> Iterator:
        """Pairs each candidate with the Common Crawl metadata record that follows
        it (one record held back), then lets the gate decide; other outcomes
        pass.  Skipped records are counted once per type and span."""
        held: list = []  # at most one candidate waiting for its metadata record
        skipped: dict[str, int] = {}
        gate = self.gates[name]
        try:
            for out in outcomes:
                if isinstance(out, Skipped):
                    skipped[out.record_type] = skipped.get(out.record_type, 0) + out.count
                elif isinstance(out, Candidate):
                    if held:
                        yield self._decide(name, held.pop().rec, None)
                    if gate.active and out.rec.payload is not None and out.record_id:
                        held.append(out)
                    else:
                        yield self._decide(name, out.rec, None)
                elif isinstance(out, CCMetadata):
                    if held and held[0].record_id == out.concurrent_to:
                        yield self._decide(name, held.pop().rec, out.cld2)
                else:
                    yield out
        except Exception:  # a reader error ends the span: what was read is still accounted for
            yield from self._flush(name, held, skipped)
            raise
        yield from self._flush(name, held, skipped)

    def _flush(self, name: str, held: list, skipped: dict) -> Iterator:
        if held:
            yield self._decide(name, held.pop().rec, None)
        for rtype, n in skipped.items():
            yield Skipped(name, rtype, n)
        skipped.clear()

    def _decide(self, name: str, rec: RawRecord, cld2):
        gate = self.gates[name]
        try:
            if rec.text is not None:
                decision = gate.wet_record(rec.language_hint)
            else:
                decision = gate.html_page(rec.payload, rec.charset, cld2)
        except Exception as exc:  # noqa: BLE001 - the gate only saves work: when it cannot judge, the page goes on
            decision = lg.Decision(True, "error", f"{type(exc).__name__}: {exc}")
        if gate.active:
            beam.metrics.Metrics.counter(
                "mdfs.language_gate", f"{name}.{decision.evidence}.{'passed' if decision.keep else 'dropped'}").inc()
        if decision.keep:
            return rec
        return Dropped.of(rec, STAGE, "language_prefilter", decision.detail)


# --- the DoFn ----------------------------------------------------------------------------

class ReadFileDoFn(beam.DoFn, RestrictionProvider):
    """(source, path, size) -> the file's records, by byte range.

    A WARC/WET file of many gzip members (Common Crawl writes one record per
    member) is split into ranges of ``read.split_bytes``; each range reads the
    members that *start* in it, so no record is read twice or lost at a
    boundary, and runners that split dynamically (Dataflow) may split further.
    Other files are one range, read whole by the range that starts at 0.
    """

    def __init__(self, sources: dict[str, Source], read: Read, lid_model: str | None = None):
        """``sources``: {name: source}; ``read``: the ``read`` section."""
        self.sources, self.cfg, self.lid_model = dict(sources), read, lid_model

    def setup(self):
        self._emits = {n: _Emit(n) for n in self.sources}
        self._dispatch = Dispatch(self.sources, self.cfg, self.lid_model)

    # --- the restriction: a byte range (RestrictionProvider) ------------------------
    def initial_restriction(self, file):
        size = file[2]
        return FileRange(0, max(size if isinstance(size, int) else 0, 1), False)

    def split(self, file, restriction):
        name, path, size = file[0], openable(file[1]), file[2]
        if restriction.start != 0 or not isinstance(size, int):  # a dead letter, or a range already split
            yield restriction
            return
        fmt = self.sources[name].format
        try:
            fmt = detect_format(path) if fmt == "auto" else fmt
        except ValueError:
            fmt = None
        # smaller files are still cut into several ranges, so that a few files spread over many workers
        split_bytes = min(self.cfg.split_bytes, max(size // MIN_RANGES_PER_FILE, MIN_RANGE_BYTES))
        if not splittable_file(path, size, fmt, split_bytes):
            yield restriction
            return
        for part in restriction.split(split_bytes, split_bytes // 4):
            yield FileRange(part.start, part.stop, True)

    def create_tracker(self, restriction):
        return FileRangeTracker(restriction)

    def restriction_size(self, file, restriction):
        return restriction.size()

    # --- reading --------------------------------------------------------------------
    def process(self, file, tracker=beam.DoFn.RestrictionParam()):
        name, path, size = file[0], openable(file[1]), file[2]
        emit = self._emits[name]
        if isinstance(size, Failed):  # the glob matched something that is not a readable file
            if tracker.try_claim(0):
                yield emit(size)
            return
        rng = tracker.current_restriction()
        try:
            if rng.splittable:
                span = Span(rng.start, rng.stop, tracker.try_claim)
            elif rng.start > 0 or not tracker.try_claim(0):
                # a file read whole is read by the range that starts at 0
                return
            else:
                span = Span(0, None)
            for out in self._dispatch.read(name, path, size, span):
                tagged = emit(out)
                if tagged is not None:
                    yield tagged
        finally:  # the rest of the range holds nothing of ours
            try:
                tracker.try_claim(tracker.current_restriction().stop)
            except ValueError:  # a claim at or past the end was already refused
                pass


# --- Common Crawl's columnar index (cc_index.py) ----------------------------------------

class ReadIndexDoFn(beam.DoFn):
    """One index Parquet file, given as (source, path, size) -> the selected rows
    (``IndexRow``), skipped counts per reason, dead letters for unreadable parts."""

    def __init__(self, name: str, source: Source):
        self.name, self.source = name, source

    def setup(self):
        self._emit = _Emit(self.name)
        self._selection = cci.Selection.of(self.source)

    def process(self, file):
        import pyarrow.parquet as pq

        path, size = openable(file[1]), file[2]
        name = self.name
        if isinstance(size, Failed):  # the glob matched something that is not a readable file
            yield self._emit(size)
            return
        not_selected: dict[str, int] = {}  # per reason, reported once per file
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
                pf = pq.ParquetFile(raw)
                for event in cci.iter_index(pf, self._selection):
                    if event[0] == cci.SELECTED:
                        _, row, url, fname, offset, length = event
                        yield cci.IndexRow(name, shown_path(path), row, url, fname, offset, length)
                    elif event[0] == cci.NOT_SELECTED:
                        not_selected[event[1]] = not_selected.get(event[1], 0) + event[2]
                    else:  # a file or row group that is not a readable index: its rows, as one dead letter
                        yield self._emit(file_failure(name, path, 0, "bad_index", event[2], records=event[1],
                                                      position=f"bad_index@{event[2][:40]}"))
        except Exception as exc:  # noqa: BLE001 - no footer, vanished file: the row count is unknown
            yield self._emit(file_failure(name, path, 0, "unreadable_container",
                                          f"index Parquet unreadable: {type(exc).__name__}: {exc}"))
        for reason, count in sorted(not_selected.items()):
            yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, f"index:{reason}", count))


class _CachedFile:
    """A WARC file of the fetch DoFn's cache, opened at its first use."""

    def __init__(self, dofn: "FetchIndexedDoFn", path: str):
        self._dofn, self._path, self._fh = dofn, path, None

    def seek(self, pos: int):
        self._fh = self._fh or self._dofn._handle(self._path)
        return self._fh.seek(pos)

    def read(self, n: int) -> bytes:
        self._fh = self._fh or self._dofn._handle(self._path)
        return self._fh.read(n)


class FetchIndexedDoFn(beam.DoFn):
    """A selected index row -> its WARC record, read by byte range from
    ``warc_root``/``warc_filename`` by ``cc_index.FetchReader`` (which
    classifies it like any WARC record)."""

    MAX_OPEN = 8  # WARC files kept open per worker (rows of one file tend to arrive together)

    def __init__(self, name: str, source: Source, read: Read):
        self.name, self.source, self.cfg = name, source, read

    def setup(self):
        self._open: dict = {}
        self._emit = _Emit(self.name)
        self._reader = cci.FetchReader(self.name, self.source, self.cfg)

    def finish_bundle(self):
        self._close_all()

    def teardown(self):
        self._close_all()

    def _close_all(self):
        for fh in self._open.values():
            try:
                fh.close()
            except Exception:  # noqa: BLE001 - best effort
                pass
        self._open.clear()

    def _handle(self, path: str):
        fh = self._open.pop(path, None)
        if fh is None:
            if len(self._open) >= self.MAX_OPEN:
                oldest = next(iter(self._open))
                self._open.pop(oldest).close()
            fh = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._open[path] = fh  # most recently used last
        return fh

    def process(self, row: "cci.IndexRow"):
        name = self.name
        where = f"{row.index_file} row {row.row}"
        try:  # the index is data: no value in it may choose a file outside warc_root
            path = confine(self.source.warc_root, row.warc_filename)
        except PathEscape as exc:
            rec = raw_record(name, str(row.warc_filename), row.offset, row.offset, url=row.url)
            yield self._emit(Failed.of(rec, STAGE, "path_outside_root", f"warc_filename {exc} ({where})"))
            return
        span = cci.IndexedSpan(row.offset, row.offset + row.length, url=row.url, where=where)
        for out in self._reader.read_records(_CachedFile(self, path), path, None, span):
            if isinstance(out, Failed) and out.error_kind in ("missing_warc_file", "unreadable_file"):
                self._open.pop(path, None)  # a handle that failed is not kept
            tagged = self._emit(out)
            if tagged is not None:
                yield tagged
