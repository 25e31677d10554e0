"""Builds the mdfs Beam graph: sources -> read -> extract -> coarse -> exact
dedup -> near dedup -> fine -> kept, with every stage's dropped and failed
records flowing to their own sinks and all of them to the funnel and the
statistics.  Adding a stage is one line in ``build_stages`` (see ``stage.py``)."""
from __future__ import annotations

import apache_beam as beam

from .coarse import CoarseFilter, source_languages
from .dedup_exact import ExactDedup
from .dedup_near import NearDedup
from .extract import Extract
from .fine import FineFilter, is_configured
from .funnel import WriteFunnel
from .progress import LogProgress
from .readers import ReadSource
from .sinks import WriteRecords
from .stats import CountTokensDoFn, WriteStats

def source_priorities(cfg: dict) -> dict[str, int]:
    return {name: int(src["priority"]) for name, src in cfg["sources"].items()}


def build_stages(cfg: dict, output_dir: str | None = None) -> list[tuple[str, beam.PTransform]]:
    """The document stages in order; each returns a StageResult."""
    excerpt = int(cfg["output"]["excerpt_chars"])
    stages = [("extract", Extract(cfg["extract"], cfg["read"]["max_invalid_utf8_share"], excerpt))]
    if cfg["coarse"]["enabled"]:
        stages.append(("coarse", CoarseFilter(cfg["coarse"], source_languages(cfg), excerpt)))
    if cfg["exact_dedup"]["enabled"]:
        stages.append(("exact_dedup", ExactDedup(cfg["exact_dedup"], source_priorities(cfg), excerpt)))
    if cfg["near_dedup"]["enabled"]:
        stats = f"{output_dir.rstrip('/')}/near_dedup.json" if output_dir else None
        stages.append(("near_dedup", NearDedup(cfg["near_dedup"], source_priorities(cfg), excerpt, stats)))
    if is_configured(cfg["fine"]):
        stages.append(("fine", FineFilter(cfg["fine"], excerpt, cfg["coarse"]["langid"]["model"])))
    return stages


def skipped_stages(cfg: dict) -> dict[str, str]:
    """Stages that will not run, with the reason to tell the user."""
    out = {}
    for name in ("coarse", "exact_dedup", "near_dedup"):
        if not cfg[name]["enabled"]:
            out[name] = f"disabled ({name}.enabled: false)"
    if not is_configured(cfg["fine"]):
        out["fine"] = ("no classifier configured (set fine.bert_model and/or fine.fasttext_model; "
                       "train one with `mdfs train-classifier`)")
    return out


def build_pipeline(p: beam.Pipeline, cfg: dict, output_dir: str) -> dict:
    """Adds the whole job to ``p``; returns the main PCollections (for tests)."""
    every = float(cfg["read"]["progress_every_s"])
    records, dropped, failed, skipped = [], [], [], []
    for name, src in cfg["sources"].items():
        rec, dr, fl, sk = p | f"Read[{name}]" >> ReadSource(src, cfg["read"], cfg["coarse"]["langid"]["model"])
        records.append(rec), dropped.append(dr), failed.append(fl), skipped.append(sk)
    raw = (records | "AllRecords" >> beam.Flatten()
           | "ProgressRead" >> beam.ParDo(LogProgress("records read", every)))
    read_dropped = dropped | "ReadDropped" >> beam.Flatten()
    read_failed = failed | "ReadFailed" >> beam.Flatten()

    events = [
        raw | "EvRead" >> beam.Map(lambda r: ((r.source, "read"), 1)),
        read_dropped | "EvReadDropped" >> beam.Map(lambda d: ((d.source, "read"), 1)),
        read_failed | "EvReadFailed" >> beam.Map(lambda f: ((f.source, "read"), 1)),
        (skipped | "Skipped" >> beam.Flatten()
         | "EvSkipped" >> beam.Map(lambda s: ((s.source, "skipped", s.record_type), s.count))),
        # dead letters of damaged stretches whose record count the container does not tell
        (read_failed | "UnknownSize" >> beam.Filter(lambda f: f.records is None)
         | "EvUnknownSize" >> beam.Map(lambda f: ((f.source, "unknown_size_stretches"), 1))),
    ]
    all_dropped, all_failed = [read_dropped], [read_failed]
    docs = raw
    stage_names, stage_docs = [], {}
    stages = build_stages(cfg, output_dir)
    # the text is final after coarse (or extraction): count its tokens once there
    text_final = "coarse" if any(n == "coarse" for n, _ in stages) else "extract"
    tokenizer = cfg["stats"]["tokenizer"]
    for name, stage in stages:
        result = docs | name.title().replace("_", "") >> stage
        stage_names.append(name)
        kept_here = result.kept
        if name == text_final:
            kept_here = kept_here | "CountTokens" >> beam.ParDo(CountTokensDoFn(tokenizer))
        if name == "fine":  # documents outside the classifiers' languages, not judged
            events.append(kept_here | "Unscored" >> beam.Filter(lambda d: d.extra.get("passed_unscored") == "fine")
                          | "EvUnscored" >> beam.Map(lambda d: ((d.source, "passed_unscored", "fine"), 1)))
        if name == "coarse":  # documents whose U+FFFD damage normalisation removed
            events.append(kept_here | "Repaired" >> beam.Filter(lambda d: d.extra.get("replacement_chars_removed"))
                          | "EvRepaired" >> beam.Map(lambda d: ((d.source, "replacement_chars_removed"), 1)))
        if name == "extract":
            events.append(kept_here | "Replaced" >> beam.Filter(lambda d: d.extra.get("replaced_bytes"))
                          | "EvReplaced" >> beam.Map(lambda d: ((d.source, "decoded_with_replacement"), 1)))
        events.append(kept_here | f"EvAfter[{name}]" >> beam.Map(lambda d, s=name: ((d.source, "after", s), 1)))
        all_dropped.append(result.dropped)
        all_failed.append(result.failed)
        docs = stage_docs[name] = kept_here

    kept = docs | "ProgressKept" >> beam.ParDo(LogProgress("documents kept", every))
    dropped_all = all_dropped | "AllDropped" >> beam.Flatten()
    failed_all = all_failed | "AllFailed" >> beam.Flatten()
    events += [
        kept | "EvKept" >> beam.Map(lambda d: ((d.source, "kept"), 1)),
        dropped_all | "EvDropped" >> beam.Map(lambda d: ((d.source, "dropped", d.stage, d.reason), 1)),
        failed_all | "EvFailed" >> beam.Map(lambda f: ((f.source, "failed", f.stage, f.error_kind), 1)),
    ]
    out = cfg["output"]
    kept | "WriteKept" >> WriteRecords("kept", output_dir, out["compression"], int(out["kept_shards"]))
    dropped_all | "WriteDropped" >> WriteRecords("dropped", output_dir, out["compression"])
    failed_all | "WriteFailed" >> WriteRecords("failed", output_dir, out["compression"])
    (events | "AllEvents" >> beam.Flatten()
     | "Funnel" >> WriteFunnel(f"{output_dir.rstrip('/')}/funnel.json", stage_names, list(cfg["sources"])))
    ({"raw": raw, "read_dropped": read_dropped, "read_failed": read_failed, "stages": stage_docs, "kept": kept}
     | "Stats" >> WriteStats(f"{output_dir.rstrip('/')}/stats/pipeline_stats.json", tokenizer))
    return {"kept": kept, "dropped": dropped_all, "failed": failed_all}
