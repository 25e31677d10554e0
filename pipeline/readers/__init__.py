"""Readers: one streaming Beam source per input format.

``ReadSource`` expands a source's globs (any Beam filesystem: local, GCS, S3,
HDFS), removes files matched more than once, and parses each file in a DoFn
that streams records, so memory per worker is bounded by one record, never
one file.  The formats live in their own modules: ``warc`` (WARC, WET, ARC),
``jsonl`` and ``parquet``, all on top of ``container`` (plain files and gzip
members).

Every record a file offers ends in exactly one output: a ``RawRecord`` (main),
a ``Dropped`` (a policy: not HTML, HTTP status, too large, revisit), a
``Failed`` (unreadable bytes, with file and offset) or, for WARC records that
never carry a document, a ``Skipped``.  What a file offers is counted from its
container (gzip members, lines, the Parquet footer's row counts), not from
what the record parser managed to read: a damaged stretch is one dead letter
per record where the container says how many it held, else one dead letter
with ``records: null``; reading resumes after it.
"""
from __future__ import annotations

import glob as globlib
import os
import warnings
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ..records import DROPPED, FAILED, SKIPPED, Dropped, Failed, RawRecord, Skipped, record_key
from . import jsonl as jl
from . import parquet as pq_reader
from . import warc as wr
from .container import Garbage, GzipMembers, PlainUnit, is_gzip

STAGE = "read"

