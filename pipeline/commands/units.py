"""A run in units of input files: how ``mdfs run`` works on the DirectRunner
when the input is larger than one unit (issue #33, design (a)).

Why: the DirectRunner holds every shuffle in memory, and the dedup stages'
joins carry the documents' texts, so one job's memory grows with the corpus
(about 25 KB per document measured; 2.46 GB at 100,000 documents).  Cut into
units, no job holds more than one unit, and the only step that sees the whole
corpus, ``dedup_corpus.decide``, keeps the signatures on disk.

The matched input files, in a stable order (by path, then source; each file
once, as the readers match it), are grouped into *units* of about
``run.unit_mb`` input megabytes (a file is never split).  Then:

1. Pass 1, one Beam job per unit: read the unit's files and run the
   document-scope stages before the first corpus-scope stage (the declared
   list; no stage is named here).  The job stages the unit's documents
   (``_units/unit-NNNNN/p1/docs/``, each document pickled whole, so
   the later stages see exactly what they would have seen in one job) with
   one dedup row per document (``dedup_corpus.DedupRowDoFn``); its dropped
   and failed rows go to the run's ``dropped/`` and ``failed/`` under shard
   names that carry the unit and pass (``part-read-u00003p1-*``); its funnel
   events and statistics as summed totals (``p1/funnel.json``, ``p1/stats.json``).
2. One ``dedup_corpus.decide`` over every unit's rows: the decisions of the
   corpus-scope stages (exact and near dedup) over the whole corpus, one
   verdict file per unit, and ``near_dedup.json``.
3. Pass 2, one Beam job per unit: its staged documents and its own verdict
   file (``dedup_verdicts.VerdictStage``: the same reason, detail and
   ``dedup_cluster`` fields as the Beam stages) -> the stages after them ->
   ``kept/``, ``dedup_state/`` and totals.
4. ``funnel.json`` and ``stats/pipeline_stats.json`` from the sum of all
   totals, by the code that renders a single job's (``funnel.build_funnel``,
   ``stats.assemble_totals``): kept ids, dropped rows and funnel are the ones
   a single job gives.

``_units/plan.json`` records the configuration (a hash of it), every input
file (path, size, mtime) and the units; a marker per unit and pass
(``unit-NNNNN/p1.done``, ``p2.done``) and one for the dedup step
(``dedup.done``) say what is finished.  ``mdfs run --resume`` on an output
left ``_INCOMPLETE`` refuses if the configuration or the input files differ,
skips finished work, and redoes an unfinished unit's pass after removing its
partial outputs (its tagged shards, Beam's temporary folders, its staging
folder): no record is counted twice or lost.  Staged documents and rows are
removed once no later step needs them; plan, markers and totals stay.

A run is one job, as before, on Flink, Spark and Dataflow (the engine
manages memory), for a single unit, with ``run.unit_mb: 0``, with a remote
output, cc_index sources or ``--dedup-against``, and when a corpus-scope
stage runs that ``decide`` does not make (``one_job_reason`` says which).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

UNITS = "_units"
PLAN = "plan.json"
# Disk the staging takes at its peak (the dedup step), per byte of input: staged documents (zstd),
# dedup rows and decide()'s work files (about 1.2-1.3 KB per document each: a 256-slot signature
# does not compress).  Measured 3.09 on bench_scale's gzipped JSONL (100,000 documents, 123 MB:
# 249 MB staged, 130 MB of work files; docs/SCALE.md); the kept output comes on top
STAGING_PER_INPUT_BYTE = 3.2



class Refused(Exception):
    """A run in units that cannot start or resume (exit 2, one line, nothing written)."""


@dataclass
class Plan:
    files: list  # [source, path, size, mtime_ns], in the units' order
    units: list  # [[file index, ...], ...]
    config_sha256: str
    unit_mb: float
    resume: bool = False
    sizes: list = field(default_factory=list)  # input bytes per unit

    def as_json(self) -> dict:
        return {"version": 1, "config_sha256": self.config_sha256, "unit_mb": self.unit_mb,
                "files": self.files, "units": self.units}


# --- the plan ---------------------------------------------------------------------------

def config_sha256(cfg) -> str:
    """A hash of the effective configuration's values (key order and spelling aside)."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def local_runner(options) -> bool:
    """The DirectRunner, in any of its forms: the runners units of files are for."""
    from ..options import DIRECT_RUNNERS, runner_name

    return runner_name(options) in (*DIRECT_RUNNERS, "bundlebaseddirectrunner")


