"""Runs the job: preflight, build and run the pipeline, judge the output.

Exit status (also documented in the README):
  0  the run finished and its output is accepted (``_SUCCESS`` written last);
  1  the job itself failed (e.g. a full disk); the output is incomplete;
  2  a user error found before the run (configuration, flags, inputs, models,
     output location): nothing is written;
  3  the run finished but its output is rejected (``_REJECTED.json`` says
     why; ``funnel.json`` and the datasets stay for inspection; no ``_SUCCESS``);
  130 / 143  interrupted (SIGINT / SIGTERM): ``_INCOMPLETE`` stays behind.

``_INCOMPLETE`` is written before the job starts and removed only when it
ends normally, so a killed run leaves output that says what it is.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ..build import build_pipeline, skipped_stages
from ..stages import output_parts
from ..funnel import render_funnel
from ..fs import exists
from ..io.sinks import write_json
from ..io.readers import matched_files
from ..options import job_runner
from .units import UNITS, Refused, plan_units, run_units
from .interrupt import SIGNALLED as _SIGNALLED, Interrupted, raise_interrupted as _raise_interrupted

if TYPE_CHECKING:
    from ..schema import MdfsConfig

log = logging.getLogger("mdfs.run")
SUCCESS, REJECTED, INCOMPLETE = "_SUCCESS", "_REJECTED.json", "_INCOMPLETE"
# what a run writes: the datasets, the run's own files, and what the declared stages write besides
OUTPUT_PARTS = ("kept", "dropped", "failed", "refilter.json", "funnel.json", "dedup_state", "_progress", "stats",
                "report", SUCCESS, REJECTED, INCOMPLETE, UNITS, "config.yaml", "review", *output_parts())
EXIT_FAILED, EXIT_USER, EXIT_REJECTED = 1, 2, 3


class UserError(Exception):
    """A mistake found before anything is written (exit 2)."""



def output_state(root: str) -> str | None:
    """What an output directory holds: 'finished', 'rejected', 'incomplete', or None."""
    if exists(f"{root}/{INCOMPLETE}"):
        return "incomplete"
    if exists(f"{root}/{REJECTED}"):
        return "rejected"
    if exists(f"{root}/{SUCCESS}"):
        return "finished"
    if any(exists(f"{root}/{p}") for p in OUTPUT_PARTS):
        return "incomplete"  # parts without any marker: a run killed before markers existed
    return None


STATE_WORDS = {"finished": "a finished run", "rejected": "a rejected run (see _REJECTED.json)",
               "incomplete": "an incomplete run (interrupted, killed or failed)"}


def prepare_output(output_dir: str, overwrite: bool, reads: list[tuple[str, str]] = ()) -> None:
    """Refuse to write into an existing mdfs output unless ``overwrite``; with it,
    remove the previous run's parts first so no stale shard survives.  Refused
    even with ``overwrite``: a non-empty folder that holds no mdfs output, and
    removing a part that holds something the run reads (``reads``: (what, path))."""
    from ..io.output_guard import foreign_entries, foreign_line, overlap

    root = output_dir.rstrip("/")
    state = output_state(root)
    if state is None:
        foreign = foreign_entries(root, OUTPUT_PARTS)
        if foreign:
            raise FileExistsError(foreign_line(output_dir, foreign))
    elif not overwrite:
        raise FileExistsError(f"{output_dir} already holds {STATE_WORDS[state]}; pass --overwrite to replace it")
    removed = [f"{root}/{p}" for p in OUTPUT_PARTS if exists(f"{root}/{p}")]
    why = overlap(removed, list(reads))
    if why:
        raise FileExistsError(why)
    for path in removed:
        FileSystems.delete([path])


def write_effective_config(cfg: MdfsConfig, root: str) -> None:
    """OUTPUT/config.yaml: the configuration the run used (reproducibility; the report reads it)."""
    import yaml

    with FileSystems.create(f"{root}/config.yaml") as fh:
        fh.write(yaml.safe_dump(cfg.as_dict(), sort_keys=False, allow_unicode=True).encode("utf-8"))


def _write_marker(path: str, payload: dict | None = None) -> None:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(payload or {}, indent=2, ensure_ascii=False).encode("utf-8"))


# --- preflight -------------------------------------------------------------------------

def _output_problem(root: str) -> str | None:
    """Why the output location cannot be written, checked before the run."""
    import os

    if "://" in root:
        return None  # remote filesystems: the first write tells
    path = os.path.abspath(root)
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{root} exists and is not a directory"
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} (on the output path) is a file, not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None


def _check_sources(cfg: MdfsConfig, problems: list[str]) -> dict[str, list[str]]:
    """The readable files per source; a source's problems appended, its notes printed once."""
    from ..io.readers.preflight import check_source

    files = {}
    for n, src in cfg.sources.items():
        if src.format == "cc_index":
            files[n] = matched_files(src.paths)
            found, own, notes = files[n], [], []
        else:
            found, own, notes = check_source(n, src)
            files[n] = found
        problems += own
        if not found and not own:
            problems.append(f"source {n}: no input file matches {src.paths} "
                            "(or none of the matches is a readable file)")
        for note in notes:
            print(f"mdfs: {note}", file=sys.stderr)
    return files


