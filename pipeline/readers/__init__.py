"""Readers: one streaming Beam source per input format.

``ReadSources`` expands the sources' globs (any Beam filesystem: local, GCS, S3,
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
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from .. import language_gate as lg
from ..fs import exists
from ..records import DROPPED, FAILED, SKIPPED, Dropped, Failed, RawRecord, Skipped, record_key
from . import cc_index as cci
from . import jsonl as jl
from . import parquet as pq_reader
from . import warc as wr
from ..readback import PathEscape, confine
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
    it holds glob characters (``page[1].jsonl``).  Local patterns are matched
    by Python's glob (``**`` recursive), relative to the working directory, so
    ``*.parquet`` means the current folder's files; a trailing ``/`` means the
    folder's files (as Beam reads it).  Entries a local glob matches that are
    not readable regular files (directories, dangling links, link loops, no
    permission) are reported instead of being skipped in silence; folders a
    ``**`` walks through are not entries.  Remote patterns use Beam's
    matching (``*`` within one path segment, ``**`` across segments)."""
    if "://" in pattern:
        return _expand_remote(pattern), []
    if pattern.endswith("/"):
        pattern += "*"
    if any(c in pattern for c in GLOB_CHARS) and os.path.lexists(pattern):
        entries = [pattern]
    else:
        entries = globlib.glob(pattern, recursive=True)
    return _once_per_real_path(entries, pattern)


def _expand_remote(pattern: str) -> list[tuple[str, int]]:
    query = _escape_glob(pattern) if any(c in pattern for c in GLOB_CHARS) and exists(pattern) else pattern
    with warnings.catch_warnings():  # Beam's glob translation warns about the escapes ("[[]") it supports
        warnings.simplefilter("ignore", FutureWarning)
        matches = FileSystems.match([query])
    return [(m.path, m.size_in_bytes) for res in matches for m in res.metadata_list]


def _once_per_real_path(entries: list[str], pattern: str) -> tuple[list, list]:
    """Local glob entries, each real file once.  Python's ``**`` follows
    directory links (a link loop, down to the system's link depth): an entry
    that resolves to a file or folder already taken by a shorter path is the
    same one and is not read or reported again; folders a ``**`` walks through
    are not entries; the rest that are not readable files are reported once."""
    seen, kept, unreadable = set(), [], []
    for entry in sorted(set(entries), key=lambda e: (len(e), e)):  # the shortest path names the file
        full = os.path.abspath(entry)
        real = os.path.realpath(full)
        if real in seen:  # the same file or folder by another path: a link, a link loop
            continue
        seen.add(real)
        if os.path.isfile(full) and os.access(full, os.R_OK):
            kept.append((full, os.path.getsize(full)))
        elif not ("**" in pattern and os.path.isdir(full)):
            unreadable.append((full, _why_unreadable(full)))
    return sorted(kept), sorted(unreadable)


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


def _portable(path: str):
    """A matched path as it travels between steps: Beam's coders write text as
    strict UTF-8, so a local name that is not UTF-8 travels as its bytes."""
    return path if shown_path(path) is path else os.fsencode(path)


def _openable(path) -> str:
    """The path to open, from what ``_portable`` sent."""
    return os.fsdecode(path) if isinstance(path, bytes) else path


def matched_files(patterns) -> list[str]:
    """The readable files the patterns match now, each once (for the CLI's preflight)."""
    return sorted({p for pat in patterns for p, _ in expand_pattern(pat)[0]})


class _MatchPatternDoFn(beam.DoFn):
    """(source, pattern) -> ((source, path), size) of each readable file, and
    ((source, path), Failed) for entries that are not (the reader passes those
    on as dead letters: one stream, no Flatten)."""

    def process(self, source_pattern: tuple):
        source, pattern = source_pattern
        files, unreadable = expand_pattern(_openable(pattern))
        for path, size in files:
            # keyed by the real path: two patterns that reach one local file through a link read it once
            real = path if "://" in path else os.path.realpath(path)
            yield (source, _portable(real)), (_portable(path), size)
        for path, why in unreadable:
            yield (source, shown_path(path)), (shown_path(path), file_failure(source, path, 0, "unreadable_file",
                                                                              f"{shown_path(path)}: {why}"))