def one_job_reason(cfg, options, output_dir: str) -> str | None:
    """Why this run is one job rather than units of files; None: units apply."""
    from ..build import build_context
    from ..formats import REGISTRY
    from ..stage import CORPUS
    from ..stages import running, split_stages
    from ..stages.dedup_corpus import unsupported

    if not cfg.run.unit_mb:
        return "run.unit_mb is 0"
    if not local_runner(options):
        return "the runner manages its own memory (units are for the DirectRunner)"
    if "://" in output_dir:
        return "the output is not on a local disk"
    given = cfg.as_dict()["sources"]  # TODO(#36 typed config): as the readers take them
    if any(src.get("format") not in (None, "auto") and not REGISTRY[src["format"]].by_file for src in given.values()):
        return "a source not read file by file (cc_index) is read as one job"
    why = unsupported(cfg)
    if why:
        return why
    stages = running(build_context(cfg, output_dir))
    whole = [s.name for s in stages if not s.in_units]
    if whole:
        return f"stage {whole[0]} writes one report of everything it sees per job"
    _, corpus, tail = split_stages(stages)
    if not corpus:
        return "no corpus-scope stage runs (nothing is held across the corpus)"
    odd = [s.name for s in corpus if not s.rows_decided] + [s.name for s in tail if s.scope == CORPUS]
    if odd:
        return f"stage {odd[0]} needs the whole corpus and is not decided by the corpus-wide dedup step"
    return None


def input_files(cfg) -> list[list]:
    """[source, path, size, mtime_ns] of every readable file the sources match, each file
    once as the readers take it (the shortest of the paths that reach one real file), in
    a stable order: by path, then source."""
    from ..io.readers.match import expand_pattern, shortest_path

    by_real = {}
    for name, src in cfg.as_dict()["sources"].items():
        for pattern in src["paths"]:
            for path, size in expand_pattern(pattern)[0]:
                real = path if "://" in path else os.path.realpath(path)
                by_real.setdefault((name, real), []).append((path, size))
    out = []
    for (name, _real), found in by_real.items():
        path, size = shortest_path(found)
        # a remote file's modification time is not read here: its size stands for it
        out.append([name, path, int(size), None if "://" in path else os.stat(path).st_mtime_ns])
    return sorted(out, key=lambda f: (f[1], f[0]))


def group(files: list[list], unit_bytes: float) -> list[list[int]]:
    """Consecutive files into units of at most ``unit_bytes`` (a bigger file is a unit of its own)."""
    units, size = [], 0
    for i, f in enumerate(files):
        if not units or size + f[2] > unit_bytes:
            units.append([])
            size = 0
        units[-1].append(i)
        size += f[2]
    return units


def plan_units(cfg, output_dir: str, options, resume: bool = False) -> Plan | None:
    """The units of this run, or None for one job; with ``resume``, the plan the output
    was started with, after checking that configuration and inputs are the same.  Raises
    ``Refused`` (one line) before anything is written."""
    root = output_dir.rstrip("/")
    why = one_job_reason(cfg, options, output_dir)
    if resume:
        stored = _stored_plan(root)
        if why:
            raise Refused(f"--resume: this run would be one job ({why}); only a run in units resumes")
    if why:
        return None
    files = input_files(cfg)
    plan = Plan(files, group(files, float(cfg.run.unit_mb) * 1e6), config_sha256(cfg), float(cfg.run.unit_mb))
    if resume:
        _same_as_stored(plan, stored, root)
        plan.resume = True
    elif len(plan.units) < 2:
        return None
    plan.sizes = [sum(plan.files[i][2] for i in u) for u in plan.units]
    _check_disk(plan, root)
    return plan


