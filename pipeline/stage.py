"""The shape every stage shares: documents in, (kept, dropped, failed) out.

A stage is a ``beam.PTransform`` whose ``expand`` returns a ``StageResult``.
Its DoFns get a ``StageContext`` (the stage's name and the excerpt length of
dropped rows) and say ``yield self.ctx.drop(doc, reason, detail)`` or
``yield self.ctx.fail(doc, error_kind, message)``: that builds the row, tags
the output and bumps a Beam counter named for the reason (live progress; the
funnel itself is counted from the collections, so it is exact on runners that
report only committed metrics).  ``apply_stage`` turns such a DoFn into a
``StageResult``; a new stage enters the graph in ``build.build_stages``
(docs/ARCHITECTURE.md lists what else a stage touches today)::

    class Shout(beam.PTransform):
        def __init__(self, ctx: StageContext):
            super().__init__()
            self.ctx = ctx

        def expand(self, docs):
            return apply_stage(docs, "Shout", ShoutDoFn(self.ctx))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import apache_beam as beam

from .records import DROPPED, FAILED, Dropped, Failed


class StageResult(NamedTuple):
    kept: beam.PCollection
    dropped: beam.PCollection
    failed: beam.PCollection

    @classmethod
    def passthrough(cls, kept: beam.PCollection, label: str) -> "StageResult":
        """A stage that drops and fails nothing (e.g. a benchmark mode)."""
        p = kept.pipeline
        return cls(kept, p | f"{label}NoDrops" >> beam.Create([]), p | f"{label}NoFailures" >> beam.Create([]))


@dataclass(frozen=True)
class StageContext:
    """What every stage's DoFns need besides their own settings."""

    name: str
    excerpt_chars: int = 200

    def drop(self, rec, reason: str, detail: str | None = None):
        return count_drop(Dropped.of(rec, self.name, reason, detail, excerpt_chars=self.excerpt_chars))

    def fail(self, rec, error_kind: str, message: str):
        return count_fail(Failed.of(rec, self.name, error_kind, message))


def apply_stage(pcoll: beam.PCollection, label: str, dofn: beam.DoFn, *extra_tags: str):
    """``ParDo(dofn)`` with the dropped and failed outputs: a ``StageResult``, or
    with ``extra_tags`` the tagged outputs themselves (``out.kept``, ``out[tag]``)."""
    from .progress import timed

    stage = getattr(getattr(dofn, "ctx", None), "name", None) or label
    out = pcoll | label >> beam.ParDo(timed(dofn, stage)).with_outputs(DROPPED, FAILED, *extra_tags, main="kept")
    return out if extra_tags else StageResult(out.kept, out[DROPPED], out[FAILED])


def count_drop(d: Dropped):
    beam.metrics.Metrics.counter("mdfs.dropped", f"{d.source}.{d.stage}.{d.reason}").inc()
    return beam.pvalue.TaggedOutput(DROPPED, d)


def count_fail(f: Failed):
    beam.metrics.Metrics.counter("mdfs.failed", f"{f.source}.{f.stage}.{f.error_kind}").inc()
    return beam.pvalue.TaggedOutput(FAILED, f)


def duplicate_key_failures(docs: list, ctx: StageContext):
    """Record keys are unique by construction (full path + position); should two
    documents still meet at a join under one key, every copy after the first
    is a dead letter that says so, never a silent pick."""
    for extra in docs[1:]:
        yield ctx.fail(extra, "duplicate_key", f"record key {extra.key} also belongs to {docs[0].id} "
                                               f"({docs[0].file}@{docs[0].offset}); was a file read twice?")


def _add(a, b):
    return a + b if not isinstance(a, tuple) else tuple(x + y for x, y in zip(a, b))


class BundleTotals(beam.DoFn):
    """Per-record (key, value) pairs, summed within each bundle: one element per
    key and bundle leaves the producing stage.  Funnel events and statistics
    use it so that no per-record stream reaches a shuffle or a multi-input
    Flatten (local runners hold those in memory), without a combine (a
    shuffle stage) per stream.  Values are numbers or tuples of numbers."""

    def __init__(self, pairs=None):
        self.pairs = pairs  # element -> iterable of (key, value); or override pairs_of

    def pairs_of(self, element):
        return self.pairs(element)

    def start_bundle(self):
        self._totals = {}

    def process(self, element):
        totals = self._totals
        for key, value in self.pairs_of(element):
            totals[key] = _add(totals[key], value) if key in totals else value

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        for key, value in self._totals.items():
            yield GlobalWindows.windowed_value((key, value))
        self._totals = {}

