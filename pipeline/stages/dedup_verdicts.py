"""The corpus-wide dedup step's verdicts as stages of a unit's second job.

In a run in units of files (``commands/units.py``) the corpus-scope stages
do not run as Beam joins: ``dedup_corpus.decide`` makes their decisions over
the whole corpus and writes one verdict file per unit.  Each such stage is
replaced in the unit's second job by a ``VerdictStage``: the same name,
funnel entries and place in the list, and a DoFn that reads the unit's
verdicts once (the unit's file only: bounded by the unit) and does to each
document what the Beam stage does (``dedup_corpus.verdict_of``): drops it
with the same reason and detail, or passes it on with the same fields set.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional

import apache_beam as beam
import pyarrow.parquet as pq

from ..stage import BuildContext, DoFnStage, Stage, StageContext

from .dedup_corpus import NEAR, STAGES


class Verdict(NamedTuple):
    verdict: str  # kept, exact_duplicate, near_duplicate
    stage: Optional[str]  # the stage that drops it, or None
    detail: Optional[str]  # the id of the copy kept
    dedup_cluster: Optional[str]
    dedup_cluster_size: Optional[int]


def load_verdicts(path: str) -> dict:
    """Record key -> ``Verdict`` of one unit's decision file ({} when the unit staged
    no document: ``decide`` writes no file for it)."""
    if not os.path.exists(path):
        return {}
    t = pq.read_table(path, columns=["key", *Verdict._fields])
    cols = [t.column(c).to_pylist() for c in Verdict._fields]
    return {key: Verdict(*v) for key, *v in zip(t.column("key").to_pylist(), *cols)}


def verdict_of(stage: str, v: Verdict) -> tuple:
    """What the Beam stage named ``stage`` does with a document whose decision is ``v``:
    ((reason, detail), None) drops it (``ctx.drop``); (None, changes) passes it on with
    ``changes``: near dedup sets ``dedup_cluster`` and its size on every copy it keeps
    (``dedup_near._ApplyNearDecision``), exact dedup changes nothing."""
    if v.stage == stage:
        return (v.verdict, v.detail), None
    if stage == STAGES[NEAR]:
        return None, {"dedup_cluster": v.dedup_cluster, "dedup_cluster_size": v.dedup_cluster_size}
    return None, {}


class ApplyVerdictsDoFn(beam.DoFn):
    def __init__(self, ctx: StageContext, path: str):
        self.ctx, self.path = ctx, path

    def setup(self):
        self._verdicts = load_verdicts(self.path)

    def process(self, doc):
        row = self._verdicts.get(doc.key)
        if row is None:  # its unit's rows lost it: a bug, never a silent keep
            yield self.ctx.fail(doc, "no_dedup_decision", f"no verdict for record key {doc.key} in {self.path}")
            return
        drop, changes = verdict_of(self.ctx.name, row)
        if drop is not None:
            yield self.ctx.drop(doc, *drop)
        else:
            yield doc.replace(**changes) if changes else doc


class VerdictStage(Stage):
    """A declared corpus-scope stage whose decisions come from the unit's verdict file."""

    def __init__(self, declared: Stage, path: str):
        self.declared, self.path = declared, path
        self.name, self.section, self.scope = declared.name, declared.section, declared.scope
        self.header, self.outputs, self.funnel_fields = declared.header, declared.outputs, declared.funnel_fields
        self.output_events = {}  # a verdict stage has no extra outputs

    def why_off(self, cfg):
        return self.declared.why_off(cfg)

    def kept_events(self, doc) -> list:
        return self.declared.kept_events(doc)

    def dropped_events(self, row) -> list:
        return self.declared.dropped_events(row)

    def transform(self, build: BuildContext) -> beam.PTransform:
        return DoFnStage("Verdicts", ApplyVerdictsDoFn(self.context(build), self.path))
