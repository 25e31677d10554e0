"""What the launcher checks about a source before anything is written: its
globs match readable files, no pattern names a folder, every file's format
follows from its name (or is set), and the fields the user named exist in the
records (Parquet: every file's footer schema; JSONL: the first
``JSONL_PROBE_LINES`` lines of the first file of each glob).  Fields left at
the built-in defaults stay optional: their absence is a note, once per
source."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from ...formats import detect_format
from .match import GLOB_CHARS, expand_pattern

if TYPE_CHECKING:
    from ...schema import Source

JSONL_PROBE_LINES = 100  # enough to meet every key of a uniform export; a sparse key may be missed (then optional)
JSONL_PROBE_BYTES = 16 << 20  # the probe's memory bound: 100 lines of 160 KB each
DEFAULT_FIELDS = {"id": "id", "text": "text", "url": "url", "date": "date"}
NOTE_EFFECT = {"text": "its records fail (missing_field)", "id": "ids derived from file and row", "url": "no URL block list",
               "date": "no date rules"}
SHOWN = 6  # column names listed in a message


def absolute(pattern: str) -> str:
    """A local pattern made absolute against the working directory (a trailing / kept)."""
    if "://" in pattern or os.path.isabs(pattern):
        return pattern
    return os.path.join(os.getcwd(), pattern)


def _listing(names) -> str:
    names = list(names)
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "") \
        if names else "no columns"


def check_source(name: str, src: Source) -> tuple[list[str], list[str], list[str]]:
    """(readable files, problems, notes) of one source; local paths are matched from the working
    directory (made absolute here, the configuration left as given)."""
    files, problems, first_per_glob = [], [], []
    for pattern in [absolute(p) for p in src.paths]:
        found, unreadable = expand_pattern(pattern)
        literal = not any(c in pattern for c in GLOB_CHARS)
        for path, why in unreadable:
            if literal and why == "is a directory":
                problems.append(f"source {name}: {pattern} is a folder; name its files, e.g. "
                                f"'{pattern.rstrip('/')}/*' or '{pattern.rstrip('/')}/**/*.jsonl'")
        found = sorted(p for p, _ in found)
        files += found
        if found:
            first_per_glob.append(found[0])
    files = sorted(set(files))
    if problems or not files:
        return files, problems, []
    fmt = src.format
    if fmt == "auto":
        unknown = []
        for path in files:
            try:
                detect_format(path)
            except ValueError:
                unknown.append(path)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            return files, [f"source {name}: cannot tell the format of {unknown[0]}{more} from its name; "
                           f"rename it or set sources.{name}.format"], []
        formats = {detect_format(p) for p in files}
    else:
        formats = {fmt}
    if formats - {"jsonl", "parquet"}:
        return files, [], []
    problems, notes = _check_fields(name, src.fields.model_dump(), files, first_per_glob, fmt)
    return files, problems, notes


def _columns(path: str, fmt: str) -> set[str] | None:
    """The record keys a file offers (None: the file cannot be read; the run reports it per record)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        if (detect_format(path) if fmt == "auto" else fmt) == "parquet":
            import pyarrow.parquet as pq

            with FileSystems.open(path, compression_type="uncompressed") as fh:
                return set(pq.ParquetFile(fh).schema_arrow.names)
        keys = set()
        for line in _head(path).split(b"\n")[:JSONL_PROBE_LINES]:  # a line cut at the byte cap is no JSON
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a damaged line is the reader's dead letter, not a missing field
            if isinstance(row, dict):
                keys |= set(row)
        return keys
    except Exception:  # noqa: BLE001 - damaged files end as dead letters in the run, with their offsets
        return None


def _head(path: str) -> bytes:
    """Up to JSONL_PROBE_BYTES of a JSONL file's text, gzip (told by its magic bytes, as the reader does) inflated."""
    import zlib

    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        raw = fh.read(1 << 20)
        if not raw.startswith(b"\x1f\x8b"):
            return raw + fh.read(JSONL_PROBE_BYTES - len(raw))
        inflate, out = zlib.decompressobj(zlib.MAX_WBITS | 16), b""
        while raw and len(out) < JSONL_PROBE_BYTES:
            out += inflate.decompress(raw, JSONL_PROBE_BYTES - len(out))
            if inflate.eof:  # the next gzip member
                raw, inflate = inflate.unused_data or fh.read(1 << 20), zlib.decompressobj(zlib.MAX_WBITS | 16)
            else:
                raw = inflate.unconsumed_tail or fh.read(1 << 20)
        return out


def _check_fields(name: str, fields: dict, files: list[str], first_per_glob: list[str], fmt: str):
    parquet = [p for p in files if (detect_format(p) if fmt == "auto" else fmt) == "parquet"]
    probed = parquet + [p for p in dict.fromkeys(first_per_glob) if p not in parquet]
    problems, missing_default = [], {}
    for path in probed:
        have = _columns(path, fmt)
        if have is None or not have:
            continue
        for field, column in fields.items():
            if column is None or column in have:
                continue
            if DEFAULT_FIELDS.get(field) != column:
                problems.append(f"source {name}: fields.{field}: no {column!r} in {path} "
                                f"(it has: {_listing(sorted(have))})")
            else:
                missing_default.setdefault(field, path)
        if problems:
            break
    notes = []
    if missing_default:
        cols = ", ".join(fields[f] for f in missing_default)
        effects = "; ".join(NOTE_EFFECT[f] for f in missing_default if f in NOTE_EFFECT)
        notes.append(f"source {name}: no {cols} in {next(iter(missing_default.values()))}: {effects}")
    return problems, notes