# --- outputs --------------------------------------------------------------------

class _Emit:
    """Tags outputs and counts them for live progress (Beam counters)."""

    def __init__(self, source: str):
        self.source = source
        self.read = beam.metrics.Metrics.counter("mdfs.read", source)

    def record(self, rec: RawRecord):
        self.read.inc()
        return rec.well_formed()  # every record a reader emits: no later stage sees a lone surrogate

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
    path = shown_path(path)
    key = record_key(source, path, position or f"stretch@{offset}")
    return Failed(source=source, stage=STAGE, error_kind=kind, message=message[:2000], key=key,
                  id=f"{source}-{key}", file=path, offset=offset, records=records)


def _raw(source: str, path: str, position, offset: int, **kw) -> RawRecord:
    path = shown_path(path)
    key = record_key(source, path, position)
    return RawRecord(key=key, id=f"{source}-{key}", source=source, file=path, offset=offset, **kw)


# --- the DoFn --------------------------------------------------------------------

class _Candidate:
    """A document record the language gate has not seen yet."""

    __slots__ = ("rec", "record_id")

    def __init__(self, rec: RawRecord, record_id):
        self.rec, self.record_id = rec, record_id


class _CCMetadata:
    """Common Crawl's metadata record for the response named by ``concurrent_to``."""

    __slots__ = ("concurrent_to", "cld2")

    def __init__(self, concurrent_to, cld2):
        self.concurrent_to, self.cld2 = concurrent_to, cld2


# --- byte ranges of a file (splittable reading) ----------------------------------------

FIRST_MEMBER_LIMIT = 1 << 20  # a first gzip member longer than this: one stream for the whole file, not split
MIN_RANGES_PER_FILE = 8  # a file smaller than 8 x read.split_bytes is cut into 8 ranges ...
MIN_RANGE_BYTES = 256 << 10  # ... of at least 256 KiB


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


class _WholeFile:
    """The tracker of a direct call (tests, tools): every unit is claimed."""

    def __init__(self, size):
        self._r = FileRange(0, max(int(size or 0), 1), False)

    def current_restriction(self):
        return self._r

    def try_claim(self, position):
        return position < self._r.stop


def splittable_file(path: str, size: int, fmt: str, split_bytes: int) -> bool:
    """A WARC/WET file of many gzip members, larger than one split."""
    if fmt not in ("warc", "wet") or not size or size <= split_bytes:
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


