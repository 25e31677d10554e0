"""Arrow schemas of everything mdfs writes.

These are the contract with downstream pretraining jobs: the kept shards, the
dropped-documents audit dataset and the dead-letter (failed) dataset.  Columns
that later stages fill (language, scores, token count, dedup cluster) are
nullable so that every stage writes the same schema whether or not it ran.
``scores`` maps label to probability as a list of ``{label, prob}`` structs
(any classifier label set fits; Arrow's own map type is not readable by the
Hugging Face ``datasets`` Parquet loader, a list of structs is).
"""
from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "3"  # 3: pii_counts

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("date", pa.string()),  # ISO 8601 as given by the crawl or feed
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("char_count", pa.int64(), nullable=False),
        pa.field("byte_count", pa.int64(), nullable=False),  # UTF-8 bytes of text
        pa.field("raw_byte_count", pa.int64()),  # payload bytes before extraction
        pa.field("token_count", pa.int64()),
        pa.field("scores", pa.list_(pa.struct([pa.field("label", pa.string()), pa.field("prob", pa.float32())]))),
        pa.field("dedup_cluster", pa.string()),
        pa.field("dedup_cluster_size", pa.int64()),
        # spans the pii stage replaced, per type (never the values); [] none found, null: the stage did not run
        pa.field("pii_counts", pa.list_(pa.struct([pa.field("type", pa.string()), pa.field("count", pa.int64())]))),
        pa.field("file", pa.string()),  # input file the record came from
        pa.field("offset", pa.int64()),  # byte offset (WARC) or row/line index
    ],
    metadata={"mdfs.schema": "document", "mdfs.schema_version": SCHEMA_VERSION},
)

DROPPED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),  # e.g. the id of the copy kept
        pa.field("char_count", pa.int64()),
        pa.field("byte_count", pa.int64()),
        pa.field("excerpt", pa.string()),
        pa.field("file", pa.string()),
        pa.field("offset", pa.int64()),
    ],
    metadata={"mdfs.schema": "dropped", "mdfs.schema_version": SCHEMA_VERSION},
)

FAILED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("file", pa.string()),
        pa.field("offset", pa.int64()),  # byte offset (WARC) or row/line index
        pa.field("url", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error_kind", pa.string(), nullable=False),
        pa.field("message", pa.string()),
        # input records this row stands for: 1, or null for a damaged stretch
        # of unknown size (counted as unknown_size_stretches in funnel.json)
        pa.field("records", pa.int64()),
    ],
    metadata={"mdfs.schema": "failed", "mdfs.schema_version": SCHEMA_VERSION},
)

SCHEMAS = {"kept": DOCUMENT_SCHEMA, "dropped": DROPPED_SCHEMA, "failed": FAILED_SCHEMA}
