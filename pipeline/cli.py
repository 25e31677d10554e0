"""``mdfs`` command line: ``mdfs run`` (the filtering job) and helpers."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading

from . import __version__

_VERBOSE = False


class _KnownNoise(logging.Filter):
    """Third-party lines that say nothing to an mdfs user, at default verbosity:
    Beam's import-time note about apitools (a GCP client mdfs does not use)."""

    PREFIXES = ("apitools not found",)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.PREFIXES)


class QuietChildren:
    """At default verbosity, the known noise of worker processes (Beam's
    multi-process and portable workers print their start-up chatter straight
    to the stderr they inherit, where no logging filter reaches) is taken out
    of this process's stderr (file descriptor 2, which the workers inherit):
    a pipe and a thread that passes every other line through unchanged.
    Once SIGINT or SIGTERM arrived, only mdfs's own lines pass: a Ctrl-C
    reaches every worker too, and each would print its traceback (other
    lines are held HOLD_S so that those printed just before this process's
    handler ran are caught too)."""

    NOISE = re.compile(r"apitools not found|Logging handler created|No semi_persistent_directory found"
                       r"|Discarding unparseable args|Pipeline type checking is enabled")

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        # The signal's arrival, written by the C-level handler at once: Python's own handler
        # runs only when the main thread next executes bytecode, which may be after the
        # workers' tracebacks (a SIGTERM to the process group kills them at once).
        self._wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self._wake_w = wake_w
        try:
            self._old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: Python's handler alone tells
            self._old_wakeup = None
        self._thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self._thread.start()
        return self

    HOLD_S = 0.5  # other lines wait this long: a Ctrl-C reaches the workers as soon as this process

    def _pump(self, read_end: int) -> None:
        """Lines from the pipe to the real stderr, in order; mdfs's own at once,
        others after HOLD_S, and none of those once a signal has arrived."""
        import collections
        import select
        import time

        from .interrupt import SIGNALLED

        pending, rest, open_, signalled = collections.deque(), b"", True, False
        while open_ or pending:
            ready = select.select([read_end, self._wake_r], [], [], 0.1)[0] if open_ else []
            if self._wake_r in ready:  # the bytes are the signals' numbers
                signalled |= bool({signal.SIGINT, signal.SIGTERM} & set(os.read(self._wake_r, 512)))
            if read_end in ready:
                chunk = os.read(read_end, 65536)
                if chunk:
                    *lines, rest = (rest + chunk).split(b"\n")
                    pending.extend((time.monotonic(), ln + b"\n") for ln in lines)
                else:
                    open_ = False
                    if rest:
                        pending.append((time.monotonic(), rest))
            if signalled or SIGNALLED:  # the workers' and Beam threads' tracebacks: mdfs says it in one line
                pending = collections.deque(p for p in pending if p[1].startswith(b"mdfs"))
            now = time.monotonic()
            while pending and (pending[0][1].startswith(b"mdfs") or now - pending[0][0] >= self.HOLD_S
                               or not open_):
                line = pending.popleft()[1]
                if not self.NOISE.search(line.decode("utf-8", "replace")):
                    os.write(self._saved, line)
        os.close(read_end)

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # the pipe closes once no worker holds it; the thread drains it
        self._thread.join(timeout=2)
        if self._old_wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
        if not self._thread.is_alive():  # else a worker still holds the pipe: the thread keeps its fds
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
        return False


def _quiet(verbose: bool):
    import contextlib

    return contextlib.nullcontext() if verbose else QuietChildren()


def _setup_logging(verbose: bool = False, debug: bool = False):
    if not verbose:
        logging.getLogger().addFilter(_KnownNoise())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("mdfs")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)  # --debug: the tracebacks behind one-line errors
    logger.addHandler(handler)
    logger.propagate = False


def _configuration(prog: str, args, debug: bool = False) -> dict | None:
    """The checked configuration, or None after one line that says what is wrong."""
    from .config import load_config

    try:
        return load_config(args.config, args.overrides, args.source, dedup_against=getattr(args, "dedup_against", None))
    except (ValueError, OSError) as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        if debug:
            import traceback

            traceback.print_exc()
        return None


