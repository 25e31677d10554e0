"""Runs the job: checks the output directory, builds and runs the pipeline,
then prints the funnel and writes the ``_SUCCESS`` marker."""
from __future__ import annotations

import json
import logging
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from .build import build_pipeline, skipped_stages
from .funnel import render_funnel, write_json
from .readers import matched_files

log = logging.getLogger("mdfs.run")
OUTPUT_PARTS = ("kept", "dropped", "failed", "funnel.json", "near_dedup.json", "stats", "report", "_SUCCESS",
                "config.yaml")


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001
        return False


def prepare_output(output_dir: str, overwrite: bool) -> None:
    """Refuse to write into an existing mdfs output unless ``overwrite``; with it,
    remove the previous run's parts first so no stale shard survives."""
    root = output_dir.rstrip("/")
    present = [p for p in OUTPUT_PARTS if _exists(f"{root}/{p}")]
    if present and not overwrite:
        raise FileExistsError(f"{output_dir} already holds mdfs output ({', '.join(present)}); "
                              "pass --overwrite to replace it")
    for p in present:
        FileSystems.delete([f"{root}/{p}"])


def write_effective_config(cfg: dict, root: str) -> None:
    """OUTPUT/config.yaml: the configuration the run used (reproducibility; the report reads it)."""
    import yaml

    with FileSystems.create(f"{root}/config.yaml") as fh:
        fh.write(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).encode("utf-8"))


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


def run(cfg: dict, output_dir: str, options, overwrite: bool = False) -> int:
    root = output_dir.rstrip("/")
    problem = _output_problem(root)
    if problem:
        print(f"mdfs run: cannot write the output: {problem}", file=sys.stderr)
        return 2
    files = {n: matched_files(s["paths"]) for n, s in cfg["sources"].items()}
    empty = [n for n, found in files.items() if not found]
    if empty:
        print("mdfs run: " + "; ".join(f"source {n}: no input file matches {cfg['sources'][n]['paths']} "
                                        "(or none of the matches is a readable file)"
                                        for n in empty), file=sys.stderr)
        return 2
    try:
        prepare_output(output_dir, overwrite)
        FileSystems.mkdirs(root) if not _exists(root) else None
        write_effective_config(cfg, root)
    except FileExistsError as exc:
        print(f"mdfs run: {exc}", file=sys.stderr)
        return 2
    except (OSError, IOError) as exc:
        print(f"mdfs run: cannot write the output: {exc}", file=sys.stderr)
        return 2
    log.info("sources: %s", ", ".join(f"{n} ({len(found)} files)" for n, found in files.items()))
    skipped = skipped_stages(cfg)
    for name, why in skipped.items():
        print(f"mdfs: stage {name} SKIPPED: {why}", file=sys.stderr)
    t0 = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, cfg, output_dir)
    try:
        result = p.run()
        result.wait_until_finish()
    except Exception as exc:  # noqa: BLE001 - e.g. a full disk: one line, no complete-looking output
        detail = str(exc).strip().splitlines()
        print(f"mdfs run: the job failed, its output in {root} is incomplete (no _SUCCESS): "
              f"{type(exc).__name__}: {detail[-1] if detail else ''}"[:1000], file=sys.stderr)
        return 1
    elapsed = time.monotonic() - t0
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
    if not funnel["total"]["invariant_ok"]:
        print("mdfs run: read != kept + dropped + failed for some source (see funnel.json)", file=sys.stderr)
        return 1
    with FileSystems.create(f"{root}/_SUCCESS") as fh:
        fh.write(json.dumps({"elapsed_s": funnel["elapsed_s"], "total": funnel["total"]}).encode())
    return 0
