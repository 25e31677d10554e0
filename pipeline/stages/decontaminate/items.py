"""Evaluation items: the rows of a set's files (JSONL, Parquet, CSV) and the
text of each item as question banks print it."""
from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...schema import DecontaminationSet

MAX_ITEM_CHARS = 200_000  # an evaluation item longer than this is cut (none is; a wrong field would be)

OPTION_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def render_value(value) -> str:
    """One field of an item as text: option lists and maps as labelled lines
    ("A. ..."), the way question banks print them."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(f"{OPTION_LABELS[i] if i < 26 else i + 1}. {render_value(v)}" for i, v in enumerate(value))
    if isinstance(value, dict):
        return "\n".join(f"{k}. {render_value(v)}" for k, v in value.items())
    if hasattr(value, "tolist"):  # numpy values from Parquet
        return render_value(value.tolist())
    return str(value)


def item_text(row: dict, fields: list[str] | None) -> str | None:
    """The text of one item; None when the row has none of the fields."""
    if fields is None:
        if row.get("text") not in (None, ""):
            return render_value(row["text"])
        if row.get("question") in (None, ""):
            return None
        # options as a list/map (``options``; MMLU's ``choices``) or as columns A, B, C, D (C-Eval, CMMLU)
        options = next((f for f in ("options", "choices") if f in row), None)
        letters = [c for c in OPTION_LABELS if c in row]
        fields = ["question", *([options] if options else letters), "answer"]
    parts = []
    for f in fields:
        value = render_value(row.get(f))
        if value:  # option columns (C-Eval, CMMLU: A, B, C, D) printed with their label, as question banks do
            parts.append(f"{f}. {value}" if len(f) == 1 and f in OPTION_LABELS else value)
    text = "\n".join(parts)
    return text or None


# A field may be as long as the longest text one record can carry (read.max_decompressed_bytes,
# 20 MB); Python's default CSV limit, 131,072 characters, is shorter than some benchmark items.
CSV_FIELD_LIMIT = 20_000_000


def _rows(path: str):
    """(row number, dict) of a JSONL(.gz), Parquet or CSV file, via Beam's filesystems;
    a file that is not what its name says is a ValueError naming it."""
    from apache_beam.io.filesystems import FileSystems

    lower = path.lower()
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        data = raw.read()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a whole gzip file ({exc})") from None
        lower = lower[:-3]
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError: truncated or not Parquet
            raise ValueError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from None
        for i, row in enumerate(table.to_pylist()):
            yield i + 1, row
    elif lower.endswith(".csv"):
        yield from _csv_rows(path, _text(path, data))
    elif lower.endswith((".jsonl", ".json")):
        for i, line in enumerate(_text(path, data).splitlines()):
            if line.strip():
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise ValueError(f"{path} line {i + 1}: not JSON ({getattr(exc, 'msg', exc)})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path} line {i + 1}: not a JSON object")
                yield i + 1, row
    else:
        raise ValueError(f"{path}: not a .jsonl, .jsonl.gz, .parquet or .csv file")


def _text(path: str, data: bytes) -> str:
    if b"\x00" in data[:65536]:  # UTF-8 text never holds a NUL byte; UTF-16 and binary files do
        raise ValueError(f"{path}: a binary file (NUL bytes), not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _csv_rows(path: str, text: str):
    import csv

    old = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        try:
            for i, row in enumerate(reader):
                rows.append((i + 2, row))  # the header is line 1
        except csv.Error as exc:
            raise ValueError(f"{path} line {reader.line_num}: not CSV ({exc})") from None
    finally:
        csv.field_size_limit(old)
    yield from rows



def read_items(name: str, spec: DecontaminationSet):
    """(item id, text) of one set (expanded: ``config.decontamination_sets``); raises
    ValueError naming the file and row of a bad item."""
    from ...io.readers import matched_files

    files = matched_files(spec.paths)
    if not files:
        raise ValueError(f"decontamination.sets.{name}: no file matches {spec.paths}")
    for path in files:
        base = path.rsplit("/", 1)[-1]
        seen = set()  # keys of the file's rows: a named field no row has is a typo, not an empty option
        for line, row in _rows(path):
            seen.update(row)
            text = item_text(row, spec.fields)
            if text is None:
                wanted = spec.fields or ["text", "or question (+ options, answer)"]
                raise ValueError(f"decontamination.sets.{name}: {path} row {line} has none of the fields "
                                 f"{wanted} (set decontamination.sets.{name}.fields)")
            ident = row.get(spec.id_field)
            yield (str(ident) if ident not in (None, "") else f"{base}:{line}"), text[:MAX_ITEM_CHARS]
        absent = [f for f in spec.fields or [] if f not in seen]
        if absent and seen:
            raise ValueError(f"decontamination.sets.{name}.fields: no row of {path} has {', '.join(map(repr, absent))} "
                             f"(rows have: {', '.join(sorted(map(str, seen))[:8])})")

