"""The WARC / WET / ARC reader (the interface: ``base``).

Records are framed by ``warc.iter_unit`` inside the units of ``container``
(the whole file when uncompressed, one gzip member at a time when gzipped) and
classified by ``warc.classify``.  A gzipped file is splittable: a span reads the
members that *start* in it (``GzipMembers.units``), so no record is read twice
or lost at a range boundary; a response whose Common Crawl metadata record
starts in the next range still gets it, for the language gate: the reader
peeks at the next member without owning it (that range counts it).

What the file offered: its gzip members (and the stretches between them that
are not members), or, for an uncompressed file, its bytes: the records in it
are known only by parsing.
"""
from __future__ import annotations

from typing import Iterator

from .. import language_gate as lg
from ...records import DROPPED, SKIPPED, Dropped, Failed, RawRecord, Skipped
from . import warc as wr
from .base import STAGE, Candidate, CCMetadata, Offered, Reader, Span, file_failure, raw_record
from .container import Garbage, GzipMember, GzipMembers, PlainUnit, gzipped


class WarcReader(Reader):
    """WARC (WET, ARC) records -> candidates for the language gate, drops, dead letters, skips."""

    splittable = True

    def limits(self, arc: bool = False) -> wr.ParserLimits:
        return wr.ParserLimits(self.cfg.max_header_bytes, self.cfg.max_payload_bytes, arc=arc)

    def read_records(self, fh, path: str, size, span: Span) -> Iterator:
        """Outcomes of the records whose units start in the span (all of them
        when ``span.claim`` is None)."""
        name = self.name
        arc = path.lower().endswith((".arc", ".arc.gz"))
        limits = self.limits(arc)
        gz = gzipped(fh, path)
        members = GzipMembers(fh, size) if gz else None
        units = members.units(span.start, span.stop, span.claim, arc) if gz else [PlainUnit(fh, size)]
        intact = one_item = 0  # intact members read, those of them that held exactly one item
        seen = 0
        for unit in units:
            seen += 1
            if isinstance(unit, Garbage):
                yield file_failure(name, path, unit.offset, "unreadable_container",
                                   f"{unit.length} bytes at {unit.offset} are not a gzip member")
                continue
            items, held = 0, None
            for item in wr.iter_unit(unit, limits):
                if held is not None:
                    yield from self._outcome(held, unit, gz, path, None, None)
                held, items = item, items + 1
            err = unit.finish()
            if held is not None:
                # a stretch that is a whole member of a file of one record per member is one record
                whole = gz and items == 1 and held.offset == 0 and (not intact or one_item == intact)
                # a record is trusted only when its gzip member ends cleanly (CRC checked)
                yield from self._outcome(held, unit, gz, path, err, 1 if whole else None)
            elif err:  # a member that inflated whole but fails its check held no record
                known = 0 if unit.check_failed else 1 if intact and one_item == intact else None
                yield file_failure(name, path, unit.offset, "unreadable_container",
                                   f"gzip member at byte {unit.offset}: {err}", records=known)
            if not err or unit.check_failed:  # its records were all framed: it tells the layout
                intact += 1
                one_item += items == 1
        if not seen and span.start == 0 and (members is None or members.stopped_at is None):
            # only NUL or whitespace padding: a file that holds nothing is a failed copy
            yield file_failure(name, path, 0, "empty_file", f"{size} bytes of padding only")
        if members is not None and members.stopped_at is not None and self.pair_metadata:
            yield from self._peek_metadata(members, members.stopped_at, limits)
        yield Offered("gzip member", seen) if gz else Offered("byte", size)

    def _peek_metadata(self, members: GzipMembers, offset: int, limits) -> Iterator:
        """The Common Crawl metadata record in the member at ``offset``, which the
        next range owns: read for pairing only (that range counts it)."""
        try:
            for item in wr.iter_unit(GzipMember(members, offset), limits):
                if (isinstance(item, wr.Framed) and (item.headers.get("warc-type") or "").lower() == "metadata"
                        and "warc-concurrent-to" in item.headers):
                    yield CCMetadata(item.headers["warc-concurrent-to"], lg.parse_cc_metadata(item.block))
                break
        except Exception:  # noqa: BLE001 - a damaged next member is the next range's to report
            return

    def _outcome(self, item, unit, gz: bool, path: str, member_error, stretch_records) -> Iterator:
        name = self.name
        offset = unit.offset + item.offset if not gz else unit.offset
        position = offset if (not gz or item.offset == 0) else f"{unit.offset}+{item.offset}"
        if isinstance(item, wr.Stretch):
            n = f"{item.length} bytes" if item.length is not None else "the rest of the input"
            where = f"gzip member at byte {unit.offset}, +{item.offset}" if gz else f"byte {offset}"
            yield file_failure(name, path, offset, "unreadable_container",
                               f"{n} from {where} do not form a record: {item.message}",
                               records=stretch_records, position=position)
            return
        url = item.headers.get("warc-target-uri")
        if member_error and isinstance(item, wr.Framed):
            item = wr.Broken(item.offset, item.headers, f"its gzip member is damaged: {member_error}",
                             "corrupt_container")
        if isinstance(item, wr.Broken):
            rec = raw_record(name, path, position, offset, url=url)
            yield Failed.of(rec, STAGE, item.kind, item.message)
            return
        yield from self.classified(item, path, position, offset)

    def classified(self, item: wr.Framed, path: str, position, offset: int) -> Iterator:
        """The outcome of one framed record: a document record is a ``Candidate``
        (for the language gate); a metadata record is a ``Skipped`` and, when
        pairing, a ``CCMetadata``."""
        name = self.name
        url = item.headers.get("warc-target-uri")
        try:
            verdict = wr.classify(item, name, path, self.cfg)
        except Exception as exc:  # noqa: BLE001 - one bad record must not end the file
            verdict = wr.Verdict("malformed", detail=f"{type(exc).__name__}: {exc}")
        if verdict.kind == SKIPPED:
            yield Skipped(name, verdict.record_type)
            if verdict.record_type == "metadata" and self.pair_metadata and "warc-concurrent-to" in item.headers:
                yield CCMetadata(item.headers["warc-concurrent-to"], lg.parse_cc_metadata(item.block))
            return
        rec = verdict.record or RawRecord(key="", id="", source=name, file=path, offset=0, url=url)
        fresh = raw_record(name, path, position, offset)
        rec.key, rec.id, rec.file, rec.offset = fresh.key, fresh.id, fresh.file, offset
        if verdict.kind == "ok":
            yield Candidate(rec.well_formed(), item.headers.get("warc-record-id"))
        elif verdict.kind == DROPPED:
            yield Dropped.of(rec, STAGE, verdict.reason, verdict.detail)
        elif verdict.kind == "failed":
            yield Failed.of(rec, STAGE, verdict.reason, verdict.detail or verdict.reason)
        else:
            yield Failed.of(rec, STAGE, "malformed_record", verdict.detail or "malformed")
