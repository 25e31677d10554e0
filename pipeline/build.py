"""Builds the mdfs Beam graph: sources -> read -> extract -> coarse ->
decontaminate -> pii -> exact dedup -> near dedup -> fine -> kept, with every
stage's dropped and failed records flowing to their own sinks and all of them
to the funnel and the statistics.  A stage enters the graph in ``build_stages``
(see ``stage.py``; the funnel's extra events per stage are in ``run_stages``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam

from .coarse import CoarseFilter, source_languages
from . import decontaminate
from .dedup_exact import ExactDedup
from .dedup_state import EarlierState, WriteDedupState
from .dedup_near import NearDedup
from .extract import Extract
from .fine import FineFilter, is_configured
from .funnel import WriteFunnel
from .pii import PiiFilter, settings_for
from .progress import LogProgress, progress_dir
from .readers import ReadSources
from .sinks import WriteRecords
from .stage import BundleTotals
from .records import Dropped, ScoredCandidate
from .stats import CountTokensDoFn, WriteStats, raw_stats

if TYPE_CHECKING:
    from .schema import MdfsConfig, Output as OutputSection

def source_priorities(cfg: MdfsConfig) -> dict[str, int]:
    return {name: src.priority for name, src in cfg.sources.items()}


def candidate_sink(cfg: MdfsConfig, output_dir: str | None) -> dict | None:
    """Where candidates go (``output.candidates``), or None."""
    if not (cfg.output.candidates and output_dir):
        return None
    return {"output_dir": output_dir, "compression": cfg.output.compression}


def build_stages(cfg: MdfsConfig, output_dir: str | None = None, refilter: beam.PTransform | None = None
                 ) -> list[tuple[str, beam.PTransform]]:
    """The document stages in order; each returns a StageResult.  ``refilter``:
    the transform that stands for extraction and coarse rules when a run is
    re-thresholded from its candidates (``pipeline/refilter.py``)."""
    excerpt = cfg.output.excerpt_chars
    if refilter is not None:
        stages = [("coarse", refilter)]
    else:
        # TODO(#36 typed config): extract converts after the split; it reads the section as a mapping today
        stages = [("extract", Extract(cfg.extract.model_dump(), cfg.read.max_invalid_utf8_share, excerpt))]
        if cfg.coarse.enabled:
            stages.append(("coarse", CoarseFilter(cfg.coarse, source_languages(cfg), excerpt,
                                                  candidate_sink(cfg, output_dir), cfg.stats.tokenizer)))
    # TODO(#36 typed config): decontaminate converts after the split; it reads the section as given
    dc = cfg.as_dict()["decontamination"]
    if decontaminate.is_configured(dc) and output_dir:
        stages.append(("decontaminate", decontaminate.Decontaminate(
            dc, output_dir, cfg.coarse.traditional_chinese, excerpt)))
    if pii_runs(cfg):
        stages.append(("pii", PiiFilter(cfg.pii, cfg.sources, excerpt)))
    earlier = EarlierState(cfg.dedup_against) if cfg.dedup_against else None  # --dedup-against
    if cfg.exact_dedup.enabled:
        stages.append(("exact_dedup", ExactDedup(cfg.exact_dedup, source_priorities(cfg), excerpt, earlier)))
    if cfg.near_dedup.enabled:
        stats = f"{output_dir.rstrip('/')}/near_dedup.json" if output_dir else None
        stages.append(("near_dedup", NearDedup(cfg.near_dedup, source_priorities(cfg), excerpt, stats,
                                               earlier)))
    if is_configured(cfg.fine):
        stages.append(("fine", FineFilter(cfg.fine, excerpt, cfg.coarse.langid.model,
                                          stored=refilter is not None)))
    return stages


def pii_runs(cfg: MdfsConfig) -> bool:
    """The pii stage runs when it is on, or on for at least one source."""
    return any(settings_for(cfg.pii, src)[0] for src in cfg.sources.values())


def skipped_stages(cfg: MdfsConfig) -> dict[str, str]:
    """Stages that will not run, with the reason to tell the user."""
    out = {}
    if not pii_runs(cfg):
        out["pii"] = "disabled (pii.enabled: false)"
    for name in ("coarse", "exact_dedup", "near_dedup"):
        if not getattr(cfg, name).enabled:
            out[name] = f"disabled ({name}.enabled: false)"
    if not is_configured(cfg.fine):
        out["fine"] = "no classifier configured (set fine.fasttext_model or fine.bert_model)"
    return out


def _count(pcoll, label: str, events):
    """Funnel events of one stream, summed per bundle where the records are
    (``BundleTotals``): only a few (key, n) pairs leave the stage, so
    per-record streams never reach a multi-input Flatten, which local runners
    hold in memory."""
    return pcoll | f"Totals{label}" >> beam.ParDo(BundleTotals(events))


def build_pipeline(p: beam.Pipeline, cfg: MdfsConfig, output_dir: str) -> dict:
    """Adds the whole job to ``p``; returns the main PCollections (for tests).

    Memory: the read stage's records, dropped and failed rows (most of a real
    crawl) never meet another stream in a Flatten, which local runners hold in
    memory: they have their own sinks (``dropped/part-read-*.parquet``), and
    funnel events and statistics are summed per bundle where they are
    produced.  The later stages' rejects, bounded by what was extracted, share
    one sink per kind (``dropped/part-stages-*.parquet``)."""
    every = cfg.read.progress_every_s
    out = cfg.output
    given = cfg.as_dict()  # TODO(#36 typed config): readers convert after the split; they read mappings today
    raw, read_dropped, read_failed, skipped = p | "Read" >> ReadSources(
        given["sources"], given["read"], cfg.coarse.langid.model)
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
    return run_stages(cfg, output_dir, raw, build_stages(cfg, output_dir), counts, stats_front)


def run_stages(cfg: MdfsConfig, output_dir: str, docs, stages: list, counts: list, stats_front: list,
               stage_names: list | None = None, carried_rejects: dict | None = None) -> dict:
    """The document stages over ``docs``, then the kept sink, the funnel (from
    ``counts``: per-bundle event totals of everything before) and the
    statistics (``stats_front``: per-bundle ((source, stage), totals) of the
    streams before the stages).  ``stage_names``: stages already counted;
    ``carried_rejects``: {"dropped"/"failed": rows a refilter carries over
    from the earlier run's later-stage sink}, written with this run's."""
    every = cfg.read.progress_every_s
    out = cfg.output
    carried_rejects = carried_rejects or {}
    later_dropped = [carried_rejects["dropped"]] if "dropped" in carried_rejects else []
    later_failed = [carried_rejects["failed"]] if "failed" in carried_rejects else []
    stage_names, stage_docs, dedup_marked = list(stage_names or []), {}, False
    candidates = candidate_sink(cfg, output_dir)
    # the text is final after pii (or coarse, or extraction): count its tokens once there
    names = [n for n, _ in stages]
    text_final = next(n for n in ("pii", "decontaminate", "coarse", "extract") if n in names)
    tokenizer = cfg.stats.tokenizer
    from .progress import timing

    for name, stage in stages:
        with timing(progress_dir(output_dir), every):  # stage DoFns timed for the live progress
            result = docs | name.title().replace("_", "") >> stage
        stage_names.append(name)
        kept_here = result.kept
        if name == text_final:
            kept_here = kept_here | "CountTokens" >> beam.ParDo(CountTokensDoFn(tokenizer))

        def after(d, s=name):
            ev = [((d.source, "after", s), 1)]
            if s == "fine" and d.extra.get("passed_unscored") == "fine":  # outside the classifiers' languages
                ev.append(((d.source, "passed_unscored", "fine"), 1))
            elif s == "fine":  # the cascade: which model's verdict kept it (BERT's when it scored it)
                ev.append(((d.source, "fine_decided_by", decided_by(d.scores)), 1))
            if s == "coarse" and d.extra.get("replacement_chars_removed"):  # U+FFFD damage removed
                ev.append(((d.source, "replacement_chars_removed"), 1))
            if s == "extract" and d.extra.get("replaced_bytes"):
                ev.append(((d.source, "decoded_with_replacement"), 1))
            if s == "pii" and d.pii_counts:  # spans replaced, per type; documents that had any
                ev += [((d.source, "pii_replaced", t), n) for t, n in d.pii_counts.items()]
                ev.append(((d.source, "pii_documents"), 1))
            return ev

        counts += [_count(kept_here, f"After[{name}]", after),
                   _count(result.dropped, f"Dropped[{name}]", dropped_events),
                   _count(result.failed, f"Failed[{name}]", failed_events)]
        if name == "fine":  # the model whose verdict dropped it is the detail's first word
            counts.append(_count(result.dropped, "Cascade[fine]",
                                 lambda d: [((d.source, "fine_decided_by", (d.detail or "?").split(" ")[0]), 1)]))
        for i, rescored in enumerate(getattr(stage, "rescored", [])):  # refilter: scored now, not stored
            counts.append(_count(rescored, f"Rescored{i}[{name}]", lambda d: [((d.source, "rescored", "fine"), 1)]))
        if name == "fine" and candidates:
            write_scores(result, candidates)
        later_dropped.append(result.dropped)
        later_failed.append(result.failed)
        docs = stage_docs[name] = kept_here
        if name in ("exact_dedup", "near_dedup") and not dedup_marked:  # the job's phase: past the first shuffle
            dedup_marked = True
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
     | "Funnel" >> WriteFunnel(f"{output_dir.rstrip('/')}/funnel.json", stage_names, list(cfg.sources)))
    ({"front": stats_front | "TotalsStatsFront" >> beam.Flatten(), "stages": stage_docs, "kept": kept}
     | "Stats" >> WriteStats(f"{output_dir.rstrip('/')}/stats/pipeline_stats.json", tokenizer))
    return {"kept": kept}


def decided_by(scores: dict | None) -> str:
    """The model that decided a kept document in the fine stage's cascade."""
    keys = scores or {}
    return "bert" if any(k.startswith("bert.") for k in keys) else "fasttext"


def write_rejects(output_dir: str, out: OutputSection, stage: str, dropped, failed) -> None:
    dropped | f"WriteDropped[{stage}]" >> WriteRecords("dropped", output_dir, out.compression, name=f"part-{stage}")
    failed | f"WriteFailed[{stage}]" >> WriteRecords("failed", output_dir, out.compression, name=f"part-{stage}")


def dropped_events(d):
    return [((d.source, "dropped", d.stage, d.reason), 1)]


def failed_events(f):
    return [((f.source, "failed", f.stage, f.error_kind), 1)]


SCORE_PREFIXES = ("fasttext.", "bert.")


def _scored(d) -> ScoredCandidate | None:
    """The classifier scores a fine-stage document or dropped row carries."""
    if isinstance(d, Dropped):
        scores = {r["name"]: r["value"] for r in (d.signals or []) if r["name"].startswith(SCORE_PREFIXES)}
    else:
        scores = {k: v for k, v in (d.scores or {}).items() if k.startswith(SCORE_PREFIXES)}
    return ScoredCandidate(d.key, d.id, d.source, scores) if scores else None


def write_scores(result, where: dict) -> None:
    """candidates/scores/: the scores of every candidate the fine stage scored
    (kept or dropped by it), for refilter to decide from."""
    for label, pcoll in (("Kept", result.kept), ("Dropped", result.dropped)):
        (pcoll | f"Scored{label}" >> beam.FlatMap(lambda d: [s] if (s := _scored(d)) else [])
         | f"WriteScores{label}" >> WriteRecords("candidate_scores", where["output_dir"], where["compression"],
                                                 name=f"part-{label.lower()}", folder="candidates/scores"))