class ReadFileDoFn(beam.DoFn, RestrictionProvider):
    """Parses one input file, given as (path, size), into records.

    It is a splittable DoFn: its restriction is a byte range of the file.  A
    WARC/WET file of many gzip members (Common Crawl writes one record per
    member) is split into ranges of ``read.split_bytes``; each range reads the
    members that *start* in it (``GzipMembers.units``), so no record is read
    twice or lost at a boundary, and runners that split dynamically (Dataflow)
    may split further.  A response whose metadata record starts in the next
    range still gets it: the range peeks at the next member without owning it.
    Other files are one range, read whole.
    """

    def __init__(self, sources: dict, read_cfg: dict, lid_model: str | None = None):
        """``sources``: one source's config, or {name: config} for several; the
        elements are then ``(name, path, size_or_failure)``, else ``(path, size)``."""
        self.sources = {sources["name"]: sources} if "name" in sources else dict(sources)
        self.source = next(iter(self.sources.values()))
        self.cfg = read_cfg
        self.lid_model = lid_model

    def setup(self):
        self._emits = {n: _Emit(n) for n in self.sources}
        self._gates = {n: lg.LanguageGate(list(s.get("languages") or []), self.cfg, self.lid_model)
                       for n, s in self.sources.items()}
        self._use(self.source["name"])

    def _use(self, name: str) -> None:
        """Point the per-source state at the source of the current element."""
        self.source, self._emit, self._gate = self.sources[name], self._emits[name], self._gates[name]

    def _unpack(self, element) -> tuple:
        name, path, size = element if len(element) == 3 else (self.source["name"], *element)
        return name, _openable(path), size

    # --- the language gate (pipeline/language_gate.py) ------------------------------
    def _gated(self, outcomes) -> Iterator:
        """Pairs each response with the Common Crawl metadata record that follows
        it (one record held back), then lets the gate decide; other outcomes
        pass.  Skipped record types are counted once per type and file."""
        held: list = []  # at most one response waiting for its metadata record
        skipped: dict[str, int] = {}
        try:
            for out in outcomes:
                if isinstance(out, beam.pvalue.TaggedOutput) and out.tag == SKIPPED:
                    skipped[out.value.record_type] = skipped.get(out.value.record_type, 0) + out.value.count
                elif isinstance(out, _Candidate):
                    if held:
                        yield self._decide(held.pop().rec, None)
                    if self._gate.active and out.rec.payload is not None and out.record_id:
                        held.append(out)
                    else:
                        yield self._decide(out.rec, None)
                elif isinstance(out, _CCMetadata):
                    if held and held[0].record_id == out.concurrent_to:
                        yield self._decide(held.pop().rec, out.cld2)
                else:
                    yield out
        except Exception:  # a reader error ends the file: what was read is still accounted for
            yield from self._flush(held, skipped)
            raise
        yield from self._flush(held, skipped)

    def _flush(self, held: list, skipped: dict) -> Iterator:
        if held:
            yield self._decide(held.pop().rec, None)
        for rtype, n in skipped.items():
            yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(self.source["name"], rtype, n))
        skipped.clear()

    def _decide(self, rec: RawRecord, cld2):
        try:
            if rec.text is not None:
                decision = self._gate.wet_record(rec.language_hint)
            else:
                decision = self._gate.html_page(rec.payload, rec.charset, cld2)
        except Exception as exc:  # noqa: BLE001 - the gate only saves work: when it cannot judge, the page goes on
            decision = lg.Decision(True, "error", f"{type(exc).__name__}: {exc}")
        if self._gate.active:
            beam.metrics.Metrics.counter(
                "mdfs.language_gate",
                f"{self.source['name']}.{decision.evidence}.{'passed' if decision.keep else 'dropped'}").inc()
        if decision.keep:
            return self._emit.record(rec)
        return self._emit.dropped(Dropped.of(rec, STAGE, "language_prefilter", decision.detail))

    # --- the restriction: a byte range (RestrictionProvider) ------------------------
    def _format(self, path: str, name: str | None = None) -> str:
        fmt = self.sources[name or self.source["name"]].get("format") or "auto"
        return detect_format(path) if fmt == "auto" else fmt

    def initial_restriction(self, file):
        size = self._unpack(file)[2]
        return FileRange(0, max(size if isinstance(size, int) else 0, 1), False)

    def split(self, file, restriction):
        name, path, size = self._unpack(file)
        split_bytes = int(self.cfg["split_bytes"])
        try:
            fmt = self._format(path, name)
        except ValueError:
            fmt = None
        if restriction.start != 0 or not isinstance(size, int):  # a dead letter, or a range already split
            yield restriction
            return
        # smaller files are still cut into several ranges, so that a few files spread over many workers
        split_bytes = min(split_bytes, max(size // MIN_RANGES_PER_FILE, MIN_RANGE_BYTES))
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
        name, path, size = self._unpack(file)
        self._use(name)
        if isinstance(size, Failed):  # the glob matched something that is not a readable file
            if not hasattr(tracker, "try_claim") or tracker.try_claim(0):
                yield self._emit.failed(size)
            return
        if not hasattr(tracker, "try_claim"):
            tracker = _WholeFile(size)  # called directly, outside a runner
        rng = tracker.current_restriction()
        try:
            yield from self._read_range(path, size, rng.start, rng.stop, tracker)
        finally:
            if not isinstance(tracker, _WholeFile):  # the rest of the range holds nothing of ours
                try:
                    tracker.try_claim(tracker.current_restriction().stop)
                except ValueError:  # a claim at or past the end was already refused
                    pass

    def _read_range(self, path: str, size, start: int, stop: int, tracker) -> Iterator:
        name = self.source["name"]
        whole = not getattr(tracker.current_restriction(), "splittable", False)
        if whole and (start > 0 or not tracker.try_claim(0)):
            return  # a file read whole is read by the range that starts at 0
        try:
            fmt = self._format(path)
        except ValueError as exc:
            yield self._emit.failed(file_failure(name, path, 0, "unknown_format", str(exc)))
            return
        if size == 0:  # an input file that holds nothing is most often a failed copy: say so
            yield self._emit.failed(file_failure(name, path, 0, "empty_file", "file is empty"))
            return
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # noqa: BLE001 - permissions, vanished object, ...
            yield self._emit.failed(file_failure(name, path, start, "unreadable_file",
                                                 f"{type(exc).__name__}: {exc}", position=f"open@{start}"))
            return
        with stream:
            try:
                if fmt in ("warc", "wet"):
                    claim = None if whole else tracker.try_claim
                    yield from self._gated(self._warc(stream, path, size, start, stop, claim))
                else:
                    yield from {"jsonl": self._jsonl, "parquet": self._parquet}[fmt](stream, path, size)
            except Exception as exc:  # noqa: BLE001 - a reader bug or I/O error ends this range, not the job
                yield self._emit.failed(file_failure(name, path, start, "read_error",
                                                     f"{type(exc).__name__}: {exc} (reading stopped here)",
                                                     position=f"read_error@{start}"))

    # --- WARC / WET / ARC -------------------------------------------------------
    def _warc(self, raw, path: str, size, start: int = 0, stop: int | None = None, claim=None) -> Iterator:
        """Outcomes of the records whose units start in [start, stop) (all of
        them when ``claim`` is None)."""
        name = self.source["name"]
        arc = path.lower().endswith((".arc", ".arc.gz"))
        limits = wr.ParserLimits(int(self.cfg["max_header_bytes"]), int(self.cfg["max_payload_bytes"]), arc=arc)
        gz = _gzipped(raw, path)
        members = GzipMembers(raw, size) if gz else None
        units = members.units(start, stop, claim, arc) if gz else [PlainUnit(raw, size)]
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
            elif err:  # a member that inflated whole but fails its check held no record
                known = 0 if unit.check_failed else 1 if intact and one_item == intact else None
                yield self._emit.failed(file_failure(name, path, unit.offset, "unreadable_container",
                                                     f"gzip member at byte {unit.offset}: {err}", records=known))
            if not err or unit.check_failed:  # its records were all framed: it tells the layout
                intact += 1
                one_item += items == 1
        if not seen and start == 0 and (members is None or members.stopped_at is None):
            # only NUL or whitespace padding: a file that holds nothing is a failed copy
            yield self._emit.failed(file_failure(name, path, 0, "empty_file", f"{size} bytes of padding only"))
        if members is not None and members.stopped_at is not None and self._gate.active:
            yield from self._peek_metadata(members, members.stopped_at, limits)

    def _peek_metadata(self, members: GzipMembers, offset: int, limits) -> Iterator:
        """The Common Crawl metadata record in the member at ``offset``, which the
        next range owns: read for pairing only (that range counts it)."""
        from .container import GzipMember

        try:
            for item in wr.iter_unit(GzipMember(members, offset), limits):
                if (isinstance(item, wr.Framed) and (item.headers.get("warc-type") or "").lower() == "metadata"
                        and "warc-concurrent-to" in item.headers):
                    yield _CCMetadata(item.headers["warc-concurrent-to"], lg.parse_cc_metadata(item.block))
                break
        except Exception:  # noqa: BLE001 - a damaged next member is the next range's to report
            return

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
        yield from self._classified(item, path, position, offset)

    def _classified(self, item: wr.Framed, path: str, position, offset: int) -> Iterator:
        """The outcome of one framed record; document records come out as
        ``_Candidate`` (for the language gate), metadata as ``_CCMetadata``."""
        name = self.source["name"]
        url = item.headers.get("warc-target-uri")
        try:
            verdict = wr.classify(item, name, path, self.cfg)
        except Exception as exc:  # noqa: BLE001 - one bad record must not end the file
            verdict = wr.Verdict("malformed", detail=f"{type(exc).__name__}: {exc}")
        if verdict.kind == SKIPPED:
            yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, verdict.record_type))
            if verdict.record_type == "metadata" and self._gate.active and "warc-concurrent-to" in item.headers:
                yield _CCMetadata(item.headers["warc-concurrent-to"], lg.parse_cc_metadata(item.block))
            return
        rec = verdict.record or RawRecord(key="", id="", source=name, file=path, offset=0, url=url)
        fresh = _raw(name, path, position, offset)
        rec.key, rec.id, rec.file, rec.offset = fresh.key, fresh.id, fresh.file, offset
        if verdict.kind == "ok":
            yield _Candidate(rec, item.headers.get("warc-record-id"))
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
            elif kind == jl.UNCHECKED:  # offset: the line index, as for every JSONL record
                rec = _raw(name, path, event[1], event[1])
                yield self._emit.failed(Failed.of(rec, STAGE, "corrupt_container", event[2]))
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

    def _from_row(self, rec: RawRecord, row: dict, columns=None):
        """``columns``: the file's own (Parquet reads only the mapped ones, so the row cannot say)."""
        fields = self.source["fields"]
        try:
            text = row.get(fields["text"])
            if not isinstance(text, str):
                kind = "missing_field" if text is None else "bad_field"
                what = "missing" if text is None else type(text).__name__
                has = ", ".join(sorted(map(str, row if columns is None else columns))[:20]) or "no fields"
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
                yield self._from_row(rec, event[2], pf.schema_arrow.names)


