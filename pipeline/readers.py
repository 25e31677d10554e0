"""Readers: one streaming Beam source per input format.

``ReadSource`` expands a source's globs with ``fileio.MatchFiles`` (any Beam
filesystem: local, GCS, S3, HDFS) and parses each file in a DoFn that streams
records, so memory per worker is bounded by one record, never one file.

Every record a file offers ends in exactly one output: a ``RawRecord`` (main),
a ``Dropped`` (a policy: not HTML, HTTP status, too large, revisit), a
``Failed`` (unreadable bytes, with file and offset) or, for WARC records that
never carry a document, a ``Skipped``.  A damaged file yields the records
before the damage and one ``Failed`` for the unreadable stretch.
"""
from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from . import payload as pl
from .records import DROPPED, FAILED, SKIPPED, Dropped, Failed, RawRecord, Skipped, record_key

STAGE = "read"

FORMAT_SUFFIXES = [  # longest first
    (".warc.wet.gz", "wet"), (".wet.gz", "wet"), (".wet", "wet"),
    (".warc.gz", "warc"), (".warc", "warc"), (".arc.gz", "warc"), (".arc", "warc"),
    (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
    (".parquet", "parquet"),
]
DOCUMENT_WARC_TYPES = ("response", "resource", "revisit", "conversion")
NON_DOCUMENT_WARC_TYPES = ("request", "metadata", "warcinfo", "continuation")


def detect_format(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMAT_SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"cannot tell the format of {path!r} from its name; set the source's format in config")


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


def _file_failure(source: str, path: str, offset: int, kind: str, message: str) -> Failed:
    key = record_key(source, path, f"damaged@{offset}")
    return Failed(source=source, stage=STAGE, error_kind=kind, message=message[:2000], key=key,
                  id=f"{source}-{key}", file=path, offset=offset)


class ReadFileDoFn(beam.DoFn):
    """Parses one input file (a ``fileio.ReadableFile``) into records."""

    def __init__(self, source: dict, read_cfg: dict):
        self.source = source
        self.cfg = read_cfg

    def setup(self):
        self._emit = _Emit(self.source["name"])
        self._html_types = tuple(t.lower() for t in self.cfg["html_content_types"])
        self._accept_status = {str(s) for s in self.cfg["accept_status"]}

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        fmt = self.source.get("format") or "auto"
        try:
            fmt = detect_format(path) if fmt == "auto" else fmt
        except ValueError as exc:
            yield self._emit.failed(_file_failure(self.source["name"], path, 0, "unknown_format", str(exc)))
            return
        if readable.metadata.size_in_bytes == 0:
            yield self._emit.failed(_file_failure(self.source["name"], path, 0, "empty_file", "file is empty"))
            return
        try:
            stream = readable.open(compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # permissions, vanished object, ...
            yield self._emit.failed(_file_failure(self.source["name"], path, 0, "unreadable_file", repr(exc)))
            return
        with stream:
            if fmt in ("warc", "wet"):
                yield from self._warc(stream, path, readable.metadata.size_in_bytes)
            else:
                yield from {"jsonl": self._jsonl, "parquet": self._parquet}[fmt](stream, path)

    # --- WARC / WET ---------------------------------------------------------
    def _warc(self, stream, path, size: int | None = None) -> Iterator:
        from warcio.archiveiterator import ArchiveIterator

        name = self.source["name"]
        allow_arc = path.lower().endswith((".arc", ".arc.gz"))
        it = ArchiveIterator(stream, arc2warc=allow_arc)
        records = iter(it)
        next_offset = 0
        while True:
            try:
                record = next(records)
            except StopIteration:
                # warcio ends quietly inside a truncated gzip member: bytes after the
                # last complete record that hold more than whitespace are an unreadable stretch
                tail = self._unread_tail(stream, it.offset, size)
                if tail:
                    yield self._emit.failed(_file_failure(name, path, it.offset, "unreadable_container",
                                                          f"{tail} bytes after the last complete record "
                                                          "do not form a record (truncated or corrupt)"))
                return
            except Exception as exc:  # damaged container: keep what came before, dead-letter the rest
                yield self._emit.failed(_file_failure(name, path, next_offset, "unreadable_container",
                                                      f"{type(exc).__name__}: {exc}"))
                return
            if record.format != "warc" and not allow_arc:
                # warcio reads any line with spaces as an ARC header: text that is not a
                # WARC would come out as a stream of bogus records
                yield self._emit.failed(_file_failure(name, path, next_offset, "unreadable_container",
                                                      f"not a WARC record (parsed as {record.format})"))
                return
            try:
                verdict = self._warc_record(record, path)
            except Exception as exc:  # noqa: BLE001 - one bad record must not end the file
                verdict = ("malformed", None, f"{type(exc).__name__}: {exc}")
            try:
                offset = it.get_record_offset()
                next_offset = offset + it.get_record_length()
            except Exception:  # noqa: BLE001 - offsets are best effort on a damaged stream
                offset = next_offset
            kind = verdict[0]
            if kind == SKIPPED:
                yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, verdict[1]))
                continue
            key = record_key(name, path, offset)
            rec = verdict[1] or RawRecord(key="", id="", source=name, file=path, offset=0,
                                          url=record.rec_headers.get_header("WARC-Target-URI"))
            rec.key, rec.id, rec.offset = key, f"{name}-{key}", offset
            if kind == "ok":
                yield self._emit.record(rec)
            elif kind == DROPPED:
                yield self._emit.dropped(Dropped.of(rec, STAGE, verdict[2], verdict[3]))
            elif kind == "truncated":
                yield self._emit.failed(Failed.of(rec, STAGE, "truncated_record",
                                                  "record payload ends before its Content-Length"))
                return  # the stream is damaged past this point
            else:
                yield self._emit.failed(Failed.of(rec, STAGE, "malformed_record", verdict[2]))

    @staticmethod
    def _unread_tail(stream, offset: int, size: int | None) -> int:
        """Bytes from ``offset`` to the end of the file that are not whitespace padding."""
        if size is None or offset is None or offset >= size:
            return 0
        try:
            stream.seek(offset)
            tail = stream.read(min(size - offset, 1 << 16))
        except (OSError, ValueError):
            return size - offset
        return size - offset if tail.strip(b" \t\r\n") else 0

    def _warc_record(self, record, path):
        """Classify one WARC record: (SKIPPED, type) | ("ok", rec) |
        (DROPPED, rec, reason, detail) | ("truncated", rec)."""
        name = self.source["name"]
        rtype = record.rec_type
        h = record.rec_headers
        if rtype in NON_DOCUMENT_WARC_TYPES:
            return SKIPPED, rtype
        if rtype not in DOCUMENT_WARC_TYPES:  # missing or unknown WARC-Type: cannot be classified
            return "malformed", None, f"missing or unknown WARC-Type {rtype!r}"
        rec = RawRecord(key="", id="", source=name, file=path, offset=0,
                        url=h.get_header("WARC-Target-URI"), date=h.get_header("WARC-Date"))
        max_bytes = int(self.cfg["max_payload_bytes"])
        if rtype == "revisit":
            return DROPPED, rec, "revisit_no_payload", h.get_header("WARC-Refers-To-Target-URI")
        if rtype == "conversion":  # WET: already plain text
            data = record.raw_stream.read(max_bytes + 1)
            if len(data) > max_bytes:
                return DROPPED, rec, "too_large", f">{max_bytes} bytes"
            if record.raw_stream.limit > 0:
                return "truncated", rec
            try:
                rec.text = data.decode("utf-8")
            except UnicodeDecodeError:
                try:  # WET is UTF-8 by spec; accept another encoding only on clear evidence
                    rec.text, _, _ = pl.decode_html(data)
                except UnicodeError as exc:
                    return "malformed", rec, f"decode_error: {exc}"
            rec.language_hint = h.get_header("WARC-Identified-Content-Language")
            return "ok", rec

        if record.http_headers is not None and rtype == "response":
            http = record.http_headers
            status = http.get_statuscode()
            ctype = (http.get_header("Content-Type") or "").lower()
            cenc = http.get_header("Content-Encoding")
            tenc = (http.get_header("Transfer-Encoding") or "").lower()
            if str(status) not in self._accept_status:
                return DROPPED, rec, "http_status", str(status)
        else:  # resource records, or responses for non-HTTP URIs such as dns:
            ctype = (h.get_header("Content-Type") or "").lower()
            cenc, tenc = None, ""
        mime = ctype.split(";")[0].strip()
        if not mime.startswith(self._html_types):
            return DROPPED, rec, "not_html", mime or "no content type"
        data = record.raw_stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            return DROPPED, rec, "too_large", f">{max_bytes} payload bytes"
        if record.raw_stream.limit > 0:
            return "truncated", rec
        if not data.strip():
            return DROPPED, rec, "empty_payload", None
        if "chunked" in tenc:
            try:
                data = pl.dechunk(data)
            except pl.PayloadError:
                pass  # many archives store the payload de-chunked but keep the header
        try:
            data = pl.decode_content_encoding(data, cenc, int(self.cfg["max_decompressed_bytes"]))
        except pl.PayloadTooLarge as exc:
            return DROPPED, rec, "decompressed_too_large", str(exc)
        except pl.PayloadError as exc:
            return "malformed", rec, f"content_encoding_error: {exc}"
        rec.payload = data
        rec.charset = pl.charset_from_content_type(ctype)
        return "ok", rec

    # --- JSONL ---------------------------------------------------------------
    def _jsonl(self, stream, path) -> Iterator:
        name = self.source["name"]
        fields = self.source["fields"]
        raw = gzip.GzipFile(fileobj=stream, mode="rb") if _is_gzip(stream) else stream
        buffered = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
        max_bytes = int(self.cfg["max_payload_bytes"])
        index = 0
        while True:
            try:
                line = buffered.readline(max_bytes + 1)
            except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip
                yield self._emit.failed(_file_failure(name, path, index, "unreadable_container",
                                                      f"{type(exc).__name__}: {exc} (at line {index})"))
                return
            if not line:
                return
            if len(line) > max_bytes and not line.endswith(b"\n"):
                # skip the rest of an over-long line without holding it
                while True:
                    chunk = buffered.readline(1 << 20)
                    if not chunk or chunk.endswith(b"\n"):
                        break
                key = record_key(name, path, index)
                yield self._emit.dropped(Dropped(key=key, id=f"{name}-{key}", source=name, stage=STAGE,
                                                 reason="too_large", detail=f">{max_bytes} bytes", file=path,
                                                 offset=index))
                index += 1
                continue
            if line.strip():
                yield self._row_record(line, path, index, fields)
            index += 1

    def _row_record(self, line: bytes, path: str, index: int, fields: dict):
        name = self.source["name"]
        key = record_key(name, path, index)
        rec = RawRecord(key=key, id=f"{name}-{key}", source=name, file=path, offset=index)
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return self._emit.failed(Failed.of(rec, STAGE, "decode_error", str(exc)))
        except ValueError as exc:
            return self._emit.failed(Failed.of(rec, STAGE, "json_error", str(exc)))
        if not isinstance(row, dict):
            return self._emit.failed(Failed.of(rec, STAGE, "json_error", "line is not a JSON object"))
        return self._from_row(rec, row, fields)

    def _from_row(self, rec: RawRecord, row: dict, fields: dict):
        text = row.get(fields["text"])
        if not isinstance(text, str):
            kind = "missing_field" if text is None else "bad_field"
            return self._emit.failed(Failed.of(rec, STAGE, kind, f"field {fields['text']!r} is "
                                               f"{'missing' if text is None else type(text).__name__}"))
        given_id = row.get(fields["id"])
        if given_id is not None and str(given_id) != "":
            rec.id = str(given_id)
        rec.url = _str_or_none(row.get(fields["url"]))
        rec.date = _str_or_none(row.get(fields["date"]))
        rec.text = text
        return self._emit.record(rec)

    # --- Parquet ---------------------------------------------------------------
    def _parquet(self, stream, path) -> Iterator:
        import pyarrow.parquet as pq

        name = self.source["name"]
        fields = self.source["fields"]
        index = 0
        try:
            pf = pq.ParquetFile(stream)
            present = set(pf.schema_arrow.names)
            columns = [c for c in dict.fromkeys(fields.values()) if c in present]
            batches = pf.iter_batches(batch_size=256, columns=columns)
            for batch in batches:
                for row in batch.to_pylist():
                    key = record_key(name, path, index)
                    rec = RawRecord(key=key, id=f"{name}-{key}", source=name, file=path, offset=index)
                    yield self._from_row(rec, row, fields)
                    index += 1
        except Exception as exc:  # noqa: BLE001 - corrupt footer/page: dead-letter the rest
            yield self._emit.failed(_file_failure(name, path, index, "unreadable_container",
                                                  f"{type(exc).__name__}: {exc} (at row {index})"))


