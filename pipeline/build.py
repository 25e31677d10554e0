"""Builds the mdfs Beam graph: sources -> read -> the declared document stages
(``stages.STAGES``: extract -> coarse -> decontaminate -> pii -> exact dedup ->
near dedup -> fine) -> kept, with every stage's dropped and failed records
flowing to their own sinks and all of them to the funnel and the statistics.
Nothing here knows a stage by name: each stage's declaration (``stage.Stage``)
says what it adds to the funnel, whether it changes the text and what else it
writes."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from .stages.dedup_state import EarlierState, WriteDedupState
from .stages.dedup_exact import source_priorities
from .funnel import WriteFunnel
from .progress import LogProgress, progress_dir
from .io.readers import ReadSources
from .io.sinks import ReadStaged, WriteRecords, WriteStaged, shard_tag
from .stage import CORPUS, BuildContext, BundleTotals, Stage
from .stages import funnel_fields, running, split_stages, skipped as skipped_stages  # noqa: F401 - skipped_stages: run.py's
from .stats import CountTokensDoFn, WriteStats, raw_stats


def build_context(cfg, output_dir: str | None, refilter=None) -> BuildContext:
    earlier = EarlierState(cfg.dedup_against) if cfg.dedup_against else None  # --dedup-against
    return BuildContext(cfg, output_dir, refilter, earlier)


def _count(pcoll, label: str, events):
    """Funnel events of one stream, summed per bundle where the records are
    (``BundleTotals``): only a few (key, n) pairs leave the stage, so
    per-record streams never reach a multi-input Flatten, which local runners
    hold in memory."""
    return pcoll | f"Totals{label}" >> beam.ParDo(BundleTotals(events))


def build_pipeline(p: beam.Pipeline, cfg, output_dir: str) -> dict:
    """Adds the whole job to ``p``; returns the main PCollections (for tests).

    Memory: the read stage's records, dropped and failed rows (most of a real
    crawl) never meet another stream in a Flatten, which local runners hold in
    memory: they have their own sinks (``dropped/part-read-*.parquet``), and
    funnel events and statistics are summed per bundle where they are
    produced.  The later stages' rejects, bounded by what was extracted, share
    one sink per kind (``dropped/part-stages-*.parquet``)."""
    raw, counts, stats_front = read_front(p, cfg, output_dir)
    build = build_context(cfg, output_dir)
    return apply_stages(build, raw, running(build), counts, stats_front)


def read_front(p: beam.Pipeline, cfg, output_dir: str, only=None) -> tuple:
    """The read stage: (records, funnel event totals, statistics totals), its
    dropped and failed rows written to their own sinks.  ``only``: (files, with
    unreadable entries) of a unit (``ReadSources``)."""
    every = cfg.read.progress_every_s
    raw, read_dropped, read_failed, skipped = p | "Read" >> ReadSources(
        cfg.sources, cfg.read, cfg.coarse.langid.model, only=only)
    raw = raw | "ProgressRead" >> beam.ParDo(LogProgress("records read", every, progress_dir(output_dir)))
    counts = [
        _count(raw, "Read", lambda r: [((r.source, "read"), 1)]),
        _count(read_dropped, "ReadDropped", lambda d: [((d.source, "read"), 1), *dropped_events(d)]),
        # dead letters of damaged stretches whose record count the container does not tell
        _count(read_failed, "ReadFailed", lambda f: [((f.source, "read"), 1), *failed_events(f)]
               + ([((f.source, "unknown_size_stretches"), 1)] if f.records is None else [])),
        _count(skipped, "Skipped", lambda s: [((s.source, "skipped", s.record_type), s.count)]),
    ]
    write_rejects(output_dir, cfg.output, "read", read_dropped, read_failed)
    stats_front = [raw | "TotalsStatsRead" >> beam.ParDo(BundleTotals(lambda r: [raw_stats(r)])),
                   read_dropped | "TotalsStatsReadDropped" >> beam.ParDo(BundleTotals(
                       lambda d: [((d.source, "read"), (1, d.byte_count or 0, 0, 0))])),
                   read_failed | "TotalsStatsReadFailed" >> beam.ParDo(BundleTotals(
                       lambda f: [((f.source, "read"), (1, 0, 0, 0))]))]
    return raw, counts, stats_front


@dataclass(frozen=True)
class UnitJob:
    """One Beam job of a run in units of files (``commands/units.py``)."""

    index: int
    pass_: int  # 1: read and the stages before the corpus-scope ones; 2: their verdicts and the rest
    folder: str  # the unit's staging folder, OUTPUT/_units/unit-NNNNN
    files: frozenset = frozenset()  # pass 1: the (source, path) pairs it reads
    unreadable: bool = False  # pass 1: it also takes the glob entries that are not readable files
    decisions: str = ""  # pass 2: the unit's verdict file (dedup_corpus.decide)

    @property
    def tag(self) -> str:
        """In the names of the shards it writes: a resume removes an unfinished job's by it."""
        return f"u{self.index:05d}p{self.pass_}"

    @property
    def totals(self) -> str:
        return f"{self.folder}/p{self.pass_}"


