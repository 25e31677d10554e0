"""JSONL (optionally gzipped) records: one line, one record.

Lines are what the container offers: every newline-terminated line becomes
exactly one outcome (record, ``too_large`` drop, or a dead letter), and blank
lines are counted as skipped.  A gzipped file is read member by member
(``container.GzipMembers``), so complete lines before damage are kept, the
damaged member is one dead letter, and reading resumes at the next member.
"""
from __future__ import annotations

import json
from typing import Iterator

from .container import Garbage, GzipMembers, PlainUnit

# What the reader yields, besides parsed rows; the DoFn turns them into outputs.
LINE, TOO_LARGE, BLANK, STRETCH = "line", "too_large", "blank", "stretch"


def iter_lines(raw, size, max_line_bytes: int, gzipped: bool) -> Iterator[tuple]:
    """(LINE, index, bytes) | (TOO_LARGE, index, n) | (BLANK, index) |
    (STRETCH, index, message, byte_offset) in file order."""
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
                pending = line  # may continue in the next member (or is the last line)
                break
            if not line.endswith(b"\n") and unit.error:
                break  # cut by damage: part of the damaged stretch below
            yield (LINE, index, line) if line.strip() else (BLANK, index)
            index += 1
        err = unit.finish()
        if err:
            pending = b""
            yield STRETCH, index, (f"gzip member at byte {unit.offset} is damaged after line {index}: {err}; "
                                   "the rest of the member is unreadable"), unit.offset
    if pending:
        yield (LINE, index, pending) if pending.strip() else (BLANK, index)
    if not seen:
        yield STRETCH, 0, "the file holds only NUL or whitespace padding, no gzip member", 0


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