def preflight(cfg: MdfsConfig, output_dir: str, sources: bool = True) -> dict[str, list[str]]:
    """Everything that can be checked before anything is written.  Returns the
    readable files per source (none checked without ``sources``: a refilter
    reads the candidate store); raises UserError with one line per problem."""
    problems = []
    root = output_dir.rstrip("/")
    why = _output_problem(root)
    if why:
        problems.append(f"cannot write the output: {why}")
    files = _check_sources(cfg, problems) if sources else {}
    from ..language_codes import check_codes

    problems += check_codes(cfg)
    tok = cfg.stats.tokenizer
    if tok:
        from pathlib import Path

        p = Path(tok)
        if not (p.is_file() or (p / "tokenizer.json").is_file()):
            problems.append(f"stats.tokenizer: no tokenizer.json at {tok}")
    from mdfs.classifiers.integrity import ModelError, check_fasttext_file

    try:  # read by the readers, the coarse and the fine stage: damaged, it would fail every worker
        check_fasttext_file(cfg.coarse.langid.model)
    except ModelError as exc:
        problems.append(f"coarse.langid.model: {exc}")
    if cfg.dedup_against:
        from ..stages.dedup_state import check_against

        # local paths made absolute: config.yaml then says which runs, wherever it is read
        cfg.dedup_against = [p if "://" in p else os.path.abspath(p) for p in cfg.dedup_against]
        if not (cfg.exact_dedup.enabled or cfg.near_dedup.enabled):
            problems.append("--dedup-against needs exact_dedup or near_dedup enabled")
        if len(set(cfg.dedup_against)) != len(cfg.dedup_against):
            problems.append(f"--dedup-against names a run twice: {cfg.dedup_against}")
        for earlier in cfg.dedup_against:
            if earlier.rstrip("/") in (root, os.path.abspath(root)):
                problems.append(f"--dedup-against {earlier}: that is this run's own output directory")
            else:
                problems += check_against(cfg, earlier)
    problems += stage_problems(cfg)
    if problems:
        raise UserError("\n".join(problems))
    return files


def stage_problems(cfg) -> list[str]:
    """What each declared stage finds wrong with its settings (``Stage.check``:
    models that do not load, validators that do not import, evaluation sets
    that cannot be read), before anything is written."""
    from ..stages import declared

    try:  # a user's own stage that does not import, or names no stage to follow
        stages = declared(cfg)
    except ValueError as exc:
        return [str(exc)]
    except Exception as exc:  # noqa: BLE001 - ImportError, AttributeError
        return [f"custom_stages: {type(exc).__name__}: {exc}"]
    return [line for s in stages for line in s.check(cfg)]


# --- judging the output -----------------------------------------------------------------

def _sample_messages(root: str, wanted: set) -> dict:
    """One message per (source, error kind) from the failed dataset."""
    import pyarrow.dataset as ds

    out = {}
    try:
        table = ds.dataset(f"{root}/failed", format="parquet").to_table(columns=["source", "error_kind", "message"])
    except Exception:  # noqa: BLE001 - no failed shards
        return out
    for row in table.to_pylist():
        key = (row["source"], row["error_kind"])
        if key in wanted and key not in out:
            out[key] = row["message"]
    return out


