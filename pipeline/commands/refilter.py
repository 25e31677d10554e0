"""``mdfs refilter RUN_DIR --output NEW_DIR``: new thresholds over an earlier
run, without reading or extracting anything again.

The earlier run must have written its candidate store (``output.candidates:
true``): every document that reached the coarse rules, as the rules saw it,
with all its signals, and the classifier scores of those the fine stage
scored.  The refilter job is the same Beam graph from the coarse rules on:

* **coarse**: each candidate's stored signals against the new thresholds, in
  the rules' order (the first rule that fires drops it, with the same reason
  and detail a fresh run gives); a stricter ``min_language_score`` drops by
  the stored language-ID score;
* **pii, exact and near dedup**: re-run on the new candidate set (a document
  that was a duplicate of one now dropped may be kept now);
* **fine**: decided from stored scores where the cascade's models scored the
  document; the rest (dropped earlier by a rule or by dedup) are scored now
  and counted (``rescored`` in funnel.json).

Everything dropped or failed before the coarse rules (read, extraction, URL,
language, Traditional Chinese) is carried over from the earlier run's
``dropped/`` and ``failed/`` unchanged, so the new output is complete: its
funnel has read = kept + dropped + failed per source, and ``read`` equals the
earlier run's (checked; the output is rejected otherwise).

Only thresholds and the classifier models may change (a new model: every
document reaching the fine stage is scored with it, stored scores unused; the
review loop of docs/REVIEW.md).  Anything that changes what a signal measures
or which documents reach the rules (languages, normalisation, line cleaning,
shingles, cascade bands, extractor settings, sources, a rule that was off) is
refused before anything is written, naming the key.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ..build import apply_stages, build_context, dropped_events, failed_events
from ..stages.coarse import below_language_minimum, rule_sets, source_languages
from ..stages.rules.rule import verdict_from_signals
from ..stage import BY_NAME, CARRY, BundleTotals, RefilterInputs
from ..stages import declared as stages_declared, running as stages_running
from .refilter_changes import MODEL_KEYS, changed_keys, check_changes

if TYPE_CHECKING:
    from ..schema import Coarse, MdfsConfig

log = logging.getLogger("mdfs.refilter")


class RefilterError(ValueError):
    """The earlier run cannot be refiltered, or a key that may not change did."""


def _has_parquet(folder: str) -> bool:
    try:
        return bool(FileSystems.match([f"{folder}/*.parquet"])[0].metadata_list)
    except Exception:  # noqa: BLE001
        return False


def load_run(run_dir: str) -> tuple[dict, dict, dict]:
    """(config, funnel, stats) of a finished run that kept its candidates; raises RefilterError."""
    from .run import STATE_WORDS, output_state

    root = run_dir.rstrip("/")
    state = output_state(root)
    if state != "finished":
        raise RefilterError(f"{run_dir} holds {STATE_WORDS[state] if state else 'no mdfs output'}; "
                            "refilter needs a finished run")
    if not _has_parquet(f"{root}/candidates/documents"):
        raise RefilterError(f"{run_dir} has no candidate store (candidates/documents/); run it with "
                            "--set output.candidates=true to refilter it later")
    from ..io.readback import ReadBackError, load_config_file, load_funnel, load_stats

    try:  # each checked for the shape this module reads (one line naming the file otherwise)
        return (load_config_file(f"{root}/config.yaml", root), load_funnel(f"{root}/funnel.json", root),
                load_stats(f"{root}/stats/pipeline_stats.json", root))
    except ReadBackError as exc:
        raise RefilterError(str(exc)) from None


# --- the graph ------------------------------------------------------------------------

class RewriteCandidateFile(beam.DoFn):
    """One file of the earlier run's candidate store -> the same file in the new
    output's store, as a fresh run with the new thresholds would have written
    it: the verdict columns (``coarse_reason``, ``coarse_detail``) from the new
    thresholds, without the rows a stricter language minimum removes, token
    counts recounted only if ``stats.tokenizer`` changed.  Texts, signals and
    removed lines pass through as Arrow data, batch by batch (bounded memory),
    never as Python objects: the store costs its decompression and
    compression, not a row-by-row conversion.  Written under a temporary name
    and renamed, so a retried bundle leaves one complete file."""

    BATCH_ROWS = 1024

    def __init__(self, coarse_cfg: Coarse, source_langs: dict, folder: str, compression: str, files: int,
                 tokenizer: str | None, stored_tokens: bool):
        self.coarse_cfg, self.source_langs, self.folder = coarse_cfg, source_langs, folder.rstrip("/")
        self.compression, self.files = compression, files
        self.tokenizer, self.stored_tokens = tokenizer, stored_tokens

    def setup(self):
        from ..tokens import TokenCounter

        self._rules = rule_sets(self.coarse_cfg)
        self._tokens = None if self.stored_tokens else TokenCounter(self.tokenizer)

    def process(self, element):
        import uuid

        import pyarrow as pa
        import pyarrow.parquet as pq

        from mdfs.schemas import SCHEMAS

        index, path = element
        schema = SCHEMAS["candidates"]
        final = f"{self.folder}/part-{index:05d}-of-{self.files:05d}.parquet"
        tmp = f"{final}.{uuid.uuid4().hex}.tmp"  # not *.parquet: never read as part of the store
        rows = 0
        with FileSystems.open(path) as src, FileSystems.create(tmp) as dst:
            writer = pq.ParquetWriter(dst, schema, compression=self.compression)
            for batch in pq.ParquetFile(src).iter_batches(batch_size=self.BATCH_ROWS):
                table = self._rewrite(pa.Table.from_batches([batch]), schema)
                rows += table.num_rows
                writer.write_table(table)
            writer.close()
        FileSystems.rename([tmp], [final])
        yield rows

    def _rewrite(self, table, schema):
        import pyarrow as pa

        meta = table.select(["source", "language", "language_score", "signals"]).to_pylist()
        keep, reasons, details = [], [], []
        for row in meta:
            try:
                below = below_language_minimum(row, self.source_langs)
                verdict = None if below else verdict_from_signals(
                    self._rules.get(row["language"], self._rules["other"]),
                    {s["name"]: s["value"] for s in row["signals"]})
            except Exception:  # noqa: BLE001 - a damaged row: a dead letter of the rules stage, not a candidate
                below, verdict = True, None
            keep.append(not below)
            reasons.append(verdict[0] if verdict else None)
            details.append(verdict[1] if verdict else None)
        table = table.set_column(table.schema.get_field_index("coarse_reason"), "coarse_reason",
                                 pa.array(reasons, pa.string()))
        table = table.set_column(table.schema.get_field_index("coarse_detail"), "coarse_detail",
                                 pa.array(details, pa.string()))
        if self._tokens is not None:
            counts = [self._tokens.count(t) for t in table.column("text").to_pylist()]
            table = table.set_column(table.schema.get_field_index("token_count"), "token_count",
                                     pa.array(counts, pa.int64()))
        table = table.filter(pa.array(keep, pa.bool_()))
        # the schema's column order and types (and its metadata), whatever the earlier file carried
        return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


class RewriteCandidates(beam.PTransform):
    """The new output's ``candidates/documents/``: each earlier candidate file
    rewritten (``RewriteCandidateFile``), one file per file.  The files are
    read a second time here (the stages read them as rows) and the verdicts
    computed again from the signals: measured cheaper than carrying every
    candidate's text through the rules stage as an object to write it back."""

    def __init__(self, cfg: MdfsConfig, run_dir: str, output_dir: str, stored_tokens: bool):
        super().__init__()
        self.cfg, self.stored_tokens = cfg, stored_tokens
        self.files = sorted(m.path for m in FileSystems.match(
            [f"{run_dir.rstrip('/')}/candidates/documents/*.parquet"])[0].metadata_list)
        self.folder = f"{output_dir.rstrip('/')}/candidates/documents"

    def expand(self, p):
        cfg = self.cfg
        return (p | "CandidateFiles" >> beam.Create(list(enumerate(self.files)))
                | "Rewrite" >> beam.ParDo(RewriteCandidateFile(
                    cfg.coarse, source_languages(cfg), self.folder, cfg.output.compression,
                    len(self.files), cfg.stats.tokenizer, self.stored_tokens)))