RUN_USAGE = """usage: mdfs run --output DIR [--config FILE] [--source NAME=GLOB ...] [--set KEY.PATH=VALUE ...]
                [--dedup-against RUN_DIR ...] [--overwrite] [--debug] [Beam pipeline options, e.g. --runner=DirectRunner
                --direct_running_mode=multi_processing --direct_num_workers=2]

Runs the filtering pipeline; writes DIR/kept, DIR/dropped, DIR/failed (Parquet) and
DIR/funnel.json.  Any other flag must be a Beam pipeline option.  Exit status: 0 accepted,
1 the job failed, 2 a mistake found before the run (nothing written), 3 output rejected
(DIR/_REJECTED.json), 130/143 interrupted.  --overwrite replaces an earlier mdfs output (never a
file the run reads); --debug adds the traceback behind a one-line error and the workers' INFO log.
See README.md for the configuration reference."""


def cmd_run(argv: list[str]) -> int:
    from .engines import EngineError, prepare_engine
    from .options import FlagError, JobOptions, split_flags
    from .run import run

    if any(a in ("-h", "--help") for a in argv):
        print(RUN_USAGE)
        return 0
    try:
        args, beam_args = split_flags(argv)
    except FlagError as exc:
        print(f"mdfs run: {exc}", file=sys.stderr)
        return 2
    if not args.output:
        print("mdfs run: --output DIR is required", file=sys.stderr)
        return 2
    cfg = _configuration("mdfs run", args, debug=args.debug)
    if cfg is None:
        return 2
    try:  # the engine binary found, a harness log level every SDK accepts (pipeline/engines.py)
        beam_args = prepare_engine(beam_args, args.debug)
    except EngineError as exc:
        print(f"mdfs run: {exc}", file=sys.stderr)
        return 2
    with _quiet(_VERBOSE or args.debug):
        return run(cfg, args.output, JobOptions(beam_args), overwrite=args.overwrite)


REFILTER_USAGE = """usage: mdfs refilter RUN_DIR --output NEW_DIR [--config FILE] [--set KEY.PATH=VALUE ...]
                [--overwrite] [--debug] [Beam pipeline options]

Applies new rule and classifier thresholds to a finished run that kept its candidate store
(output.candidates: true), without reading or extracting again: the coarse rules decide from
the stored signals, decontamination, pii and dedup run again on the new candidate set, the
classifier scores only documents without stored scores.  --config and --set apply on top of
RUN_DIR's own configuration; only thresholds and decontamination settings may change (anything
else is refused, naming the key).  Writes a
complete output (kept, dropped, failed, funnel, stats, report) to NEW_DIR; RUN_DIR is not touched.
Exit status as for mdfs run."""


def cmd_refilter(argv: list[str]) -> int:
    from .engines import EngineError, prepare_engine
    from .options import FlagError, JobOptions, split_flags
    from .refilter import refilter

    if any(a in ("-h", "--help") for a in argv):
        print(REFILTER_USAGE)
        return 0
    if not argv or argv[0].startswith("-"):
        print("mdfs refilter: the run directory to refilter comes first: mdfs refilter RUN_DIR --output NEW_DIR",
              file=sys.stderr)
        return 2
    run_dir, rest = argv[0], argv[1:]
    try:
        args, beam_args = split_flags(rest)
    except FlagError as exc:
        print(f"mdfs refilter: {exc}", file=sys.stderr)
        return 2
    if args.source:
        print("mdfs refilter: --source cannot be used: a refilter reads the run's candidate store", file=sys.stderr)
        return 2
    if not args.output:
        print("mdfs refilter: --output NEW_DIR is required", file=sys.stderr)
        return 2
    try:
        beam_args = prepare_engine(beam_args, args.debug)
    except EngineError as exc:
        print(f"mdfs refilter: {exc}", file=sys.stderr)
        return 2
    with _quiet(_VERBOSE or args.debug):
        return refilter(run_dir, args.output, args.config, args.overrides, JobOptions(beam_args),
                        dedup_against=args.dedup_against, overwrite=args.overwrite)


def config_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs config", allow_abbrev=False,
                                 description="Print the effective configuration, or its JSON Schema.")
    ap.add_argument("--config")
    ap.add_argument("--source", action="append")
    ap.add_argument("--set", dest="overrides", action="append")
    ap.add_argument("--schema", action="store_true", help="print the JSON Schema of the configuration")
    return ap


def cmd_config(argv: list[str]) -> int:
    """Print the effective configuration (defaults + file + overrides) as YAML,
    or with --schema the JSON Schema of the configuration (for editors)."""
    import yaml

    from .config import load_defaults
    from .schema import json_schema

    a = config_parser().parse_args(argv)
    if a.schema:
        print(json.dumps(json_schema(load_defaults()), indent=2, ensure_ascii=False))
        return 0
    cfg = _configuration("mdfs config", a)
    if cfg is None:
        return 2
    print(yaml.safe_dump(cfg.as_dict(), sort_keys=False, allow_unicode=True))
    return 0


