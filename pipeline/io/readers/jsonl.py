"""JSONL (optionally gzipped) records: one line, one record.

Lines are what the container offers: every newline-terminated line becomes
exactly one outcome (record, ``too_large`` drop, or a dead letter), and blank
lines are counted as skipped.  A gzipped file is read member by member
(``container.GzipMembers``), so complete lines before damage are kept, the
damaged member is one dead letter, and reading resumes at the next member; a
member whose trailer check alone fails loses no line (``iter_lines``).
``JsonlReader`` is the format's reader (the interface: ``base``).
"""
from __future__ import annotations

import json
from typing import Iterator

from ...records import Dropped, Failed, Skipped
from .base import STAGE, Offered, Reader, Span, file_failure, from_row, raw_record
from .container import Garbage, GzipMembers, PlainUnit, gzipped

# What ``iter_lines`` yields; ``JsonlReader`` turns the events into outcomes.
LINE, TOO_LARGE, BLANK, STRETCH, UNCHECKED = "line", "too_large", "blank", "stretch", "unchecked"


def iter_lines(raw, size, max_line_bytes: int, gzipped: bool) -> Iterator[tuple]:
    """(LINE, index, bytes) | (TOO_LARGE, index, n) | (BLANK, index) |
    (STRETCH, index, message, byte_offset) | (UNCHECKED, index, message,
    byte_offset) in file order.

    A line is yielded one line late, once the next line (or the end of its
    member) has been read: the last line of a gzip member whose trailer check
    fails (the data inflated, its CRC-32 or length did not match) is UNCHECKED,
    one dead letter, as the WARC reader does with the last record of such a
    member; the lines before it were read as the damage came to light."""
    units = GzipMembers(raw, size).units() if gzipped else [PlainUnit(raw, size)]
    index = 0
    pending = b""  # a line continued across a gzip member boundary
    seen = False
    for unit in units:
        seen = True
        if isinstance(unit, Garbage):
            if pending:
                yield (LINE, index, pending) if pending.strip() else (BLANK, index)
                index, pending = index + 1, b""
            yield STRETCH, index, f"{unit.length} bytes at byte {unit.offset} are not a gzip member", unit.offset
            continue
        held = None  # the latest line of this unit, yielded when the next one is read
        for event in _unit_lines(unit, max_line_bytes, pending, index):
            if event[0] == "pending":
                pending = event[1]
                continue
            if held is not None:
                yield held
            held, index, pending = event, event[1] + 1, b""
        err = unit.finish()
        if held is not None:
            if err and unit.check_failed and held[0] == LINE:
                yield UNCHECKED, held[1], f"line {held[1]} ends gzip member at byte {unit.offset}: {err}", unit.offset
            else:
                yield held
        if err and not unit.check_failed:
            pending = b""
            yield STRETCH, index, (f"gzip member at byte {unit.offset} is damaged after line {index}: {err}; "
                                   "the rest of the member is unreadable"), unit.offset
    if pending:
        yield (LINE, index, pending) if pending.strip() else (BLANK, index)
    if not seen:
        yield STRETCH, 0, "the file holds only NUL or whitespace padding, no gzip member", 0


def _unit_lines(unit, max_line_bytes: int, pending: bytes, index: int) -> Iterator[tuple]:
    """The complete lines of one unit as LINE / BLANK / TOO_LARGE events, and
    ("pending", bytes) for a last line that may continue in the next member."""
    while True:
        line = unit.readline(max_line_bytes + 1 - len(pending))
        if not line:
            break
        line = pending + line
        pending = b""
        if len(line) > max_line_bytes:
            n = len(line)
            while not line.endswith(b"\n"):  # pass the rest of the line without holding it
                line = unit.readline(1 << 20)
                if not line:
                    break
                n += len(line)
            yield TOO_LARGE, index, n
            index += 1
            continue
        if not line.endswith(b"\n") and unit.at_end() and unit.finish() is None:
            yield "pending", line  # may continue in the next member (or is the last line)
            break
        if not line.endswith(b"\n") and unit.error and not unit.check_failed:
            break  # cut by damage: part of the damaged stretch
        yield (LINE, index, line) if line.strip() else (BLANK, index)
        index += 1
    if pending:
        yield "pending", pending


def parse_line(line: bytes):
    """A JSON object, or raises ValueError with the reason (kind, message)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError("decode_error", str(exc)) from None
    try:
        row = json.loads(text)
    except RecursionError:
        raise LineError("json_error", "JSON nested too deeply") from None
    except ValueError as exc:
        raise LineError("json_error", str(exc)) from None
    if not isinstance(row, dict):
        raise LineError("json_error", "line is not a JSON object")
    return row


class LineError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


class JsonlReader(Reader):
    """JSONL lines -> records; what the file offered: its lines."""

    def read_records(self, fh, path: str, size, span: Span):
        name, max_bytes = self.name, self.cfg.max_payload_bytes
        lines = 0
        for event in iter_lines(fh, size, max_bytes, gzipped(fh, path)):
            kind = event[0]
            if kind == STRETCH:  # offset: the line index where the damage begins
                yield file_failure(name, path, event[1], "unreadable_container", event[2],
                                   position=f"stretch@line{event[1]}@byte{event[3]}")
                continue
            lines += 1
            if kind == BLANK:
                yield Skipped(name, "blank_line")
                continue
            rec = raw_record(name, path, event[1], event[1])  # offset: the line index
            if kind == UNCHECKED:
                yield Failed.of(rec, STAGE, "corrupt_container", event[2])
            elif kind == TOO_LARGE:
                yield Dropped.of(rec, STAGE, "too_large", f"{event[2]}>{max_bytes} bytes")
            else:
                try:
                    row = parse_line(event[2])
                except LineError as exc:
                    yield Failed.of(rec, STAGE, exc.kind, exc.message)
                    continue
                yield from_row(rec, row, self.source.fields)
        yield Offered("line", lines)