def _is_gzip(stream) -> bool:
    head = stream.read(2)
    stream.seek(0)
    return head == b"\x1f\x8b"


def _str_or_none(v):
    return None if v is None else str(v)


class ReadSource(beam.PTransform):
    """All files of one configured source -> (records, dropped, failed, skipped)."""

    def __init__(self, source: dict, read_cfg: dict):
        super().__init__()
        self.source = source
        self.read_cfg = read_cfg

    def expand(self, pbegin):
        patterns = pbegin | "Patterns" >> beam.Create(list(self.source["paths"]))
        files = (patterns
                 | "Match" >> fileio.MatchAll(empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
                 | "Open" >> fileio.ReadMatches(compression=CompressionTypes.UNCOMPRESSED)
                 # one file is one unit of reading work; spread the files over workers
                 | "SpreadFiles" >> beam.Reshuffle())
        out = files | "Parse" >> beam.ParDo(ReadFileDoFn(self.source, self.read_cfg)).with_outputs(
            DROPPED, FAILED, SKIPPED, main="records")
        return out.records, out[DROPPED], out[FAILED], out[SKIPPED]


def matched_files(patterns) -> list[str]:
    """The files the patterns match now (used by the CLI to warn about empty sources)."""
    found = []
    for res in FileSystems.match(list(patterns)):
        found.extend(m.path for m in res.metadata_list)
    return sorted(set(found))