def _finished_output(prog: str, output: str) -> int | None:
    """Say what an output directory holds when it is not a finished run;
    returns an exit status when there is nothing to show."""
    from .run import REJECTED, output_state

    root = output.rstrip("/")
    state = output_state(root)
    if state is None:
        print(f"{prog}: {output} holds no mdfs output", file=sys.stderr)
        return 2
    if state == "incomplete":
        print(f"{prog}: {output} holds an incomplete run (interrupted, killed or failed); "
              "its funnel and statistics are missing or partial", file=sys.stderr)
        return 1
    if state == "rejected":
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(f"{root}/{REJECTED}") as fh:
            reasons = json.loads(fh.read()).get("reasons", [])
        print(f"{prog}: {output} holds a REJECTED run:", file=sys.stderr)
        for r in reasons:
            print(f"  - {r}", file=sys.stderr)
    return None


def funnel_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs funnel", description=cmd_funnel.__doc__, allow_abbrev=False)
    ap.add_argument("output")
    return ap


def cmd_funnel(argv: list[str]) -> int:
    """Print the funnel of a finished run."""
    from .funnel import render_funnel
    from .readback import ReadBackError, load_funnel_for_display

    a = funnel_parser().parse_args(argv)
    status = _finished_output("mdfs funnel", a.output)
    if status is not None:
        return status
    try:
        funnel = load_funnel_for_display(a.output.rstrip("/"))
    except ReadBackError as exc:
        print(f"mdfs funnel: {exc}", file=sys.stderr)
        return 2
    render_funnel(funnel)
    return 0


def _weight(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        w = float(value)
        if not 0 <= w <= 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SOURCE=WEIGHT with a weight from 0 to 1, got {text!r}") \
            from None
    return name, w


def _positive(text: str) -> float:
    try:
        value = float(text)
        if not value > 0 or value == float("inf"):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    return value


def report_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs report", allow_abbrev=False,
                                 description="Write OUTPUT/report/ from a finished run.")
    ap.add_argument("output")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--budget-tokens", type=_positive, default=None, help="training budget in tokens")
    budget.add_argument("--model-params", type=_positive, default=None,
                        help="model size N: budget = 20 N (Chinchilla)")
    ap.add_argument("--weight", action="append", default=[], metavar="SOURCE=W", type=_weight,
                    help="mix weight of a source (a source of the run)")
    ap.add_argument("--max-epochs", type=_positive, default=None)
    return ap


def cmd_report(argv: list[str]) -> int:
    """Write OUTPUT/report/ (stats.json, stats.csv, report.md, PNG plots) from a finished run."""
    from .report import render_mix, write_report

    a = report_parser().parse_args(argv)
    status = _finished_output("mdfs report", a.output)
    if status is not None:
        return status
    over = {}
    if a.budget_tokens is not None:  # a flag's budget replaces the configured one, whichever kind it was
        over["budget_tokens"], over["model_params"] = a.budget_tokens, None
    if a.model_params is not None:
        over["model_params"], over["budget_tokens"] = a.model_params, None
    if a.max_epochs is not None:
        over["max_epochs"] = a.max_epochs
    if a.weight:
        names = [n for n, _ in a.weight]
        if len(set(names)) != len(names):
            print(f"mdfs report: --weight names a source twice: {names}", file=sys.stderr)
            return 2
        from apache_beam.io.filesystems import FileSystems

        from .config import weight_problems

        with FileSystems.open(a.output.rstrip("/") + "/funnel.json") as fh:
            problems = weight_problems(dict(a.weight), list(json.loads(fh.read())["sources"]), "--weight")
        for line in problems:
            print(f"mdfs report: {line}", file=sys.stderr)
        if problems:
            return 2
        over["weights"] = dict(a.weight)
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


def sample_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs sample", allow_abbrev=False,
                                 description="Draw a reproducible stratified sample of a run's decisions "
                                             "(per source x outcome x stage x reason) into RUN_DIR/review/.")
    ap.add_argument("run_dir")
    ap.add_argument("--per-cell", type=int, default=20, help="documents per cell (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier sample that has no labels yet")
    return ap