# --- Common Crawl's columnar index (cc_index.py) ----------------------------------------

class ReadIndexDoFn(beam.DoFn):
    """One index Parquet file, given as (path, size) -> the selected rows
    (``IndexRow``), skipped counts per reason, dead letters for unreadable parts."""

    def __init__(self, source: dict):
        self.source = source

    def setup(self):
        self._emit = _Emit(self.source["name"])
        self._selection = cci.Selection.of(self.source)

    def process(self, file):
        import pyarrow.parquet as pq

        path, size = file[-2:]  # (source, path, size) from the match, or (path, size)
        path, name = _openable(path), self.source["name"]
        if isinstance(size, Failed):  # the glob matched something that is not a readable file
            yield self._emit.failed(size)
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
                        yield self._emit.failed(file_failure(name, path, 0, "bad_index", event[2], records=event[1],
                                                             position=f"bad_index@{event[2][:40]}"))
        except Exception as exc:  # noqa: BLE001 - no footer, vanished file: the row count is unknown
            yield self._emit.failed(file_failure(name, path, 0, "unreadable_container",
                                                 f"index Parquet unreadable: {type(exc).__name__}: {exc}"))
        for reason, count in sorted(not_selected.items()):
            yield beam.pvalue.TaggedOutput(SKIPPED, Skipped(name, f"index:{reason}", count))