def _join_scores(rows, scores):
    """(candidate row, its stored scores or None), joined by record key."""
    def merge(kv):
        _, grouped = kv
        found = {}
        for s in grouped["scores"]:
            found.update({r["label"]: r["prob"] for r in s})
        for row in grouped["rows"]:
            yield row, found or None

    return ({"rows": rows | "KeyRows" >> beam.Map(lambda r: (r["key"], r)),
             "scores": scores | "KeyScores" >> beam.Map(lambda s: (s["key"], s["scores"]))}
            | "JoinScores" >> beam.CoGroupByKey() | "Merge" >> beam.FlatMap(merge))


def carried(row: dict, kind: str, stages: dict) -> bool:
    """Whether an earlier run's dropped/failed row stays as it was: the read
    stage's, and those its stage's declaration carries (``Stage.carries``:
    extraction's; the coarse rules' failures and pre-rule drops).
    ``stages``: the declared stages by name."""
    if row["stage"] == "read":
        return True
    stage = stages.get(row["stage"])
    return stage is not None and stage.carries(kind, row)


def build_refilter_pipeline(p: beam.Pipeline, cfg: MdfsConfig, output_dir: str, run_dir: str, funnel: dict,
                            stats: dict, run_tokenizer: str | None = None, rejects: dict | None = None,
                            new_model: bool = False) -> dict:
    """``run_tokenizer``: the earlier run's ``stats.tokenizer`` (its stored token
    counts are reused when the refilter counts with the same one); ``rejects``:
    ``earlier_rejects(run_dir)``, when the caller has listed them already; ``new_model``:
    a classifier changed, so the stored scores are not used."""
    from apache_beam.io.parquetio import ReadFromParquet

    root = run_dir.rstrip("/")
    rows = p | "ReadCandidates" >> ReadFromParquet(f"{root}/candidates/documents/*.parquet")
    if (cfg.fine.bert_model or cfg.fine.fasttext_model) and not new_model \
            and _has_parquet(f"{root}/candidates/scores"):
        joined = _join_scores(rows, p | "ReadScores" >> ReadFromParquet(f"{root}/candidates/scores/*.parquet"))
    else:
        joined = rows | "NoScores" >> beam.Map(lambda r: (r, None))
    declared = stages_declared(cfg)
    by_name = {s.name: s for s in declared}
    # the stages a refilter carries (extraction): counted from the earlier run, not run
    counted = [s.name for s in declared if s.refilter == CARRY and s.why_off(cfg) is None]
    passed = {s.name: [c for c in counted if declared.index(by_name[c]) < i] for i, s in enumerate(declared)}
    counts = [joined | "TotalsCandidates" >> beam.ParDo(BundleTotals(
        lambda e: [((e[0]["source"], "read"), 1), *(((e[0]["source"], "after", c), 1) for c in counted)]))]
    carried_rejects = {}
    for kind, files in (earlier_rejects(root) if rejects is None else rejects).items():
        events = dropped_events if kind == "dropped" else failed_events

        def carried_events(r, events=events, kind=kind):
            o = _Obj(r)
            ev = [((o.source, "read"), 1), *events(o)]
            ev += [((o.source, "after", c), 1) for c in passed.get(r["stage"], [])]  # the carried stages it passed
            if kind == "failed" and r.get("records") is None:
                ev.append(((o.source, "unknown_size_stretches"), 1))
            return ev

        # files of rows that are all carried (the read stage's; an earlier refilter's carried rows):
        # copied as they are, and counted from the few columns the funnel needs
        for prefix in WHOLE_PREFIXES:
            if not files.get(prefix):
                continue
            label = f"{kind}:{prefix.rstrip('-')}"
            (p | f"CopyOld[{label}]" >> beam.Create([(f, f"{output_dir.rstrip('/')}/{kind}/{f.rsplit('/', 1)[-1]}")
                                                     for f in files[prefix]], reshuffle=False)
             | f"Copy[{label}]" >> beam.Map(copy_file))
            counts.append(p | f"ReadCopied[{label}]" >> ReadFromParquet(
                f"{root}/{kind}/{prefix}*.parquet", columns=FUNNEL_COLUMNS[kind])
                | f"TotalsCopied[{label}]" >> beam.ParDo(BundleTotals(carried_events)))
        if files.get(STAGES_PREFIX):  # later stages' rejects: the rows from before the rules are carried
            old = (p | f"ReadOld[{kind}]" >> ReadFromParquet(f"{root}/{kind}/{STAGES_PREFIX}*.parquet")
                   | f"Carried[{kind}]" >> beam.Filter(carried, kind, by_name))
            counts.append(old | f"TotalsCarried[{kind}]" >> beam.ParDo(BundleTotals(carried_events)))
            # written with this run's later rejects (one sink per kind; bounded by what was extracted)
            carried_rejects[kind] = old | f"AsRows[{kind}]" >> beam.Map(StoredRow)
    # what the earlier run counted before any document existed (WARC records that carry none), and
    # the carried stages' own funnel entries (pages decoded with replacement characters)
    carried_fields = {k: shape for s in declared if s.name in counted for k, shape in s.funnel_fields.items()}
    earlier = []
    for name, e in funnel["sources"].items():
        earlier += [((name, "skipped", t), n) for t, n in e["skipped_records"].items()]
        for field, shape in carried_fields.items():
            value = e.get(field)
            if value and shape == BY_NAME:
                earlier += [((name, field, k), n) for k, n in value.items()]
            elif value:
                earlier.append(((name, field), value))
    counts.append(p | "EarlierCounts" >> beam.Create(earlier, reshuffle=False))
    front = [((src, stage), tuple(v[k] for k in ("documents", "bytes", "chars", "tokens")))
             for src, by_stage in stats["stages"].items() for stage, v in by_stage.items()
             if stage in ("read", *counted)]  # the read stage and the stages a refilter carries
    stats_front = [p | "TotalsEarlierStats" >> beam.Create(front, reshuffle=False)]
    stored_tokens = run_tokenizer == cfg.stats.tokenizer
    build = build_context(cfg, output_dir, RefilterInputs(stored_tokens))
    if build.candidates:
        p | "Candidates" >> RewriteCandidates(cfg, run_dir, output_dir, stored_tokens)
    return apply_stages(build, joined, stages_running(build), counts, stats_front, counted=counted,
                        carried_rejects=carried_rejects)


