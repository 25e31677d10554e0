"""``mdfs run`` and ``mdfs refilter``, the commands that start a Beam job, and
``mdfs config``, which shows the configuration such a job would run with."""
from __future__ import annotations

import argparse
import json
import sys

from . import terminal


def _configuration(prog: str, args, debug: bool = False) -> dict | None:
    """The checked configuration, or None after one line that says what is wrong."""
    from ...config import load_config

    try:
        return load_config(args.config, args.overrides, args.source, dedup_against=getattr(args, "dedup_against", None))
    except (ValueError, OSError) as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        if debug:
            import traceback

            traceback.print_exc()
        return None


RUN_USAGE = """usage: mdfs run --output DIR [--config FILE] [--source NAME=GLOB ...] [--set KEY.PATH=VALUE ...]
                [--dedup-against RUN_DIR ...] [--overwrite | --resume] [--debug] [Beam pipeline options, e.g. --runner=DirectRunner
                --direct_running_mode=multi_processing --direct_num_workers=2]

Runs the filtering pipeline; writes DIR/kept, DIR/dropped, DIR/failed (Parquet) and
DIR/funnel.json.  Any other flag must be a Beam pipeline option.  Exit status: 0 accepted,
1 the job failed, 2 a mistake found before the run (nothing written), 3 output rejected
(DIR/_REJECTED.json), 130/143 interrupted.  --overwrite replaces an earlier mdfs output (never a
file the run reads); --resume continues a run in units of files (run.unit_mb, docs/SCALE.md)
left incomplete, from its last finished unit, with the same configuration and inputs; --debug
adds the traceback behind a one-line error and the workers' INFO log.
See README.md for the configuration reference."""


def cmd_run(argv: list[str]) -> int:
    from ..engines import EngineError, prepare_engine
    from ...options import FlagError, JobOptions, split_flags
    from ..run import run

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
    try:  # the engine binary found, a harness log level every SDK accepts (pipeline/commands/engines.py)
        beam_args = prepare_engine(beam_args, args.debug)
    except EngineError as exc:
        print(f"mdfs run: {exc}", file=sys.stderr)
        return 2
    with terminal.quiet(terminal.VERBOSE or args.debug):
        return run(cfg, args.output, JobOptions(beam_args), overwrite=args.overwrite, resume=args.resume)


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
    from ..engines import EngineError, prepare_engine
    from ...options import FlagError, JobOptions, split_flags
    from ..refilter import refilter

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
    if args.resume:
        print("mdfs refilter: --resume continues an mdfs run in units of files; a refilter is one job", file=sys.stderr)
        return 2
    if not args.output:
        print("mdfs refilter: --output NEW_DIR is required", file=sys.stderr)
        return 2
    try:
        beam_args = prepare_engine(beam_args, args.debug)
    except EngineError as exc:
        print(f"mdfs refilter: {exc}", file=sys.stderr)
        return 2
    with terminal.quiet(terminal.VERBOSE or args.debug):
        return refilter(run_dir, args.output, args.config, args.overrides, JobOptions(beam_args),
                        dedup_against=args.dedup_against, overwrite=args.overwrite)


def config_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs config", allow_abbrev=False,
                                 description="Print the effective configuration, or its JSON Schema.")
    ap.add_argument("--config")
    ap.add_argument("--source", action="append")
    ap.add_argument("--set", dest="overrides", action="append")
    ap.add_argument("--schema", action="store_true", help="print the JSON Schema of the configuration")
    ap.add_argument("--stages", action="store_true",
                    help="print the document stages in order: what each declares and whether it runs with this "
                         "configuration (custom_stages included)")
    return ap


def cmd_config(argv: list[str]) -> int:
    """Print the effective configuration (defaults + file + overrides) as YAML,
    with --schema the JSON Schema of the configuration (for editors), or with
    --stages the declared stages and whether each runs."""
    import yaml

    from ...config import load_defaults
    from ...schema_check import json_schema

    a = config_parser().parse_args(argv)
    if a.schema:
        print(json.dumps(json_schema(load_defaults()), indent=2, ensure_ascii=False))
        return 0
    cfg = _configuration("mdfs config", a)
    if cfg is None:
        return 2
    if a.stages:
        from ...stages import plan, render_plan

        try:
            print(render_plan(plan(cfg)))
        except (ImportError, AttributeError, ValueError) as exc:  # a custom stage that does not load
            print(f"mdfs config: custom_stages: {exc}", file=sys.stderr)
            return 2
        return 0
    print(yaml.safe_dump(cfg.as_dict(), sort_keys=False, allow_unicode=True))
    return 0
