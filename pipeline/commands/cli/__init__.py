"""``mdfs`` command line: ``mdfs run`` (the filtering job) and helpers.

``main`` dispatches to one function per command; the commands live by what
they work on: jobs (run, refilter, config), finished outputs (funnel,
report), human review (sample, review); the classifier commands are
classifiers/cli.py's.  terminal.py keeps worker chatter out of stderr."""
from __future__ import annotations

import os
import sys

from ... import __version__
from . import terminal
from .finished import cmd_funnel, cmd_report, funnel_parser, report_parser
from .human_review import cmd_review, cmd_sample, review_parser, sample_parser
from .jobs import cmd_config, cmd_refilter, cmd_run, config_parser

# the parsers are read by the docs test (every flag named in docs/ARCHITECTURE.md)
__all__ = ["COMMANDS", "main", "config_parser", "funnel_parser", "report_parser", "review_parser", "sample_parser"]


def cmd_train_classifier(argv: list[str]) -> int:
    from mdfs.classifiers.cli import cmd_train

    return cmd_train(argv)


def cmd_eval_classifier(argv: list[str]) -> int:
    from mdfs.classifiers.cli import cmd_eval

    return cmd_eval(argv)


COMMANDS = {"run": cmd_run, "refilter": cmd_refilter, "config": cmd_config, "funnel": cmd_funnel,
            "report": cmd_report, "sample": cmd_sample, "review": cmd_review,
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
              "  refilter new thresholds over a run's candidates:   mdfs refilter RUN_DIR --output NEW_DIR "
              "[--set KEY=VALUE]\n"
              "  sample   stratified sample of a run's decisions:   mdfs sample RUN_DIR [--per-cell N]\n"
              "  review   review page / --summary / --export-training FILE:   mdfs review RUN_DIR\n"
              "  config   print the effective configuration\n"
              "  funnel   print the funnel of a finished run:   mdfs funnel DIR\n"
              "  report   corpus report of a finished run:   mdfs report DIR [--budget-tokens N | --model-params N]\n"
              "  train-classifier   mdfs train-classifier --train F.jsonl --output DIR [--kind bert|fasttext]\n"
              "  eval-classifier    mdfs eval-classifier --model DIR --test F.jsonl [--output REPORT.json]\n")
        return 0 if argv and argv[0] in ("-h", "--help") else (2 if argv else 0)
    verbose = terminal.VERBOSE = any(a in ("-v", "--verbose", "--debug") or a.startswith("--debug=") for a in argv[1:])
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    if not verbose:  # transformers' "Loading weights" / "Writing model shards" bars (read at its import; workers inherit)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    debug = any(a == "--debug" or a.startswith("--debug=") for a in argv[1:])
    terminal.setup_logging(verbose, debug)
    from .. import interrupt

    interrupt.install()  # a signal before, between or after the runs: one line as well
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (KeyboardInterrupt, interrupt.Interrupted) as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"mdfs {argv[0]}: interrupted", file=sys.stderr)
        return 128 + interrupt.signum_of(exc)
