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