def _stored_plan(root: str) -> dict:
    try:
        with open(f"{root}/{UNITS}/{PLAN}", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        raise Refused(f"--resume: {root} was not run in units of files (no {UNITS}/{PLAN}); "
                      "it cannot be resumed (--overwrite starts again)") from None


def _same_as_stored(plan: Plan, stored: dict, root: str) -> None:
    if stored.get("config_sha256") != plan.config_sha256:
        raise Refused(f"--resume: the configuration differs from the one {root} was started with "
                      f"(see {root}/config.yaml); resume with the same configuration, or --overwrite")
    old = {(f[0], f[1]): f for f in stored.get("files", [])}
    new = {(f[0], f[1]): f for f in plan.files}
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[1], k[0])):
        if old.get(key) != new.get(key):
            what = ("is new" if key not in old else "is gone" if key not in new
                    else "has changed (size or modification time)")
            raise Refused(f"--resume: input file {key[1]} (source {key[0]}) {what} since {root} was started; "
                          "resume with the same inputs, or --overwrite")
    plan.files, plan.units = stored["files"], stored["units"]


def _check_disk(plan: Plan, root: str) -> None:
    """Free disk at the output for what the units will stage (the units still to do)."""
    done = {u for u in range(len(plan.units)) if plan.resume and os.path.exists(_marker(root, u, 1))}
    todo = sum(s for u, s in enumerate(plan.sizes) if u not in done)
    need = STAGING_PER_INPUT_BYTE * todo
    where = os.path.abspath(root)
    while not os.path.exists(where):
        where = os.path.dirname(where)
    free = shutil.disk_usage(where).free
    if free < need:
        raise Refused(f"not enough free disk for the units' staging at {root}: about {need / 1e9:.1f} GB needed "
                      f"({STAGING_PER_INPUT_BYTE:g} x {todo / 1e9:.2f} GB of input), {free / 1e9:.1f} GB free "
                      "(run.unit_mb: 0 runs one job, which stages nothing on disk)")


# --- running ------------------------------------------------------------------------------

def _unit_dir(root: str, unit: int) -> str:
    return f"{root}/{UNITS}/unit-{unit:05d}"


def _marker(root: str, unit: int | None, pass_: int) -> str:
    return f"{root}/{UNITS}/dedup.done" if unit is None else f"{_unit_dir(root, unit)}/p{pass_}.done"


