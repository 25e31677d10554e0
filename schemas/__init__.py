"""Arrow schemas of everything mdfs writes.

These are the contract with downstream pretraining jobs: the kept shards, the
dropped-documents audit dataset and the dead-letter (failed) dataset.  Columns
that later stages fill (language, scores, token count, dedup cluster) are
nullable so that every stage writes the same schema whether or not it ran.
``scores`` maps label to probability as a list of ``{label, prob}`` structs
(any classifier label set fits; Arrow's own map type is not readable by the
Hugging Face ``datasets`` Parquet loader, a list of structs is).  ``signals``
is every measurement the coarse rules, language ID and classifiers took of a
document, by stable name (docs/SIGNALS.md lists them with units and the
threshold that uses each); the candidate store (``output.candidates``) keeps
every document that reached the coarse rules, so ``mdfs refilter`` can apply
new thresholds without reading or extracting anything again.
"""
from __future__ import annotations

import pyarrow as pa

SIGNALS_TYPE = pa.list_(pa.struct([pa.field("name", pa.string()), pa.field("value", pa.float64())]))

SCHEMA_VERSION = "5"  # 3: pii_counts; 4: signals, candidates; 5: dedup_state

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
        # every measured signal (booleans as 0/1), see docs/SIGNALS.md; null: the coarse stage did not run
        pa.field("signals", SIGNALS_TYPE),
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
        # what was measured before the drop: every coarse signal from the coarse rules on
        # (a document a rule dropped has all of its language's), classifier scores at fine
        pa.field("signals", SIGNALS_TYPE),
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

# output.candidates: every document that reached the coarse rules, as the rules saw it
CANDIDATE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # the record key: joins, refilter
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("date", pa.string()),
        pa.field("language", pa.string(), nullable=False),
        pa.field("language_score", pa.float64(), nullable=False),
        # after normalisation, Traditional->Simplified and line cleaning: the text the rules measured
        pa.field("text", pa.string(), nullable=False),
        # the lines line-cleaning removed, in order, with the kind that removed each
        pa.field("removed_lines", pa.list_(pa.struct([pa.field("kind", pa.string()), pa.field("line", pa.string())]))),
        pa.field("signals", SIGNALS_TYPE, nullable=False),
        # the coarse verdict: null kept by the rules, else the rule (reason) and its detail
        pa.field("coarse_reason", pa.string()),
        pa.field("coarse_detail", pa.string()),
        pa.field("char_count", pa.int64(), nullable=False),
        pa.field("token_count", pa.int64(), nullable=False),  # of this text, with stats.tokenizer
        pa.field("replacement_chars_removed", pa.int64(), nullable=False),
        pa.field("raw_byte_count", pa.int64()),
        pa.field("file", pa.string()),
        pa.field("offset", pa.int64()),
    ],
    metadata={"mdfs.schema": "candidate", "mdfs.schema_version": SCHEMA_VERSION},
)

# classifier probabilities of candidates the fine stage scored (``fasttext.<label>``, ``bert.<label>``)
CANDIDATE_SCORES_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("scores", pa.list_(pa.struct([pa.field("label", pa.string()), pa.field("prob", pa.float64())])),
                 nullable=False),
    ],
    metadata={"mdfs.schema": "candidate_scores", "mdfs.schema_version": SCHEMA_VERSION},
)

# what a later run needs to deduplicate against this run's kept documents (``dedup_state/``,
# ``--dedup-against``): the exact-dedup hash and the MinHash signature of each kept document, with
# the parameters in ``dedup_state/_params.json``
DEDUP_STATE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text_hash", pa.binary(16), nullable=False),  # blake2b-128 of the exact-dedup normalised text
        pa.field("signature", pa.binary(), nullable=False),  # num_perm little-endian uint32 MinHash values
        pa.field("priority", pa.int64(), nullable=False),  # the source's priority in that run
        pa.field("date", pa.string()),
        pa.field("char_count", pa.int64(), nullable=False),
    ],
    metadata={"mdfs.schema": "dedup_state", "mdfs.schema_version": SCHEMA_VERSION},
)

SCHEMAS = {"kept": DOCUMENT_SCHEMA, "dropped": DROPPED_SCHEMA, "failed": FAILED_SCHEMA,
           "candidates": CANDIDATE_SCHEMA, "candidate_scores": CANDIDATE_SCORES_SCHEMA,
           "dedup_state": DEDUP_STATE_SCHEMA}

# what the corpus-wide dedup step (``pipeline/stages/dedup_corpus.py``) needs of each document, written by
# the job of the unit of input files it came from: its keep-rank fields, exact hash, MinHash signature
# and LSH band keys (null where that dedup stage is off)
DEDUP_ROW_SCHEMA = pa.schema(
    [
        pa.field("unit", pa.int64(), nullable=False),  # the unit of input files: decisions are written per unit
        pa.field("key", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("priority", pa.int64(), nullable=False),  # the source's priority (dedup_exact.source_priority)
        pa.field("date", pa.string()),
        pa.field("char_count", pa.int64(), nullable=False),  # len(text), the ``longest`` criterion
        pa.field("text_hash", pa.binary(16)),  # blake2b-128 of the exact-dedup normalised text
        pa.field("signature", pa.binary()),  # num_perm little-endian uint32 MinHash values
        pa.field("band_keys", pa.binary()),  # bands x 8 bytes: the digests of minhash.band_keys, in band order
        pa.field("shingle_unit", pa.string()),  # e.g. "char 5-grams" (near_dedup.json's documents_per_shingle_unit)
    ],
    metadata={"mdfs.schema": "dedup_row", "mdfs.schema_version": SCHEMA_VERSION},
)

# the corpus-wide dedup verdict of each document, one file per unit (``decisions/unit-NNNNN.parquet``)
DEDUP_DECISION_SCHEMA = pa.schema(
    [
        pa.field("unit", pa.int64(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),  # kept, exact_duplicate or near_duplicate
        pa.field("stage", pa.string()),  # exact_dedup or near_dedup for a duplicate, null if kept
        pa.field("detail", pa.string()),  # a duplicate's: the id of the copy kept (the dropped row's detail)
        pa.field("dedup_cluster", pa.string()),  # a kept document's, as near dedup sets it (null: near dedup off)
        pa.field("dedup_cluster_size", pa.int64()),
    ],
    metadata={"mdfs.schema": "dedup_decision", "mdfs.schema_version": SCHEMA_VERSION},
)

SCHEMAS.update(dedup_row=DEDUP_ROW_SCHEMA, dedup_decision=DEDUP_DECISION_SCHEMA)
