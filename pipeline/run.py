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


def run(cfg: dict, output_dir: str, options, overwrite: bool = False) -> int:
    try:
        prepare_output(output_dir, overwrite)
    except FileExistsError as exc:
        print(f"mdfs run: {exc}", file=sys.stderr)
        return 2
    files = {n: matched_files(s["paths"]) for n, s in cfg["sources"].items()}
    empty = [n for n, found in files.items() if not found]
    for n in empty:
        log.warning("source %s: no file matches %s", n, cfg["sources"][n]["paths"])
    if len(empty) == len(cfg["sources"]):
        print("mdfs run: no input file matches any source", file=sys.stderr)
        return 2
    root = output_dir.rstrip("/")
    FileSystems.mkdirs(root) if not _exists(root) else None
    write_effective_config(cfg, root)
    log.info("sources: %s", ", ".join(f"{n} ({len(found)} files)" for n, found in files.items()))
    skipped = skipped_stages(cfg)
    for name, why in skipped.items():
        print(f"mdfs: stage {name} SKIPPED: {why}", file=sys.stderr)
    t0 = time.monotonic()
    p = beam.Pipeline(options=options)
    build_pipeline(p, cfg, output_dir)
    result = p.run()
    result.wait_until_finish()
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