class FetchIndexedDoFn(ReadFileDoFn):
    """A selected index row -> its WARC record, read by byte range from
    ``warc_root``/``warc_filename``, then classified like any WARC record."""

    MAX_OPEN = 8  # WARC files kept open per worker (rows of one file tend to arrive together)

    def __init__(self, source: dict, read_cfg: dict, lid_model: str | None = None):
        super().__init__(source, read_cfg, lid_model)

    def setup(self):
        super().setup()
        self._open: dict = {}
        self._limits = wr.ParserLimits(int(self.cfg["max_header_bytes"]), int(self.cfg["max_payload_bytes"]))
        # a record whose header blocks and payload stay within the caps never inflates past this
        self._max_inflated = int(self.cfg["max_payload_bytes"]) + 4 * int(self.cfg["max_header_bytes"])

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
        name = self.source["name"]
        where = f"{row.index_file} row {row.row}"
        try:  # the index is data: no value in it may choose a file outside warc_root
            path = confine(self.source["warc_root"], row.warc_filename)
        except PathEscape as exc:
            rec = _raw(name, str(row.warc_filename), row.offset, row.offset, url=row.url)
            yield self._emit.failed(Failed.of(rec, STAGE, "path_outside_root", f"warc_filename {exc} ({where})"))
            return
        rec = _raw(name, path, row.offset, row.offset, url=row.url)
        if row.length <= 0 or row.offset < 0:
            yield self._emit.failed(Failed.of(rec, STAGE, "bad_index_range",
                                              f"offset {row.offset}, length {row.length} ({where})"))
            return
        if row.length > self._max_inflated:
            yield self._emit.dropped(Dropped.of(rec, STAGE, "too_large", f"{row.length} bytes in the WARC file"))
            return
        try:
            fh = self._handle(path)
            fh.seek(row.offset)
            data = fh.read(row.length)
        except Exception as exc:  # noqa: BLE001 - missing object, no permission, I/O error
            self._open.pop(path, None)
            missing = isinstance(exc, (FileNotFoundError, IOError)) and not exists(path)
            yield self._emit.failed(Failed.of(rec, STAGE, "missing_warc_file" if missing else "unreadable_file",
                                              f"{path}: {type(exc).__name__}: {exc} ({where})"))
            return
        if len(data) < row.length:
            yield self._emit.failed(Failed.of(rec, STAGE, "bad_index_range",
                                              f"{path} ends {row.length - len(data)} bytes before the range does "
                                              f"({where})"))
            return
        try:
            framed = cci.frame_range(data, self._limits, self._max_inflated)
        except cci.TooLarge as exc:
            yield self._emit.dropped(Dropped.of(rec, STAGE, "too_large", str(exc)))
            return
        except cci.RangeError as exc:
            yield self._emit.failed(Failed.of(rec, STAGE, exc.kind, f"{exc.message} ({where}: {path} "
                                                                     f"@{row.offset}+{row.length})"))
            return
        got = framed.headers.get("warc-target-uri")
        if got != row.url:
            yield self._emit.failed(Failed.of(rec, STAGE, "index_mismatch",
                                              f"the index lists {row.url!r}, the record is {got!r} ({where})"))
            return
        for out in self._classified(framed, path, row.offset, row.offset):
            if isinstance(out, _Candidate):  # selected by the index's own CLD2 languages
                yield self._emit.record(out.rec)
            elif isinstance(out, _CCMetadata):
                continue
            elif isinstance(out, beam.pvalue.TaggedOutput) and out.tag == SKIPPED:
                # a row that points at a request or metadata record is a wrong index row, not a skip
                yield self._emit.failed(Failed.of(rec, STAGE, "index_mismatch",
                                                  f"the range holds a {out.value.record_type} record ({where})"))
            else:
                yield out


