"""The shape every stage shares, and the declaration that makes it one unit.

A stage's graph is a ``beam.PTransform`` whose ``expand`` returns a
``StageResult``: documents in, (kept, dropped, failed) out, plus any declared
extra outputs.  Its DoFns get a ``StageContext`` (the stage's name and the
excerpt length of dropped rows) and say ``yield self.ctx.drop(doc, reason,
detail)`` or ``yield self.ctx.fail(doc, error_kind, message)``: that builds the
row, tags the output and bumps a Beam counter named for the reason (live
progress; the funnel itself is counted from the collections, so it is exact on
runners that report only committed metrics).  ``apply_stage`` turns such a
DoFn into a ``StageResult``.

A ``Stage`` declares everything else the pipeline, the funnel, refilter and
the docs need to know about a stage, so that none of them branches on its
name: its place (the list in ``stages.py``), its configuration section,
whether it is on and why not, the funnel entries it fills, whether it changes
the text, what a refilter does with it, its outputs beyond kept, dropped and
failed, and whether it works document by document or needs the whole corpus.
Adding a stage is its module plus one line in ``stages.STAGES``::

    class ShoutDoFn(beam.DoFn):
        def __init__(self, ctx: StageContext):
            self.ctx = ctx

        def process(self, doc):
            yield doc.replace(text=doc.text.upper())

    class Shout(Stage):
        name, section, changes_text = "shout", None, True

        def transform(self, build: BuildContext) -> beam.PTransform:
            return DoFnStage("Shout", ShoutDoFn(self.context(build)))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Optional

import apache_beam as beam

from .records import DROPPED, FAILED, Dropped, Failed


class StageResult(NamedTuple):
    kept: beam.PCollection
    dropped: beam.PCollection
    failed: beam.PCollection
    # declared extra outputs (``Stage.output_events`` names them): name -> [PCollection, ...]
    outputs: Optional[dict] = None

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



# --- the declaration ---------------------------------------------------------------------

DOCUMENT, CORPUS = "document", "corpus"  # Stage.scope
RECOMPUTE, REUSE, CARRY = "recompute", "reuse", "carry"  # Stage.refilter
COUNT, BY_NAME = "count", "by_name"  # shapes of a funnel entry: a number, or {name: number}


@dataclass(frozen=True)
class BuildContext:
    """What a stage's graph is built from: the validated configuration, the
    output directory (None in tests that build a graph without one), and,
    for ``mdfs refilter``, what the earlier run stored (``refilter``)."""

    cfg: Any
    output_dir: Optional[str] = None
    refilter: Optional["RefilterInputs"] = None
    earlier: Any = None  # dedup_state.EarlierState of --dedup-against, or None

    @property
    def excerpt_chars(self) -> int:
        return self.cfg.output.excerpt_chars

    @property
    def candidates(self) -> Optional[dict]:
        """Where the candidate store goes (``output.candidates``), or None."""
        if not (self.cfg.output.candidates and self.output_dir):
            return None
        return {"output_dir": self.output_dir, "compression": self.cfg.output.compression}


@dataclass(frozen=True)
class RefilterInputs:
    """A refilter's view of the earlier run: ``stored_tokens``: its stored token
    counts hold for this run's tokenizer."""

    stored_tokens: bool = True


class Stage:
    """One declared document stage.  Subclasses set the class attributes and
    implement ``transform``; the rest has defaults."""

    name: ClassVar[str]
    section: ClassVar[Optional[str]] = None  # its configuration section (``mdfs config``, docs)
    scope: ClassVar[str] = DOCUMENT  # DOCUMENT: one document at a time; CORPUS: needs the whole corpus
    # a CORPUS stage whose decisions dedup_corpus.decide makes from per-document rows, so that a run
    # in units of files (commands/units.py) can stand a VerdictStage in for it
    rows_decided: ClassVar[bool] = False
    # False: it writes a report of everything it saw, once per job, so a run in units of files
    # (several jobs) would keep only the last job's; such a run is then one job
    in_units: ClassVar[bool] = True
    changes_text: ClassVar[bool] = False  # tokens are counted after each running stage that does
    refilter: ClassVar[str] = RECOMPUTE  # RECOMPUTE: run again; REUSE: from stored values; CARRY: not run
    optional: ClassVar[bool] = False  # off unless configured, and then not listed as skipped
    header: ClassVar[Optional[str]] = None  # a short column header for the funnel table (80 columns)
    outputs: ClassVar[tuple] = ()  # output parts it writes beyond kept/dropped/failed
    funnel_fields: ClassVar[dict] = {}  # funnel entry it fills -> COUNT or BY_NAME

    def why_off(self, cfg) -> Optional[str]:
        """None when the stage runs with ``cfg``; otherwise the reason."""
        return None

    def check(self, cfg) -> list:
        """Problems with its settings, found on the launcher before anything is
        written (one line each); may record what it resolved in ``cfg``, which
        config.yaml then holds."""
        return []

    def runs(self, build: BuildContext) -> bool:
        """Whether it is in this job's graph: on, and not carried by a refilter."""
        return self.why_off(build.cfg) is None and not (build.refilter is not None and self.refilter == CARRY)

    def context(self, build: BuildContext) -> "StageContext":
        return StageContext(self.name, build.excerpt_chars)

    def transform(self, build: BuildContext) -> beam.PTransform:
        raise NotImplementedError

    # funnel events beyond what every stage gets (after/dropped/failed): ((source, kind, *rest), n)
    def kept_events(self, doc) -> list:
        return []

    def dropped_events(self, row) -> list:
        return []

    # name of a declared extra output (StageResult.outputs) -> events of each of its elements
    output_events: ClassVar[dict] = {}

    def carries(self, kind: str, row) -> bool:
        """Whether a refilter carries an earlier run's dropped/failed row of this
        stage over unchanged (``kind``: "dropped" or "failed")."""
        return self.refilter == CARRY


class DoFnStage(beam.PTransform):
    """A stage whose graph is one DoFn (``apply_stage``)."""

    def __init__(self, label: str, dofn: beam.DoFn):
        super().__init__()
        self.label, self.dofn = label, dofn

    def expand(self, docs):
        return apply_stage(docs, self.label, self.dofn)


def load_stage(spec: str) -> "Stage":
    """``module:Class`` (a user's own stage, named in the configuration) -> an instance."""
    import importlib

    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"stage {spec!r}: expected module:Class")
    obj = getattr(importlib.import_module(module), attr)
    if not (isinstance(obj, type) and issubclass(obj, Stage)):
        raise ValueError(f"stage {spec}: {attr} is not a subclass of mdfs.pipeline.stage.Stage")
    if not getattr(obj, "name", None):
        raise ValueError(f"stage {spec}: {attr} declares no name")
    return obj()
