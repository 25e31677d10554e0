"""``mdfs`` command line: ``mdfs run`` (the filtering job) and helpers."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from . import __version__


def _setup_logging():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("mdfs")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False


def cmd_run(argv: list[str]) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions

    from .config import load_config
    from .options import MdfsOptions
    from .run import run

    if any(a in ("-h", "--help") for a in argv):
        print("usage: mdfs run --output DIR [--config FILE] [--source NAME=GLOB ...] [--set KEY=VALUE ...]\n"
              "                [--overwrite] [Beam pipeline options, e.g. --runner DirectRunner\n"
              "                --direct_running_mode multi_processing --direct_num_workers 2]\n\n"
              "Runs the filtering pipeline; writes DIR/kept, DIR/dropped, DIR/failed (Parquet) and\n"
              "DIR/funnel.json.  See README.md for the configuration reference.")
        return 0
    if not any(a.startswith("--default_sdk_harness_log_level") for a in argv):
        argv = [*argv, "--default_sdk_harness_log_level=WARNING"]  # keep worker INFO chatter out of the way
    options = PipelineOptions(argv)
    mo = options.view_as(MdfsOptions)
    if not mo.output:
        print("mdfs run: --output DIR is required", file=sys.stderr)
        return 2
    try:
        cfg = load_config(mo.config, mo.overrides, mo.source)
    except (ValueError, OSError) as exc:
        print(f"mdfs run: configuration error: {exc}", file=sys.stderr)
        return 2
    return run(cfg, mo.output, options, overwrite=mo.overwrite)


def cmd_config(argv: list[str]) -> int:
    """Print the effective configuration (defaults + file + overrides) as YAML."""
    import yaml

    from .config import load_config

    ap = argparse.ArgumentParser(prog="mdfs config", description=cmd_config.__doc__)
    ap.add_argument("--config")
    ap.add_argument("--source", action="append")
    ap.add_argument("--set", dest="overrides", action="append")
    a = ap.parse_args(argv)
    print(yaml.safe_dump(load_config(a.config, a.overrides, a.source), sort_keys=False, allow_unicode=True))
    return 0


def cmd_funnel(argv: list[str]) -> int:
    """Print the funnel of a finished run."""
    from apache_beam.io.filesystems import FileSystems

    from .funnel import render_funnel

    ap = argparse.ArgumentParser(prog="mdfs funnel", description=cmd_funnel.__doc__)
    ap.add_argument("output")
    a = ap.parse_args(argv)
    with FileSystems.open(a.output.rstrip("/") + "/funnel.json") as fh:
        render_funnel(json.loads(fh.read()))
    return 0


def cmd_report(argv: list[str]) -> int:
    """Write OUTPUT/report/ (stats.json, stats.csv, report.md, PNG plots) from a finished run."""
    from .report import render_mix, write_report

    ap = argparse.ArgumentParser(prog="mdfs report", description=cmd_report.__doc__)
    ap.add_argument("output")
    ap.add_argument("--budget-tokens", type=float, default=None, help="training budget in tokens")
    ap.add_argument("--model-params", type=float, default=None, help="model size N: budget = 20 N (Chinchilla)")
    ap.add_argument("--weight", action="append", default=[], metavar="SOURCE=W", help="mix weight of a source")
    ap.add_argument("--max-epochs", type=float, default=None)
    a = ap.parse_args(argv)
    over = {}
    if a.budget_tokens:
        over["budget_tokens"] = a.budget_tokens
    if a.model_params:
        over["model_params"] = a.model_params
    if a.max_epochs:
        over["max_epochs"] = a.max_epochs
    if a.weight:
        over["weights"] = {k: float(v) for k, v in (w.split("=", 1) for w in a.weight)}
    try:
        rep = write_report(a.output, over)
    except (OSError, ValueError) as exc:
        print(f"mdfs report: {exc}", file=sys.stderr)
        return 2
    render_mix(rep)
    print(f"report written to {a.output.rstrip('/')}/report/ (report.md, stats.json, stats.csv, "
          f"{', '.join(rep.get('plots', []))})")
    return 0


def cmd_train_classifier(argv: list[str]) -> int:
    from ..classifiers.cli import cmd_train

    return cmd_train(argv)


def cmd_eval_classifier(argv: list[str]) -> int:
    from ..classifiers.cli import cmd_eval

    return cmd_eval(argv)


COMMANDS = {"run": cmd_run, "config": cmd_config, "funnel": cmd_funnel, "report": cmd_report,
            "train-classifier": cmd_train_classifier,
            "eval-classifier": cmd_eval_classifier}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] == "--version":
            print(f"mdfs {__version__}")
            return 0
        print(f"mdfs {__version__}: corpus filtering pipeline (Apache Beam)\n\n"
              "commands:\n"
              "  run      run the pipeline:   mdfs run --output DIR [--config FILE] [--source NAME=GLOB]\n"
              "  config   print the effective configuration\n"
              "  funnel   print the funnel of a finished run:   mdfs funnel DIR\n"
              "  report   corpus report of a finished run:   mdfs report DIR [--budget-tokens N | --model-params N]\n"
              "  train-classifier   mdfs train-classifier --train F.jsonl --output DIR [--kind bert|fasttext]\n"
              "  eval-classifier    mdfs eval-classifier --model DIR --test F.jsonl [--output REPORT.json]\n")
        return 0 if argv and argv[0] in ("-h", "--help") else (2 if argv else 0)
    _setup_logging()
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
