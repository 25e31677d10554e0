"""Parquet records, read row group by row group.

The footer says how many rows each row group holds, independently of whether
their pages decode: a row group that cannot be read becomes one dead letter
per row; a cell that cannot be converted (e.g. a timestamp past year 9999)
fails only its row (``bad_field``); a text cell over the size cap is dropped
(``too_large``) before it is ever turned into a Python string.
``ParquetReader`` is the format's reader (the interface: ``base``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ...records import Dropped, Failed
from .base import STAGE, Offered, Reader, Span, file_failure, from_row, raw_record

if TYPE_CHECKING:
    from ...schema import Fields

ROW, ROW_FAILED, ROW_TOO_LARGE, GROUP_FAILED = "row", "row_failed", "row_too_large", "group_failed"
BATCH_ROWS = 256


def _column_values(col: pa.Array) -> tuple[list, dict]:
    """Python values of a column; per-row errors where the column as a whole fails."""
    try:
        return col.to_pylist(), {}
    except Exception:  # noqa: BLE001 - find the rows that fail
        values, errors = [], {}
        for i in range(len(col)):
            try:
                values.append(col[i].as_py())
            except Exception as exc:  # noqa: BLE001
                values.append(None)
                errors[i] = f"{type(exc).__name__}: {exc}"
        return values, errors


def iter_rows(pf, fields: Fields, max_cell_bytes: int) -> Iterator[tuple]:
    """(ROW, index, row) | (ROW_FAILED, index, message) | (ROW_TOO_LARGE, index, n) |
    (GROUP_FAILED, first_index, n_rows, message)."""
    present = set(pf.schema_arrow.names)
    columns = [c for c in dict.fromkeys(fields.model_dump().values()) if c in present]
    text_col = fields.text
    index = 0
    for rg in range(pf.metadata.num_row_groups):
        n_rows = pf.metadata.row_group(rg).num_rows
        group_start = index
        try:
            table = pf.read_row_group(rg, columns=columns)
        except Exception as exc:  # noqa: BLE001 - a corrupt page fails this row group only
            yield GROUP_FAILED, index, n_rows, f"row group {rg}: {type(exc).__name__}: {exc}"
            index += n_rows
            continue
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            sizes = None
            cols = {}
            for name in batch.schema.names:
                col = batch.column(name)
                if name == text_col and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                                         or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
                    sizes = pc.binary_length(col).to_pylist()
                    too_big = pc.greater(pc.binary_length(col), max_cell_bytes)
                    col = pc.if_else(pc.fill_null(too_big, False), pa.nulls(len(col), col.type), col)
                cols[name] = _column_values(col)
            for i in range(batch.num_rows):
                if sizes is not None and sizes[i] is not None and sizes[i] > max_cell_bytes:
                    yield ROW_TOO_LARGE, index, sizes[i]
                else:
                    errors = [f"column {name!r}: {errs[i]}" for name, (_, errs) in cols.items() if i in errs]
                    if errors:
                        yield ROW_FAILED, index, "; ".join(errors)
                    else:
                        yield ROW, index, {name: vals[i] for name, (vals, _) in cols.items()}
                index += 1
        if index - group_start < n_rows:  # fewer rows decoded than the footer says: never silently
            missing = n_rows - (index - group_start)
            yield GROUP_FAILED, index, missing, f"row group {rg}: {missing} of its {n_rows} rows did not decode"
        index = group_start + n_rows


class ParquetReader(Reader):
    """Parquet rows -> records; what the file offered: the footer's row count."""

    def read_records(self, fh, path: str, size, span: Span):
        import pyarrow.parquet as pq

        name, max_bytes = self.name, self.cfg.max_payload_bytes
        try:
            pf = pq.ParquetFile(fh)
        except Exception as exc:  # noqa: BLE001 - no footer: the row count is unknown
            yield file_failure(name, path, 0, "unreadable_container",
                               f"Parquet footer unreadable: {type(exc).__name__}: {exc}")
            yield Offered("row", None)
            return
        for event in iter_rows(pf, self.source.fields, max_bytes):
            kind, index = event[0], event[1]
            if kind == GROUP_FAILED:
                for i in range(index, index + event[2]):  # the footer says how many rows: one dead letter each
                    yield Failed.of(raw_record(name, path, i, i), STAGE, "unreadable_row_group", event[3])
                continue
            rec = raw_record(name, path, index, index)
            if kind == ROW_TOO_LARGE:
                yield Dropped.of(rec, STAGE, "too_large", f"{event[2]}>{max_bytes} bytes")
            elif kind == ROW_FAILED:
                yield Failed.of(rec, STAGE, "bad_field", event[2])
            else:
                yield from_row(rec, event[2], self.source.fields, pf.schema_arrow.names)
        yield Offered("row", pf.metadata.num_rows)