def judge(funnel: dict, cfg: MdfsConfig, root: str) -> list[str]:
    """Reasons to reject the output (empty list: accepted)."""
    reasons, limit = [], cfg.run.max_failed_share
    wanted = set()
    per_source = {}
    for name, e in funnel["sources"].items():
        if not e["invariant_ok"]:
            reasons.append(f"source {name}: read {e['read']} != kept + dropped + failed "
                           f"({e['kept']} + {e['dropped']} + {e['failed']}): records were lost (a bug; please report)")
            continue
        if not e["read"]:
            continue
        share = e["failed"] / e["read"]
        all_failed = e["kept"] == 0 and e["dropped"] == 0 and e["failed"] > 0
        if all_failed or share > limit:
            kinds = sorted(e["failed_by_error"].items(), key=lambda kv: -kv[1])[:3]
            per_source[name] = (all_failed, share, kinds)
            wanted |= {(name, k.split("/", 1)[1]) for k, _ in kinds}
    samples = _sample_messages(root, wanted) if wanted else {}
    for name, (all_failed, share, kinds) in per_source.items():
        head = (f"source {name}: every record failed" if all_failed else
                f"source {name}: {share:.0%} of records failed (run.max_failed_share is {limit:g})")
        top = "; ".join(f"{k} x{n}" + (f" e.g. {samples[(name, k.split('/', 1)[1])][:160]!r}"
                                       if (name, k.split("/", 1)[1]) in samples else "") for k, n in kinds)
        reasons.append(f"{head}: {top}")
    return reasons


# --- the run ----------------------------------------------------------------------------

def run(cfg: MdfsConfig, output_dir: str, options, overwrite: bool = False, prog: str = "mdfs run", **kw) -> int:
    """``_run`` with SIGINT/SIGTERM at any moment (preflight, workers' start-up,
    the job, the report) ending in one line and 128 + the signal's number."""
    from . import interrupt

    previous = interrupt.install()
    try:
        return _run(cfg, output_dir, options, overwrite, prog=prog, **kw)
    except (KeyboardInterrupt, Interrupted) as exc:
        root = output_dir.rstrip("/")
        where = (f"the output in {root} is incomplete ({INCOMPLETE})" if exists(f"{root}/{INCOMPLETE}")
                 else "nothing was written")
        print(f"{prog}: interrupted; {where}", file=sys.stderr)
        log.debug("interrupted", exc_info=True)
        return 128 + interrupt.signum_of(exc)
    finally:
        interrupt.restore(previous)


def _units_plan(cfg: MdfsConfig, output_dir: str, options, overwrite: bool, resume: bool):
    """The units of files this run works in (``units.plan_units``), or None: one job."""
    if resume:
        state = output_state(output_dir.rstrip("/"))
        if overwrite:
            raise UserError("--resume and --overwrite exclude each other (--overwrite starts again from nothing)")
        if state is None:
            raise UserError(f"--resume: {output_dir} holds no run to resume")
        if state != "incomplete":
            raise UserError(f"--resume: {output_dir} holds {STATE_WORDS[state]}; only an incomplete run resumes")
    return plan_units(cfg, output_dir, options, resume)


