"""``mdfs funnel`` and ``mdfs report``: commands that read a finished run's
output directory (and say so when it holds no finished run)."""
from __future__ import annotations

import argparse
import json
import sys


def _finished_output(prog: str, output: str) -> int | None:
    """Say what an output directory holds when it is not a finished run;
    returns an exit status when there is nothing to show."""
    from ..run import REJECTED, output_state

    root = output.rstrip("/")
    state = output_state(root)
    if state is None:
        print(f"{prog}: {output} holds no mdfs output", file=sys.stderr)
        return 2
    if state == "incomplete":
        from ..units import describe

        print(f"{prog}: {output} holds an incomplete run (interrupted, killed or failed); "
              "its funnel and statistics are missing or partial", file=sys.stderr)
        units = describe(root)
        if units:
            print(f"{prog}: {units}", file=sys.stderr)
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
    from ...funnel import render_funnel
    from ...io.readback import ReadBackError, load_funnel_for_display

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
    from ..report import render_mix, write_report

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

        from ...config import weight_problems

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
