"""Builds the mdfs Beam graph: sources -> read -> the declared document stages
(``stages.STAGES``: extract -> coarse -> decontaminate -> pii -> exact dedup ->
near dedup -> fine) -> kept, with every stage's dropped and failed records
flowing to their own sinks and all of them to the funnel and the statistics.
Nothing here knows a stage by name: each stage's declaration (``stage.Stage``)
says what it adds to the funnel, whether it changes the text and what else it
writes."""
from __future__ import annotations

import apache_beam as beam

from .stages.dedup_state import EarlierState, WriteDedupState
from .stages.dedup_exact import source_priorities
from .funnel import WriteFunnel
from .progress import LogProgress, progress_dir
from .io.readers import ReadSources
from .io.sinks import WriteRecords
from .stage import CORPUS, BuildContext, BundleTotals, Stage
from .stages import funnel_fields, running, skipped as skipped_stages  # noqa: F401 - skipped_stages: run.py's
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
    every = cfg.read.progress_every_s
    out = cfg.output
    raw, read_dropped, read_failed, skipped = p | "Read" >> ReadSources(
        cfg.sources, cfg.read, cfg.coarse.langid.model)
    raw = raw | "ProgressRead" >> beam.ParDo(LogProgress("records read", every, progress_dir(output_dir)))

    counts = [
        _count(raw, "Read", lambda r: [((r.source, "read"), 1)]),
        _count(read_dropped, "ReadDropped", lambda d: [((d.source, "read"), 1), *dropped_events(d)]),
        # dead letters of damaged stretches whose record count the container does not tell
        _count(read_failed, "ReadFailed", lambda f: [((f.source, "read"), 1), *failed_events(f)]
               + ([((f.source, "unknown_size_stretches"), 1)] if f.records is None else [])),
        _count(skipped, "Skipped", lambda s: [((s.source, "skipped", s.record_type), s.count)]),
    ]
    write_rejects(output_dir, out, "read", read_dropped, read_failed)
    stats_front = [raw | "TotalsStatsRead" >> beam.ParDo(BundleTotals(lambda r: [raw_stats(r)])),
                   read_dropped | "TotalsStatsReadDropped" >> beam.ParDo(BundleTotals(
                       lambda d: [((d.source, "read"), (1, d.byte_count or 0, 0, 0))])),
                   read_failed | "TotalsStatsReadFailed" >> beam.ParDo(BundleTotals(
                       lambda f: [((f.source, "read"), (1, 0, 0, 0))]))]
    build = build_context(cfg, output_dir)
    return apply_stages(build, raw, running(build), counts, stats_front)


def apply_stages(build: BuildContext, docs, stages: list[Stage], counts: list, stats_front: list,
                 counted: list | None = None, carried_rejects: dict | None = None) -> dict:
    """The document stages over ``docs``, then the kept sink, the funnel (from
    ``counts``: per-bundle event totals of everything before) and the
    statistics (``stats_front``: per-bundle ((source, stage), totals) of the
    streams before the stages).  ``counted``: stages a refilter carries (counted
    already, not run); ``carried_rejects``: {"dropped"/"failed": rows a refilter
    carries over from the earlier run's later-stage sink}, written with this run's."""
    cfg, output_dir = build.cfg, build.output_dir
    every = cfg.read.progress_every_s
    out = cfg.output
    carried_rejects = carried_rejects or {}
    later_dropped = [carried_rejects["dropped"]] if "dropped" in carried_rejects else []
    later_failed = [carried_rejects["failed"]] if "failed" in carried_rejects else []
    stage_names, stage_docs, corpus_marked = list(counted or []), {}, False
    # tokens are counted after each stage that may change the text, where the statistics need them
    # anyway (per stage); a later stage that leaves the text as it was keeps the count
    # (``Document.replace``), so the final text is counted again only where it changed
    tokenizer = cfg.stats.tokenizer
    from .progress import timing

    for stage in stages:
        name = stage.name
        with timing(progress_dir(output_dir), every):  # stage DoFns timed for the live progress
            result = docs | name.title().replace("_", "") >> stage.transform(build)
        stage_names.append(name)
        kept_here = result.kept
        if stage.changes_text:
            kept_here = kept_here | f"CountTokens[{name}]" >> beam.ParDo(CountTokensDoFn(tokenizer))
        counts += [_count(kept_here, f"After[{name}]",
                          lambda d, s=stage: [((d.source, "after", s.name), 1), *s.kept_events(d)]),
                   _count(result.dropped, f"Dropped[{name}]", lambda d, s=stage: dropped_events(d) + s.dropped_events(d)),
                   _count(result.failed, f"Failed[{name}]", failed_events)]
        for output, pcolls in (result.outputs or {}).items():  # declared extra outputs with funnel events
            counts += [_count(pc, f"{output.title()}{i}[{name}]", stage.output_events[output])
                       for i, pc in enumerate(pcolls)]
        later_dropped.append(result.dropped)
        later_failed.append(result.failed)
        docs = stage_docs[name] = kept_here
        if stage.scope == CORPUS and not corpus_marked:  # the job's phase: past the first whole-corpus shuffle
            corpus_marked = True
            docs = docs | "ProgressDedup" >> beam.ParDo(LogProgress("documents deduplicated", every,
                                                                    progress_dir(output_dir)))
    # Rejects after the read stage share one sink per kind: a Parquet sink costs ~0.1 s of graph
    # construction and a dozen runner stages, and these streams are bounded by what was extracted
    # (the read stage's streams, the big ones on a real crawl, have their own sinks above)
    write_rejects(output_dir, out, "stages", later_dropped | "StageDropped" >> beam.Flatten(),
                  later_failed | "StageFailed" >> beam.Flatten())

    kept = docs | "ProgressKept" >> beam.ParDo(LogProgress("documents kept", every, progress_dir(output_dir)))
    counts.append(_count(kept, "Kept", lambda d: [((d.source, "kept"), 1)]))
    kept | "WriteKept" >> WriteRecords("kept", output_dir, out.compression, out.kept_shards)
    if out.dedup_state:  # what a later run deduplicates against (--dedup-against)
        kept | "DedupState" >> WriteDedupState(cfg, output_dir, source_priorities(cfg))
    (counts | "AllCounts" >> beam.Flatten()
     | "Funnel" >> WriteFunnel(f"{output_dir.rstrip('/')}/funnel.json", stage_names, list(cfg.sources),
                               funnel_fields(cfg)))
    ({"front": stats_front | "TotalsStatsFront" >> beam.Flatten(), "stages": stage_docs, "kept": kept}
     | "Stats" >> WriteStats(f"{output_dir.rstrip('/')}/stats/pipeline_stats.json", tokenizer))
    return {"kept": kept}


def write_rejects(output_dir: str, out, stage: str, dropped, failed) -> None:
    dropped | f"WriteDropped[{stage}]" >> WriteRecords("dropped", output_dir, out.compression, name=f"part-{stage}")
    failed | f"WriteFailed[{stage}]" >> WriteRecords("failed", output_dir, out.compression, name=f"part-{stage}")


def dropped_events(d):
    return [((d.source, "dropped", d.stage, d.reason), 1)]


def failed_events(f):
    return [((f.source, "failed", f.stage, f.error_kind), 1)]