def _mark(path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")


def run_units(plan: Plan, cfg, output_dir: str, options) -> None:
    """Every unit's pass 1, the corpus-wide dedup step, every unit's pass 2, then
    funnel.json and the statistics; finished work (markers) is skipped."""
    from ..progress import ProgressWatcher, progress_dir

    root = output_dir.rstrip("/")
    os.makedirs(f"{root}/{UNITS}", exist_ok=True)
    if not os.path.exists(f"{root}/{UNITS}/{PLAN}"):
        with open(f"{root}/{UNITS}/{PLAN}", "w", encoding="utf-8") as fh:
            json.dump(plan.as_json(), fh)
    done = sum(os.path.exists(_marker(root, u, 2)) for u in range(len(plan.units)))
    print(f"mdfs: {len(plan.files)} input files in {len(plan.units)} units of up to {plan.unit_mb:g} MB "
          f"(run.unit_mb), each read by a job of its own, dedup decided over all of them on disk"
          + (f"; resuming ({done} units finished)" if plan.resume else ""), file=sys.stderr, flush=True)
    if plan.resume:
        _remove_temporaries(root)
    watch = progress_dir(output_dir)
    status = UnitProgress(plan)
    with ProgressWatcher(watch, cfg.read.progress_every_s, line=status.line):
        _pass(plan, cfg, root, options, 1, status, watch)
        _dedup_step(plan, cfg, root)
        _pass(plan, cfg, root, options, 2, status, watch)
    assemble(plan, cfg, root)
    shutil.rmtree(f"{root}/{UNITS}/dedup", ignore_errors=True)  # the verdicts: every unit has applied its own


def _pass(plan: Plan, cfg, root: str, options, pass_: int, status: "UnitProgress", watch: str) -> None:
    from ..build import UnitJob, build_unit
    from ..progress import read_totals

    todo = [u for u in range(len(plan.units)) if not os.path.exists(_marker(root, u, pass_))]
    status.start(pass_, todo)
    for u in todo:
        _remove_partial(root, u, pass_)
        files = frozenset((plan.files[i][0], plan.files[i][1]) for i in plan.units[u])
        job = UnitJob(u, pass_, _unit_dir(root, u), files, unreadable=(u == 0),
                      decisions=f"{root}/{UNITS}/dedup/decisions/unit-{u:05d}.parquet")
        import apache_beam as beam

        from ..options import job_runner

        p = beam.Pipeline(runner=job_runner(options), options=options)
        build_unit(p, cfg, root, job)
        p.run().wait_until_finish()
        del p
        release_freed_memory()
        status.unit_done(u, read_totals(watch).get(status.point, 0))
        shutil.rmtree(watch, ignore_errors=True)
        _mark(_marker(root, u, pass_))
        if pass_ == 2:  # nothing later reads the unit's staged documents
            shutil.rmtree(f"{_unit_dir(root, u)}/p1/docs", ignore_errors=True)


def release_freed_memory() -> None:
    """Between two units' jobs: the finished job's objects collected, and the heap
    pages they freed given back to the system (glibc's ``malloc_trim``, as
    Dask's workers do).  Without it a long run's resident memory crept up by
    a few MB per job: freed pages scattered among live ones stay resident,
    though no Python object outlives its job (measured over 60 jobs:
    tests/test_units.py)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator keeps its pages
        pass


def _dedup_step(plan: Plan, cfg, root: str) -> None:
    """``dedup_corpus.decide`` over every unit's rows, near_dedup.json, then the rows removed."""
    from ..io.sinks import write_json
    from ..stages.dedup_corpus import decide

    if os.path.exists(_marker(root, None, 0)):
        return
    work = f"{root}/{UNITS}/dedup"
    shutil.rmtree(work, ignore_errors=True)
    rows = [str(p) for u in range(len(plan.units))
            for p in sorted(_glob(f"{_unit_dir(root, u)}/p1/rows"))]
    t0 = time.monotonic()
    print(f"mdfs: the corpus-wide dedup step over {len(plan.units)} units", file=sys.stderr, flush=True)
    staged = sum(_size(f"{_unit_dir(root, u)}/p1") for u in range(len(plan.units)))
    if rows:
        decisions = decide(rows, cfg, work)
        if decisions.near_stats is not None:
            write_json(decisions.near_stats, f"{root}/near_dedup.json")
        print(f"mdfs: dedup decided {sum(decisions.counts.values()):,} documents in {time.monotonic() - t0:.0f} s "
              f"({', '.join(f'{n:,} {v}' for v, n in decisions.counts.items())})", file=sys.stderr, flush=True)
        with open(f"{root}/{UNITS}/staging.json", "w", encoding="utf-8") as fh:  # for docs/SCALE.md's disk figures
            json.dump({"input_bytes": sum(f[2] for f in plan.files), "staged_bytes": staged,
                       "dedup_work_bytes": decisions.work_bytes, "documents": sum(decisions.counts.values())}, fh)
    _mark(_marker(root, None, 0))
    for u in range(len(plan.units)):
        shutil.rmtree(f"{_unit_dir(root, u)}/p1/rows", ignore_errors=True)


def _size(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(folder) for n in names)


def _glob(folder: str) -> list[str]:
    try:
        return [f"{folder}/{n}" for n in os.listdir(folder) if n.endswith(".parquet")]
    except FileNotFoundError:
        return []


def _remove_partial(root: str, unit: int, pass_: int) -> None:
    """What an unfinished job of this unit and pass left: its staging folder and every
    output shard whose name carries its tag."""
    from ..build import UnitJob

    shutil.rmtree(f"{_unit_dir(root, unit)}/p{pass_}", ignore_errors=True)
    tag = f"-{UnitJob(unit, pass_, '').tag}-"
    for folder, dirs, names in os.walk(root):
        if folder == root:
            dirs[:] = [d for d in dirs if d != UNITS]
        for n in names:
            if tag in n:
                os.remove(os.path.join(folder, n))


def _remove_temporaries(root: str) -> None:
    """Beam's temporary folders of a killed job's sinks (``beam-temp-*``): no job runs now."""
    for folder, dirs, _ in os.walk(root):
        for d in [d for d in dirs if d.startswith("beam-temp-")]:
            shutil.rmtree(os.path.join(folder, d), ignore_errors=True)
            dirs.remove(d)


# --- the run's funnel and statistics --------------------------------------------------------

def assemble(plan: Plan, cfg, root: str) -> None:
    """funnel.json and stats/pipeline_stats.json from every job's totals, as one job writes them."""
    from ..build import build_context
    from ..funnel import build_funnel, totals_from_json
    from ..io.sinks import write_json
    from ..stages import funnel_fields, running
    from ..stats import assemble_totals

    events, items = Counter(), []
    for u in range(len(plan.units)):
        for pass_ in (1, 2):
            with open(f"{_unit_dir(root, u)}/p{pass_}/funnel.json", encoding="utf-8") as fh:
                for key, n in totals_from_json(json.load(fh)):
                    events[key] += n
            with open(f"{_unit_dir(root, u)}/p{pass_}/stats.json", encoding="utf-8") as fh:
                items.extend(json.load(fh)["items"])
    stages = [s.name for s in running(build_context(cfg, root))]
    write_json(build_funnel(list(events.items()), stages, list(cfg.sources), funnel_fields(cfg)),
               f"{root}/funnel.json")
    write_json(assemble_totals(items), f"{root}/stats/pipeline_stats.json")


# --- progress -------------------------------------------------------------------------------

class UnitProgress:
    """The live line of a run in units: the pass, units done and to do, documents per
    second in this pass and the pass's ETA (from the input bytes of the units finished in
    this process so far)."""

    LABELS = {1: ("read and the document stages", "records read"),
              2: ("dedup verdicts and the later stages", "documents staged")}

    def __init__(self, plan: Plan):
        self.sizes = plan.sizes or [0] * len(plan.units)
        self.pass_, self.todo, self.point = 1, [], "records read"
        self.t0, self.docs_done, self.bytes_done = time.monotonic(), 0, 0

    def start(self, pass_: int, todo: list[int]) -> None:
        self.pass_, self.todo, self.point = pass_, list(todo), self.LABELS[pass_][1]
        self.t0, self.docs_done, self.bytes_done = time.monotonic(), 0, 0

    def unit_done(self, unit: int, docs: int) -> None:
        self.todo.remove(unit)
        self.docs_done += docs
        self.bytes_done += self.sizes[unit]

    def line(self, totals: dict, now: float) -> str:
        n = len(self.sizes)
        elapsed = max(now - self.t0, 1e-9)
        docs = self.docs_done + int(totals.get(self.point, 0))
        left = sum(self.sizes[u] for u in self.todo)
        eta = (f"ETA of this pass {_duration(left * elapsed / self.bytes_done)}" if self.bytes_done
               else "ETA after its first unit")
        return (f"pass {self.pass_} of 2 ({self.LABELS[self.pass_][0]}): {n - len(self.todo)} of {n} units done, "
                f"{docs:,} {self.point.split()[0]} ({docs / elapsed:,.0f}/s), {eta}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else \
        f"{seconds / 3600:.1f} h"


def describe(root: str) -> str | None:
    """How far a run in units got (``mdfs funnel`` on an incomplete run), or None."""
    try:
        with open(f"{root}/{UNITS}/{PLAN}", encoding="utf-8") as fh:
            n = len(json.load(fh)["units"])
    except (OSError, ValueError, KeyError):
        return None
    done = [sum(os.path.exists(_marker(root, u, p)) for u in range(n)) for p in (1, 2)]
    dedup = "done" if os.path.exists(_marker(root, None, 0)) else "to do"
    return (f"{n} units: pass 1 (read and the document stages) done for {done[0]}, {n - done[0]} to do; "
            f"the corpus-wide dedup step {dedup}; pass 2 (dedup verdicts and the later stages) done for "
            f"{done[1]}, {n - done[1]} to do; `mdfs run` with the same configuration and --resume continues")