class _Obj:
    def __init__(self, row: dict):
        self.__dict__.update(row)


class StoredRow:
    """A row read from an earlier output, written again as it is."""

    __slots__ = ("row",)

    def __init__(self, row: dict):
        self.row = row

    def to_row(self) -> dict:
        return self.row


# dropped/ and failed/ files by name: the read stage's sink and an earlier refilter's carried rows
# hold only rows that happened before the rules; the later stages' sink holds both kinds
WHOLE_PREFIXES = ("part-read-", "part-carried-")
STAGES_PREFIX = "part-stages-"
FUNNEL_COLUMNS = {"dropped": ["source", "stage", "reason"], "failed": ["source", "stage", "error_kind", "records"]}


def copy_file(pair: tuple[str, str]) -> None:
    """(source, destination) on any Beam filesystem; the destination's folder is
    made when no sink has made it yet (object stores have none to make)."""
    src, dst = pair
    parent = dst.rsplit("/", 1)[0]
    if not FileSystems.exists(parent):
        try:
            FileSystems.mkdirs(parent)
        except OSError:  # made meanwhile by a sink writing there
            pass
    FileSystems.copy([src], [dst])


def earlier_rejects(root: str) -> dict[str, dict[str, list[str]]]:
    """{kind: {prefix: [paths]}} of an earlier run's dropped/ and failed/ files;
    a file of another name is refused (what it holds is unknown)."""
    out = {}
    for kind in ("dropped", "failed"):
        try:
            paths = sorted(m.path for m in FileSystems.match([f"{root}/{kind}/*.parquet"])[0].metadata_list)
        except Exception:  # noqa: BLE001 - no such folder
            paths = []
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            prefix = next((x for x in (*WHOLE_PREFIXES, STAGES_PREFIX) if name.startswith(x)), None)
            if prefix is None:
                raise RefilterError(f"{path}: not a file mdfs wrote ({', '.join(WHOLE_PREFIXES + (STAGES_PREFIX,))}"
                                    "*.parquet); move it out of the run to refilter it")
            out.setdefault(kind, {}).setdefault(prefix, []).append(path)
    return out