def build_unit(p: beam.Pipeline, cfg, output_dir: str, job: UnitJob) -> dict:
    """One unit's job: pass 1 reads its files through the stages before the first
    corpus-scope one and stages the documents and their dedup rows; pass 2 applies the
    corpus-wide dedup verdicts (``VerdictStage``) and the stages after them."""
    from .stages.dedup_verdicts import VerdictStage

    build = build_context(cfg, output_dir)
    stages = running(build)
    head, corpus, tail = split_stages(stages)
    with shard_tag(job.tag):
        if job.pass_ == 1:
            raw, counts, stats_front = read_front(p, cfg, output_dir, (job.files, job.unreadable))
            return apply_stages(build, raw, head, counts, stats_front, unit=job)
        every = cfg.read.progress_every_s
        docs = (p | "ReadStaged" >> ReadStaged(f"{job.folder}/p1/docs/part-*.parquet")
                | "ProgressStaged" >> beam.ParDo(LogProgress("documents staged", every, progress_dir(output_dir))))
        verdicts = [VerdictStage(s, job.decisions) for s in corpus]
        front = [p | "NoReadStats" >> beam.Create([])]
        return apply_stages(build, docs, verdicts + tail, [], front, unit=job)


def _stage_documents(build: BuildContext, docs, job: UnitJob) -> None:
    """Pass 1's end: the documents for pass 2, and their dedup rows for the corpus-wide step."""
    from apache_beam.io.parquetio import WriteToParquet

    from mdfs.schemas import DEDUP_ROW_SCHEMA
    from .stages.dedup_corpus import DedupRowDoFn

    cfg = build.cfg
    docs | "StageDocuments" >> WriteStaged(f"{job.folder}/p1/docs/part", cfg.output.compression)
    (docs | "DedupRows" >> beam.ParDo(DedupRowDoFn(cfg, source_priorities(cfg), job.index))
     # row groups of about dedup_corpus.ROW_GROUP rows (~1.2 KB each): decide() reads one group at a time
     | "WriteDedupRows" >> WriteToParquet(f"{job.folder}/p1/rows/part", DEDUP_ROW_SCHEMA, codec=cfg.output.compression,
                                          file_name_suffix=".parquet", record_batch_size=1024,
                                          row_group_buffer_size=10 * 1024 * 1024))


def apply_stages(build: BuildContext, docs, stages: list[Stage], counts: list, stats_front: list,
                 counted: list | None = None, carried_rejects: dict | None = None, unit: UnitJob | None = None
                 ) -> dict:
    """The document stages over ``docs``, then the kept sink, the funnel (from
    ``counts``: per-bundle event totals of everything before) and the
    statistics (``stats_front``: per-bundle ((source, stage), totals) of the
    streams before the stages).  ``counted``: stages a refilter carries (counted
    already, not run); ``carried_rejects``: {"dropped"/"failed": rows a refilter
    carries over from the earlier run's later-stage sink}, written with this run's.
    ``unit``: a job of a run in units of files: pass 1 ends in the staged documents
    instead of the kept sink, and each pass writes its funnel events and statistics
    as totals to ``unit.totals``, which ``commands/units.py`` sums over the jobs
    (tokens are counted after each stage that changes the text, and staged documents
    carry their count into pass 2)."""
    cfg, output_dir = build.cfg, build.output_dir
    carried_rejects = carried_rejects or {}
    later = {kind: [carried_rejects[kind]] if kind in carried_rejects else [] for kind in ("dropped", "failed")}
    stage_names = list(counted or [])
    docs, stage_docs = _chain(build, docs, stages, counts, later, stage_names)
    # Rejects after the read stage share one sink per kind: a Parquet sink costs ~0.1 s of graph
    # construction and a dozen runner stages, and these streams are bounded by what was extracted
    # (the read stage's streams, the big ones on a real crawl, have their own sinks)
    write_rejects(output_dir, cfg.output, "stages", later["dropped"] | "StageDropped" >> beam.Flatten(),
                  later["failed"] | "StageFailed" >> beam.Flatten())
    kept = None
    if unit is not None and unit.pass_ == 1:
        _stage_documents(build, docs, unit)
    else:
        kept = _write_kept(build, docs, counts)
    raw = unit is not None  # a unit's job writes totals: the run's files are assembled from all jobs'
    where = unit.totals if raw else output_dir.rstrip("/")
    (counts | "AllCounts" >> beam.Flatten()
     | "Funnel" >> WriteFunnel(f"{where}/funnel.json", stage_names, list(cfg.sources), funnel_fields(cfg), raw=raw))
    ({"front": stats_front | "TotalsStatsFront" >> beam.Flatten(), "stages": stage_docs,
      **({"kept": kept} if kept is not None else {})}
     | "Stats" >> WriteStats(f"{where}/stats.json" if raw else f"{where}/stats/pipeline_stats.json",
                             cfg.stats.tokenizer, raw=raw))
    return {"kept": kept}


