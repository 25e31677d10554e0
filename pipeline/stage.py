"""The shape every stage shares: documents in, (kept, dropped, failed) out.

A stage is a ``beam.PTransform`` whose ``expand`` returns a ``StageResult``.
Inside DoFns, ``count_drop``/``count_fail`` tag the output and bump a Beam
counter named for the reason (live progress; the funnel itself is counted from
the collections, so it is exact on runners that report only committed metrics).
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from .records import DROPPED, FAILED, Dropped, Failed


class StageResult(NamedTuple):
    kept: beam.PCollection
    dropped: beam.PCollection
    failed: beam.PCollection


def count_drop(d: Dropped):
    beam.metrics.Metrics.counter("mdfs.dropped", f"{d.source}.{d.stage}.{d.reason}").inc()
    return beam.pvalue.TaggedOutput(DROPPED, d)


def count_fail(f: Failed):
    beam.metrics.Metrics.counter("mdfs.failed", f"{f.source}.{f.stage}.{f.error_kind}").inc()
    return beam.pvalue.TaggedOutput(FAILED, f)


def duplicate_key_failures(docs: list, stage: str):
    """Record keys are unique by construction (full path + position); should two
    documents still meet at a join under one key, every copy after the first
    is a dead letter that says so, never a silent pick."""
    for extra in docs[1:]:
        yield count_fail(Failed.of(extra, stage, "duplicate_key",
                                   f"record key {extra.key} also belongs to {docs[0].id} "
                                   f"({docs[0].file}@{docs[0].offset}); was a file read twice?"))