def _run(cfg: MdfsConfig, output_dir: str, options, overwrite: bool = False, build=None, check=None, on_start=None,
         also_judge=None, prog: str = "mdfs run", reads: list[tuple[str, str]] = (), resume: bool = False) -> int:
    """The job with ``build_pipeline``; ``mdfs refilter`` passes its own ``build``
    (p, cfg, output_dir), ``check`` (cfg, output_dir) -> files per source,
    ``on_start`` (called once the output is prepared) and ``also_judge``
    (funnel -> reasons to reject) and ``reads`` ((what, path) it reads besides
    what the configuration names, which --overwrite must not remove).  ``resume``:
    continue a run in units left incomplete (``units.py``)."""
    from ..io.output_guard import read_paths

    root = output_dir.rstrip("/")
    try:
        files = (check or preflight)(cfg, output_dir)
        plan = _units_plan(cfg, output_dir, options, overwrite, resume) if build is None else None
        if not resume:
            prepare_output(output_dir, overwrite, [*read_paths(cfg, files), *reads])
    except (UserError, FileExistsError, Refused) as exc:
        for line in str(exc).splitlines():
            print(f"{prog}: {line}", file=sys.stderr)
        return EXIT_USER
    try:
        FileSystems.mkdirs(root) if not exists(root) else None
        _write_marker(f"{root}/{INCOMPLETE}", {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        write_effective_config(cfg, root)
        if on_start is not None:
            on_start()
    except OSError as exc:
        print(f"{prog}: cannot write the output: {exc}", file=sys.stderr)
        return EXIT_USER
    if files:
        log.info("sources: %s", ", ".join(f"{n} ({len(found)} files)" for n, found in files.items()))
    skipped = skipped_stages(cfg)
    for name, why in skipped.items():
        print(f"mdfs: stage {name} SKIPPED: {why}", file=sys.stderr)
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
    _SIGNALLED.clear()
    t0 = time.monotonic()
    from ..progress import ProgressWatcher, progress_dir

    watch = progress_dir(output_dir)
    try:
        if plan is not None:
            run_units(plan, cfg, output_dir, options)
        else:
            p = beam.Pipeline(runner=job_runner(options), options=options)
            (build or build_pipeline)(p, cfg, output_dir)
            with (ProgressWatcher(watch, cfg.read.progress_every_s) if watch else contextlib.nullcontext()):
                p.run().wait_until_finish()
        if _SIGNALLED:
            raise Interrupted(_SIGNALLED[0])
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"{prog}: interrupted; the output in {root} is incomplete ({INCOMPLETE})"
              + ("; the same command with --resume continues it" if plan is not None else ""), file=sys.stderr)
        return 128 + int(signum)
    except Exception as exc:  # noqa: BLE001 - e.g. a full disk: one line, no complete-looking output
        from .engines import failure_line  # a job service's gRPC error, with its job server's last words

        resume_hint = " (the same command with --resume continues it)" if plan is not None else ""
        print(f"{prog}: the job failed, its output in {root} is incomplete ({INCOMPLETE}){resume_hint}: "
              f"{failure_line(exc)}"[:1000], file=sys.stderr)
        log.debug("job failure", exc_info=True)
        return EXIT_FAILED
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if watch:
            import shutil

            shutil.rmtree(watch, ignore_errors=True)
    return conclude(cfg, root, time.monotonic() - t0, skipped, prog, also_judge)


def conclude(cfg: MdfsConfig, root: str, elapsed: float, skipped: dict, prog: str, also_judge=None) -> int:
    """After the job: the funnel completed and shown, the report written, the
    output judged: ``_SUCCESS`` (0) or ``_REJECTED.json`` (3); ``_INCOMPLETE``
    removed either way."""
    with FileSystems.open(f"{root}/funnel.json") as fh:
        funnel = json.loads(fh.read())
    funnel["elapsed_s"] = round(elapsed, 3)
    funnel["skipped_stages"] = skipped
    write_json(funnel, f"{root}/funnel.json")
    render_funnel(funnel)
    print(f"output: {root}/kept (Parquet), {root}/dropped, {root}/failed, {root}/funnel.json "
          f"- {funnel['total']['read']} records in {elapsed:.1f} s")
    from .report import render_mix, write_report

    rep = write_report(root)
    render_mix(rep)
    print(f"report: {root}/report/report.md (and stats.json, stats.csv, {', '.join(rep.get('plots', []))})")
    reasons = judge(funnel, cfg, root) + (also_judge(funnel) if also_judge else [])
    FileSystems.delete([f"{root}/{INCOMPLETE}"])
    if reasons:
        _write_marker(f"{root}/{REJECTED}", {"reasons": reasons, "total": funnel["total"]})
        print(f"{prog}: output REJECTED ({root}/{REJECTED}); funnel.json and the datasets are kept "
              "for inspection:", file=sys.stderr)
        for r in reasons:
            print(f"  - {r}", file=sys.stderr)
        return EXIT_REJECTED
    _write_marker(f"{root}/{SUCCESS}", {"elapsed_s": funnel["elapsed_s"], "total": funnel["total"]})
    return 0