_PLAIN_STARTS = (b"WARC/", b"filedesc://", b"{", b"[")
_WARC_STARTS = (b"WARC/", b"filedesc://")  # an uncompressed WARC (or ARC) starts with its header
_JSON_STARTS = (b"{", b"[")


def _gzipped(raw, path: str) -> bool:
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


def _str_or_none(v):
    return None if v is None else str(v)


class ReadSources(beam.PTransform):
    """All configured sources -> (records, dropped, failed, skipped).

    File sources (WARC, WET, JSONL, Parquet) are read by one splittable DoFn
    whose elements name their source, so each output is one PCollection: no
    multi-input Flatten, which local runners materialise in memory.  A
    ``cc_index`` source is its own branch (select rows, reshuffle, fetch);
    with both kinds configured their outputs are flattened."""

    def __init__(self, sources: dict, read_cfg: dict, lid_model: str | None = None):
        super().__init__()
        self.sources = sources
        self.read_cfg = read_cfg
        self.lid_model = lid_model  # the language gate's fastText model (coarse.langid.model)

    def expand(self, pbegin):
        file_sources = {n: s for n, s in self.sources.items() if s.get("format") != "cc_index"}
        branches = []
        if file_sources:
            files = _match_files(pbegin, [(n, pat) for n, s in file_sources.items() for pat in s["paths"]])
            out = files | "Parse" >> beam.ParDo(ReadFileDoFn(file_sources, self.read_cfg, self.lid_model)) \
                .with_outputs(DROPPED, FAILED, SKIPPED, main="records")
            branches.append((out.records, out[DROPPED], out[FAILED], out[SKIPPED]))
        for name, src in self.sources.items():
            if src.get("format") == "cc_index":
                branches.append(pbegin | f"Index[{name}]" >> _ReadIndexSource(src, self.read_cfg, self.lid_model))
        if len(branches) == 1:
            return branches[0]
        labels = ("Records", "Dropped", "Failed", "Skipped")
        return tuple([b[i] for b in branches] | f"All{labels[i]}" >> beam.Flatten() for i in range(4))