FORMAT_SUFFIXES = [  # longest first
    (".warc.wet.gz", "wet"), (".wet.gz", "wet"), (".wet", "wet"),
    (".warc.gz", "warc"), (".warc", "warc"), (".arc.gz", "warc"), (".arc", "warc"),
    (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
    (".parquet", "parquet"),
]
GLOB_CHARS = "*?["


def detect_format(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMAT_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"cannot tell the format of {path!r} from its name; set the source's format in config")


# --- matching ------------------------------------------------------------------

def _escape_glob(path: str) -> str:
    return "".join(f"[{c}]" if c in GLOB_CHARS else c for c in path)


def expand_pattern(pattern: str) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(readable files as (path, size), unreadable entries as (path, why)).

    A pattern that names an existing file exactly is taken literally, even if
    it holds glob characters (``page[1].jsonl``).  On the local filesystem,
    entries the glob matches that are not readable regular files (directories,
    dangling links, link loops, no permission) are reported instead of being
    skipped in silence."""
    query = pattern
    if any(c in pattern for c in GLOB_CHARS) and _exists(pattern):
        query = _escape_glob(pattern)
    files = []
    with warnings.catch_warnings():  # Beam's glob translation warns about the escapes ("[[]") it supports
        warnings.simplefilter("ignore", FutureWarning)
        matches = FileSystems.match([query])
    for res in matches:
        files.extend((m.path, m.size_in_bytes) for m in res.metadata_list)
    unreadable = []
    if "://" not in pattern:
        found = {p for p, _ in files}
        literal = globlib.escape(pattern) if query != pattern else pattern
        for entry in globlib.glob(literal, recursive=True):
            full = os.path.abspath(entry)
            if entry in found or full in found:
                continue
            unreadable.append((full, _why_unreadable(full)))
        for path, _ in files:
            if not os.access(path, os.R_OK):
                unreadable.append((path, "no read permission"))
        files = [(p, s) for p, s in files if os.access(p, os.R_OK)]
    return files, unreadable


def _why_unreadable(path: str) -> str:
    if os.path.isdir(path):
        return "is a directory"
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:
            return f"broken or looping link ({exc.strerror})"
    if not os.access(path, os.R_OK):
        return "no read permission"
    return "not a regular file"


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001
        return False


def matched_files(patterns) -> list[str]:
    """The readable files the patterns match now, each once (for the CLI's preflight)."""
    return sorted({p for pat in patterns for p, _ in expand_pattern(pat)[0]})


class _MatchPatternDoFn(beam.DoFn):
    """pattern -> (path, size) of each readable file, and failed rows for the rest."""

    def __init__(self, source: str):
        self.source = source

    def process(self, pattern: str):
        files, unreadable = expand_pattern(pattern)
        for path, size in files:
            yield path, size
        for path, why in unreadable:
            yield beam.pvalue.TaggedOutput(FAILED, file_failure(self.source, path, 0, "unreadable_file",
                                                                f"{path}: {why}"))


# --- outputs --------------------------------------------------------------------

class _Emit:
    """Tags outputs and counts them for live progress (Beam counters)."""

    def __init__(self, source: str):
        self.source = source
        self.read = beam.metrics.Metrics.counter("mdfs.read", source)

    def record(self, rec):
        self.read.inc()
        return rec

    def dropped(self, d: Dropped):
        self.read.inc()
        beam.metrics.Metrics.counter("mdfs.dropped", f"{self.source}.{STAGE}.{d.reason}").inc()
        return beam.pvalue.TaggedOutput(DROPPED, d)

    def failed(self, f: Failed):
        self.read.inc()
        beam.metrics.Metrics.counter("mdfs.failed", f"{self.source}.{STAGE}.{f.error_kind}").inc()
        return beam.pvalue.TaggedOutput(FAILED, f)


def file_failure(source: str, path: str, offset: int, kind: str, message: str, records: int | None = None,
                 position: str | None = None) -> Failed:
    """A dead letter for a stretch of a file (not one parsed record)."""
    key = record_key(source, path, position or f"stretch@{offset}")
    return Failed(source=source, stage=STAGE, error_kind=kind, message=message[:2000], key=key,
                  id=f"{source}-{key}", file=path, offset=offset, records=records)


def _raw(source: str, path: str, position, offset: int, **kw) -> RawRecord:
    key = record_key(source, path, position)
    return RawRecord(key=key, id=f"{source}-{key}", source=source, file=path, offset=offset, **kw)


# --- the DoFn --------------------------------------------------------------------

class ReadFileDoFn(beam.DoFn):
    """Parses one input file, given as (path, size), into records."""

    def __init__(self, source: dict, read_cfg: dict):
        self.source = source
        self.cfg = read_cfg

    def setup(self):
        self._emit = _Emit(self.source["name"])

    def process(self, file):
        path, size = file
        name = self.source["name"]
        fmt = self.source.get("format") or "auto"
        try:
            fmt = detect_format(path) if fmt == "auto" else fmt
        except ValueError as exc:
            yield self._emit.failed(file_failure(name, path, 0, "unknown_format", str(exc)))
            return
        if size == 0:  # an input file that holds nothing is most often a failed copy: say so
            yield self._emit.failed(file_failure(name, path, 0, "empty_file", "file is empty"))
            return
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # noqa: BLE001 - permissions, vanished object, ...
            yield self._emit.failed(file_failure(name, path, 0, "unreadable_file", f"{type(exc).__name__}: {exc}"))
            return
        reader = {"warc": self._warc, "wet": self._warc, "jsonl": self._jsonl, "parquet": self._parquet}[fmt]
        with stream:
            try:
                yield from reader(stream, path, size)
            except Exception as exc:  # noqa: BLE001 - a reader bug or I/O error ends this file, not the job
                yield self._emit.failed(file_failure(name, path, 0, "read_error",
                                                     f"{type(exc).__name__}: {exc} (reading stopped here)",
                                                     position="read_error"))

    # --- WARC / WET / ARC -------------------------------------------------------
    def _warc(self, raw, path: str, size) -> Iterator:
        name = self.source["name"]
        limits = wr.ParserLimits(int(self.cfg["max_header_bytes"]), int(self.cfg["max_payload_bytes"]),
                                 arc=path.lower().endswith((".arc", ".arc.gz")))
        gz = _gzipped(raw, path)
        units = GzipMembers(raw, size).units() if gz else [PlainUnit(raw, size)]
        intact = one_item = 0  # intact members read, those of them that held exactly one item
        seen = 0
        for unit in units:
            seen += 1
            if isinstance(unit, Garbage):
                yield self._emit.failed(file_failure(name, path, unit.offset, "unreadable_container",
                                                     f"{unit.length} bytes at {unit.offset} are not a gzip member"))
                continue
            items, held = 0, None
            for item in wr.iter_unit(unit, limits):
                if held is not None:
                    yield from self._warc_outcome(held, unit, gz, path, None, None)
                held, items = item, items + 1
            err = unit.finish()
            if held is not None:
                # a stretch that is a whole member of a file of one record per member is one record
                whole = gz and items == 1 and held.offset == 0 and (not intact or one_item == intact)
                # a record is trusted only when its gzip member ends cleanly (CRC checked)
                yield from self._warc_outcome(held, unit, gz, path, err, 1 if whole else None)
            elif err:
                known = 1 if intact and one_item == intact else None
                yield self._emit.failed(file_failure(name, path, unit.offset, "unreadable_container",
                                                     f"gzip member at byte {unit.offset}: {err}", records=known))
            if not err:
                intact += 1
                one_item += items == 1
        if not seen:  # only NUL or whitespace padding: a file that holds nothing is a failed copy
            yield self._emit.failed(file_failure(name, path, 0, "empty_file", f"{size} bytes of padding only"))

    def _warc_outcome(self, item, unit, gz: bool, path: str, member_error, stretch_records) -> Iterator:
        name = self.source["name"]
        offset = unit.offset + item.offset if not gz else unit.offset
        position = offset if (not gz or item.offset == 0) else f"{unit.offset}+{item.offset}"
        if isinstance(item, wr.Stretch):
            n = f"{item.length} bytes" if item.length is not None else "the rest of the input"
            where = f"gzip member at byte {unit.offset}, +{item.offset}" if gz else f"byte {offset}"
            yield self._emit.failed(file_failure(name, path, offset, "unreadable_container",
                                                 f"{n} from {where} do not form a record: {item.message}",
                                                 records=stretch_records,
                                                 position=position))
            return
        url = item.headers.get("warc-target-uri")
        if member_error and isinstance(item, wr.Framed):
            item = wr.Broken(item.offset, item.headers, f"its gzip member is damaged: {member_error}",
                             "corrupt_container")
        if isinstance(item, wr.Broken):
            rec = _raw(name, path, position, offset, url=url)
            yield self._emit.failed(Failed.of(rec, STAGE, item.kind, item.message))
            return
        try:
            verdict = wr.classify(item, name, path, self.cfg)
        except Exception as exc:  # noqa: BLE001 - one bad record must not end the file
            verdict = wr.Verdict("malformed", detail=f"{type(exc).__name__}: {exc}")
        if verdict.kind == SKIPPED:
            yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, verdict.record_type))
            return
        rec = verdict.record or RawRecord(key="", id="", source=name, file=path, offset=0, url=url)
        fresh = _raw(name, path, position, offset)
        rec.key, rec.id, rec.offset = fresh.key, fresh.id, offset
        if verdict.kind == "ok":
            yield self._emit.record(rec)
        elif verdict.kind == DROPPED:
            yield self._emit.dropped(Dropped.of(rec, STAGE, verdict.reason, verdict.detail))
        elif verdict.kind == "failed":
            yield self._emit.failed(Failed.of(rec, STAGE, verdict.reason, verdict.detail or verdict.reason))
        else:
            yield self._emit.failed(Failed.of(rec, STAGE, "malformed_record", verdict.detail or "malformed"))

    # --- JSONL -------------------------------------------------------------------
    def _jsonl(self, raw, path: str, size) -> Iterator:
        name = self.source["name"]
        max_bytes = int(self.cfg["max_payload_bytes"])
        for event in jl.iter_lines(raw, size, max_bytes, _gzipped(raw, path)):
            kind = event[0]
            if kind == jl.STRETCH:  # offset: the line index where the damage begins
                yield self._emit.failed(file_failure(name, path, event[1], "unreadable_container", event[2],
                                                     position=f"stretch@line{event[1]}@byte{event[3]}"))
            elif kind == jl.BLANK:
                yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, "blank_line"))
            elif kind == jl.TOO_LARGE:
                rec = _raw(name, path, event[1], event[1])
                yield self._emit.dropped(Dropped.of(rec, STAGE, "too_large", f"{event[2]}>{max_bytes} bytes"))
            else:
                rec = _raw(name, path, event[1], event[1])
                try:
                    row = jl.parse_line(event[2])
                except jl.LineError as exc:
                    yield self._emit.failed(Failed.of(rec, STAGE, exc.kind, exc.message))
                    continue
                yield self._from_row(rec, row)

    def _from_row(self, rec: RawRecord, row: dict):
        fields = self.source["fields"]
        try:
            text = row.get(fields["text"])
            if not isinstance(text, str):
                kind = "missing_field" if text is None else "bad_field"
                what = "missing" if text is None else type(text).__name__
                has = ", ".join(sorted(map(str, row))[:20])
                return self._emit.failed(Failed.of(rec, STAGE, kind, f"field {fields['text']!r} is {what} "
                                                   f"(the record has: {has}; see sources.NAME.fields)"))
            given_id = row.get(fields["id"])
            if given_id is not None and str(given_id) != "":
                rec.id = str(given_id)[:1000]
            rec.url = _str_or_none(row.get(fields["url"]))
            rec.date = _str_or_none(row.get(fields["date"]))
        except Exception as exc:  # noqa: BLE001 - e.g. a field whose str() fails or recurses
            return self._emit.failed(Failed.of(rec, STAGE, "bad_field", f"{type(exc).__name__}: {exc}"))
        rec.text = text
        return self._emit.record(rec)

    # --- Parquet -------------------------------------------------------------------
    def _parquet(self, raw, path: str, size) -> Iterator:
        import pyarrow.parquet as pq

        name = self.source["name"]
        max_bytes = int(self.cfg["max_payload_bytes"])
        try:
            pf = pq.ParquetFile(raw)
        except Exception as exc:  # noqa: BLE001 - no footer: the row count is unknown
            yield self._emit.failed(file_failure(name, path, 0, "unreadable_container",
                                                 f"Parquet footer unreadable: {type(exc).__name__}: {exc}"))
            return
        for event in pq_reader.iter_rows(pf, self.source["fields"], max_bytes):
            kind, index = event[0], event[1]
            if kind == pq_reader.GROUP_FAILED:
                for i in range(index, index + event[2]):  # the footer says how many rows: one dead letter each
                    yield self._emit.failed(Failed.of(_raw(name, path, i, i), STAGE, "unreadable_row_group",
                                                      event[3]))
                continue
            rec = _raw(name, path, index, index)
            if kind == pq_reader.ROW_TOO_LARGE:
                yield self._emit.dropped(Dropped.of(rec, STAGE, "too_large", f"{event[2]}>{max_bytes} bytes"))
            elif kind == pq_reader.ROW_FAILED:
                yield self._emit.failed(Failed.of(rec, STAGE, "bad_field", event[2]))
            else:
                yield self._from_row(rec, event[2])