def _sample_problem(run_dir: str, overwrite: bool) -> str | None:
    """An earlier sample is replaced only with --overwrite, and never once labels refer to it."""
    from .review import REVIEW_DIR

    folder = f"{run_dir.rstrip('/')}/{REVIEW_DIR}"
    if not os.path.exists(f"{folder}/sample.jsonl"):
        return None
    if not overwrite:
        return f"{folder} already holds a sample; pass --overwrite to draw a new one"
    labels = f"{folder}/labels.jsonl"
    if os.path.exists(labels) and os.path.getsize(labels):
        return f"--overwrite would replace the sample that {labels} refers to; move that file away first"
    return None


def cmd_sample(argv: list[str]) -> int:
    from .review import ReviewError, draw_sample

    a = sample_parser().parse_args(argv)
    if a.per_cell < 1:
        print("mdfs sample: --per-cell must be at least 1", file=sys.stderr)
        return 2
    why = _sample_problem(a.run_dir, a.overwrite)
    if why:
        print(f"mdfs sample: {why}", file=sys.stderr)
        return 2
    try:
        meta = draw_sample(a.run_dir, a.per_cell, a.seed)
    except ReviewError as exc:
        print(f"mdfs sample: {exc}", file=sys.stderr)
        return 2
    print(f"mdfs sample: {meta['items']} documents in {len(meta['cells'])} cells -> "
          f"{a.run_dir.rstrip('/')}/review/sample.jsonl"
          + ("" if meta["candidates"] else " (no candidate store: dropped documents show their excerpt only)"))
    print(f"review them: mdfs review {a.run_dir}")
    return 0


def review_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs review", allow_abbrev=False,
                                 description="Serve the review page for a run's sample (mdfs sample first), "
                                             "or summarise / export the labels given.")
    ap.add_argument("run_dir")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--allow-host", default="", metavar="NAME[,NAME]",
                    help="names/addresses browsers use; needed for a --host beyond loopback (docs/REVIEW.md)")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ap.add_argument("--reviewer", default=os.environ.get("USER") or "reviewer")
    ap.add_argument("--labels", default="high,low,ad", help="class labels, comma-separated (default high,low,ad)")
    ap.add_argument("--summary", action="store_true", help="print per-rule precision, kept label shares, agreement")
    ap.add_argument("--json", action="store_true", help="with --summary: JSON instead of tables")
    ap.add_argument("--export-training", metavar="FILE.jsonl", help="write text/label rows for mdfs train-classifier")
    return ap


def cmd_review(argv: list[str]) -> int:
    from .review import ReviewError, export_training, load_sample
    from .review_summary import render_summary, summary

    a = review_parser().parse_args(argv)
    try:
        load_sample(a.run_dir)
        if a.summary:
            s = summary(a.run_dir)
            print(json.dumps(s, indent=2, ensure_ascii=False)) if a.json else render_summary(s)
            return 0
        if a.export_training:
            r = export_training(a.run_dir, a.export_training)
            print(f"mdfs review: {r['rows']} text/label rows -> {r['path']} ({r['conflicting']} items with "
                  f"disagreeing labels and {r['excerpt_only']} excerpt-only items left out)")
            return 0
    except ReviewError as exc:
        print(f"mdfs review: {exc}", file=sys.stderr)
        return 2
    labels = [x.strip() for x in a.labels.split(",") if x.strip()]
    if not labels or len(set(labels)) != len(labels) or len(labels) > 9:
        print("mdfs review: --labels takes 1 to 9 distinct names", file=sys.stderr)
        return 2
    from .review_app import serve

    try:
        serve(a.run_dir, a.host, a.port, a.reviewer, labels,
              allow=[x.strip() for x in a.allow_host.split(",") if x.strip()])
    except ReviewError as exc:
        print(f"mdfs review: {exc}", file=sys.stderr)
        return 2
    return 0


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
    global _VERBOSE
    verbose = _VERBOSE = any(a in ("-v", "--verbose", "--debug") or a.startswith("--debug=") for a in argv[1:])
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    if not verbose:  # transformers' "Loading weights" / "Writing model shards" bars (read at its import; workers inherit)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    debug = any(a == "--debug" or a.startswith("--debug=") for a in argv[1:])
    _setup_logging(verbose, debug)
    from . import interrupt

    interrupt.install()  # a signal before, between or after the runs: one line as well
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (KeyboardInterrupt, interrupt.Interrupted) as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"mdfs {argv[0]}: interrupted", file=sys.stderr)
        return 128 + interrupt.signum_of(exc)


if __name__ == "__main__":
    sys.exit(main())