def write_marker(output_dir: str, run_dir: str, changed: list[str]) -> None:
    from ..io.sinks import write_json

    write_json({"refilter_of": run_dir, "changed": changed}, f"{output_dir.rstrip('/')}/refilter.json")


def judge_against(funnel: dict, earlier: dict) -> list[str]:
    """A refilter offers what the earlier run read, source by source."""
    reasons = []
    for name, e in earlier["sources"].items():
        now = funnel["sources"].get(name, {}).get("read", 0)
        if now != e["read"]:
            reasons.append(f"source {name}: the refilter accounts for {now} records, the earlier run read "
                           f"{e['read']} (a bug; please report)")
    return reasons


def _load_configs(run_dir: str, old_cfg: dict, config_file, sets, dedup_against
                  ) -> tuple[MdfsConfig, MdfsConfig]:
    """(the earlier run's configuration, the new one over it); the earlier one is
    checked as any configuration is (a damaged config.yaml is refused naming it)."""
    from ..config import as_given, load_config
    from ..io.readback import checked_config

    old = checked_config(f"{run_dir.rstrip('/')}/config.yaml", old_cfg)  # ReadBackError, a ValueError
    return old, load_config(config_file, sets, base=as_given(old_cfg), dedup_against=dedup_against)


def refilter(run_dir: str, output_dir: str, config_file: str | None, sets: list[str] | None, options,
             overwrite: bool = False, dedup_against: list[str] | None = None) -> int:
    """The whole command; returns the exit status (as ``mdfs run``'s)."""
    import sys

    from ..io.readback import check_stores
    from .run import EXIT_USER, preflight, run

    prog = "mdfs refilter"
    if run_dir.rstrip("/") == output_dir.rstrip("/"):
        print(f"{prog}: --output must differ from the run being refiltered (earlier outputs are never "
              "rewritten)", file=sys.stderr)
        return EXIT_USER
    try:
        old_cfg, funnel, stats = load_run(run_dir)
        rejects = earlier_rejects(run_dir.rstrip("/"))  # a file it cannot place: refused before anything is written
        old, cfg = _load_configs(run_dir, old_cfg, config_file, sets, dedup_against)
        check_stores(run_dir, rejects, bool(cfg.fine.bert_model or cfg.fine.fasttext_model))
    except (RefilterError, ValueError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USER
    problems = check_changes(old_cfg, old, cfg)
    if problems:
        for line in problems:
            print(f"{prog}: {line}", file=sys.stderr)
        return EXIT_USER
    changed = changed_keys(old_cfg, cfg)

    def check(c, out):
        files = preflight(c, out, sources=False)
        if not changed:
            log.warning("no threshold changed: the refilter reproduces %s", run_dir)
        return files

    def build(p, c, out):
        result = build_refilter_pipeline(p, c, out, run_dir, funnel, stats, old.stats.tokenizer, rejects,
                                         new_model=any(k in MODEL_KEYS for k in changed))
        return result

    status = run(cfg, output_dir, options, overwrite, build=build, check=check,
                 on_start=lambda: write_marker(output_dir, run_dir, changed),
                 also_judge=lambda f: judge_against(f, funnel), prog=prog,
                 reads=[("the run being refiltered", run_dir)])
    if status in (0, 3):
        _say_rescored(output_dir, cfg)
    return status


def _say_rescored(output_dir: str, cfg) -> None:
    """One line per stage that scores now what has no stored values (the
    ``rescored`` funnel entry it declares): how many, of those that reached it."""
    with FileSystems.open(f"{output_dir.rstrip('/')}/funnel.json") as fh:
        f = json.loads(fh.read())
    order = f["stages"]
    for stage in stages_declared(cfg):
        if "rescored" not in stage.funnel_fields or stage.name not in order or order.index(stage.name) == 0:
            continue
        before = order[order.index(stage.name) - 1]
        n = sum(e.get("rescored", {}).get(stage.name, 0) for e in f["sources"].values())
        reached = sum(e["after_stage"].get(before, 0) for e in f["sources"].values())
        print(f"refilter: {n} documents had no stored scores and were scored now by the {stage.name} stage "
              f"(of {reached} that reached it)")