def _match_files(pbegin, source_patterns: list):
    """(source, glob) pairs -> (source, path, size or Failed), each file once, spread over workers."""
    source_patterns = [(s, _portable(p)) for s, p in source_patterns]  # a pattern may name a non-UTF-8 file
    return (pbegin | "Patterns" >> beam.Create(source_patterns)
            | "Match" >> beam.ParDo(_MatchPatternDoFn())
            # overlapping globs or a repeated --source match a file more than once: read it once
            | "OncePerFile" >> beam.CombinePerKey(_shortest_path)
            | "Unkey" >> beam.MapTuple(lambda key, path_size: (key[0], *path_size))
            # spread the files over workers; the reader then splits big WARC files in byte ranges
            | "SpreadFiles" >> beam.Reshuffle())


class _ReadIndexSource(beam.PTransform):
    """A cc_index source: index files -> selected rows -> reshuffled -> fetched."""

    def __init__(self, source: dict, read_cfg: dict, lid_model: str | None = None):
        super().__init__()
        self.source, self.read_cfg, self.lid_model = source, read_cfg, lid_model

    def expand(self, pbegin):
        name = self.source["name"]
        matched = _match_files(pbegin, [(name, p) for p in self.source["paths"]])
        index = matched | "SelectRows" >> beam.ParDo(ReadIndexDoFn(self.source)).with_outputs(
            FAILED, SKIPPED, main="rows")
        out = (index.rows
               # rows of one index file point all over the crawl: spread the fetches over workers
               | "SpreadRows" >> beam.Reshuffle()
               | "Fetch" >> beam.ParDo(FetchIndexedDoFn(self.source, self.read_cfg, self.lid_model))
               .with_outputs(DROPPED, FAILED, SKIPPED, main="records"))
        failed = (out[FAILED], index[FAILED]) | "ReadFailed" >> beam.Flatten()
        skipped = (out[SKIPPED], index[SKIPPED]) | "ReadSkipped" >> beam.Flatten()
        return out.records, out[DROPPED], failed, skipped


def _shortest_path(paths_sizes):
    """One (path, size) of a file matched more than once: the shortest name (then the first
    in order), whichever pattern matched it first, so the choice is the same on every runner."""
    found = list(paths_sizes)
    return min(found, key=lambda ps: (len(ps[0]), os.fsdecode(ps[0]))) if found else None