def _chain(build: BuildContext, docs, stages: list[Stage], counts: list, later: dict, stage_names: list) -> tuple:
    """Each stage over the documents the one before kept, its funnel events appended to
    ``counts``, its rejects to ``later``: (the last stage's documents, {stage: documents})."""
    from .progress import timing

    every, output_dir = build.cfg.read.progress_every_s, build.output_dir
    stage_docs, corpus_marked = {}, False
    for stage in stages:
        name = stage.name
        with timing(progress_dir(output_dir), every):  # stage DoFns timed for the live progress
            result = docs | name.title().replace("_", "") >> stage.transform(build)
        stage_names.append(name)
        kept_here = result.kept
        if stage.changes_text:
            kept_here = kept_here | f"CountTokens[{name}]" >> beam.ParDo(CountTokensDoFn(build.cfg.stats.tokenizer))
        counts += [_count(kept_here, f"After[{name}]",
                          lambda d, s=stage: [((d.source, "after", s.name), 1), *s.kept_events(d)]),
                   _count(result.dropped, f"Dropped[{name}]", lambda d, s=stage: dropped_events(d) + s.dropped_events(d)),
                   _count(result.failed, f"Failed[{name}]", failed_events)]
        for output, pcolls in (result.outputs or {}).items():  # declared extra outputs with funnel events
            counts += [_count(pc, f"{output.title()}{i}[{name}]", stage.output_events[output])
                       for i, pc in enumerate(pcolls)]
        later["dropped"].append(result.dropped)
        later["failed"].append(result.failed)
        docs = stage_docs[name] = kept_here
        if stage.scope == CORPUS and not corpus_marked:  # the job's phase: past the first whole-corpus shuffle
            corpus_marked = True
            docs = docs | "ProgressDedup" >> beam.ParDo(LogProgress("documents deduplicated", every,
                                                                    progress_dir(output_dir)))
    return docs, stage_docs


def _write_kept(build: BuildContext, docs, counts: list):
    cfg, output_dir, out = build.cfg, build.output_dir, build.cfg.output
    kept = docs | "ProgressKept" >> beam.ParDo(LogProgress("documents kept", cfg.read.progress_every_s,
                                                           progress_dir(output_dir)))
    counts.append(_count(kept, "Kept", lambda d: [((d.source, "kept"), 1)]))
    kept | "WriteKept" >> WriteRecords("kept", output_dir, out.compression, out.kept_shards)
    if out.dedup_state:  # what a later run deduplicates against (--dedup-against)
        kept | "DedupState" >> WriteDedupState(cfg, output_dir, source_priorities(cfg))
    return kept


def write_rejects(output_dir: str, out, stage: str, dropped, failed) -> None:
    dropped | f"WriteDropped[{stage}]" >> WriteRecords("dropped", output_dir, out.compression, name=f"part-{stage}")
    failed | f"WriteFailed[{stage}]" >> WriteRecords("failed", output_dir, out.compression, name=f"part-{stage}")


def dropped_events(d):
    return [((d.source, "dropped", d.stage, d.reason), 1)]


def failed_events(f):
    return [((f.source, "failed", f.stage, f.error_kind), 1)]