_PLAIN_STARTS = (b"WARC/", b"{", b"[")


def _gzipped(raw, path: str) -> bool:
    """Gzip by its magic bytes; a file named .gz without them is still read as
    gzip members (so a damaged first member is reported and the members after
    it are found) unless it plainly starts as an uncompressed WARC or JSONL."""
    if is_gzip(raw):
        return True
    if not path.lower().endswith(".gz"):
        return False
    raw.seek(0)
    head = raw.read(64).lstrip(b" \t\r\n")
    raw.seek(0)
    return not head.startswith(_PLAIN_STARTS)


def _str_or_none(v):
    return None if v is None else str(v)


class ReadSource(beam.PTransform):
    """All files of one configured source -> (records, dropped, failed, skipped)."""

    def __init__(self, source: dict, read_cfg: dict):
        super().__init__()
        self.source = source
        self.read_cfg = read_cfg

    def expand(self, pbegin):
        name = self.source["name"]
        matched = (pbegin | "Patterns" >> beam.Create(list(self.source["paths"]))
                   | "Match" >> beam.ParDo(_MatchPatternDoFn(name)).with_outputs(FAILED, main="files"))
        files = (matched.files
                 # overlapping globs or a repeated --source match a file more than once: read it once
                 | "OncePerFile" >> beam.CombinePerKey(_first_size)
                 # one file is one unit of reading work; spread the files over workers
                 | "SpreadFiles" >> beam.Reshuffle())
        out = files | "Parse" >> beam.ParDo(ReadFileDoFn(self.source, self.read_cfg)).with_outputs(
            DROPPED, FAILED, SKIPPED, main="records")
        failed = (out[FAILED], matched[FAILED]) | "ReadFailed" >> beam.Flatten()
        return out.records, out[DROPPED], failed, out[SKIPPED]


def _first_size(sizes):
    sizes = list(sizes)
    return sizes[0] if sizes else None
