"""Command-line flags of ``mdfs run`` as a Beam ``PipelineOptions`` subclass, so
the same flags work as Dataflow Flex Template parameters (the template
launcher passes them as ``--name=value``; ``deploy/dataflow/metadata.json``
lists them and a test checks the two agree).  The CLI parses these flags
itself and removes them before Beam's options are built; every other flag
must be a Beam pipeline option (``--runner``, ``--direct_running_mode``,
``--project``, ...), or the run is refused."""
from __future__ import annotations

import argparse
import difflib

from apache_beam.options.pipeline_options import PipelineOptions


def parse_bool(text) -> bool:
    if isinstance(text, bool):
        return text
    low = str(text).strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class MdfsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output", required=False, help="output directory (local path or gs://, s3://, ...)")
        parser.add_argument("--config", default=None, help="YAML config file (deep-merged over the defaults)")
        parser.add_argument("--source", action="append", default=None, metavar="NAME=GLOB",
                            help="add a source, or replace its paths; may repeat")
        parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY.PATH=VALUE",
                            help="override one config value (parsed as YAML); may repeat")
        parser.add_argument("--dedup-against", "--dedup_against", dest="dedup_against", action="append", default=None,
                            metavar="RUN_DIR", help="also deduplicate against an earlier run's kept documents; "
                            "may repeat (config: dedup_against)")
        parser.add_argument("--overwrite", nargs="?", const=True, default=False, type=parse_bool,
                            help="replace an existing output directory instead of refusing")
        parser.add_argument("--resume", nargs="?", const=True, default=False, type=parse_bool,
                            help="continue a run in units of files left incomplete (killed, interrupted, "
                            "failed) from its last finished unit; the configuration and inputs must be the same")
        parser.add_argument("--debug", nargs="?", const=True, default=False, type=parse_bool,
                            help="show tracebacks and third-party log lines")


class JobOptions(PipelineOptions):
    """Beam's pipeline options for one job, with each view made once.

    Beam asks the options for views (``TypeOptions``, ``StandardOptions``, ...)
    several times per transform while it builds and translates a graph, and
    every ``view_as`` parses all the flags again with a new argparse parser
    (0.5-1 ms each: about a second of each run's start-up for mdfs's few
    hundred transforms).  A view holds no state of its own: it reads and
    writes the options it came from (Beam's contract for ``view_as``), so one
    view per class answers exactly as a new one would."""

    def view_as(self, cls):
        views = self.__dict__.setdefault("_views", {})
        if cls not in views:
            views[cls] = super().view_as(cls)
        return views[cls]


class FlagError(ValueError):
    """A flag that is neither mdfs's nor Beam's (or a stray argument)."""


def beam_option_parser():
    """A parser that knows every Beam pipeline option (not mdfs's own)."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__() if c not in (MdfsOptions, JobOptions)}.values():
        cls._add_argparse_args(parser)
    return parser


def split_flags(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(mdfs's own flags, Beam's flags); raises FlagError for anything else."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message):  # argparse would exit; a FlagError is reported by the CLI
            raise FlagError(message)

    own = _Parser(prog="mdfs run", allow_abbrev=False, add_help=False)
    MdfsOptions._add_argparse_args(own)
    args, rest = own.parse_known_args(argv)
    beam_parser = beam_option_parser()
    _, unknown = beam_parser.parse_known_args(rest)
    if unknown:
        bad = unknown[0]
        if not bad.startswith("-"):
            raise FlagError(f"unexpected argument {bad!r} (flags take the form --name=value)")
        name = bad.split("=", 1)[0]
        known = [s for a in own._actions + beam_parser._actions for s in a.option_strings if s.startswith("--")]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        raise FlagError(f"unknown flag {name}" + (f" (did you mean {close[0]}?)" if close else "")
                        + "; mdfs run takes its own flags (see --help) and Beam pipeline options")
    return args, rest


# --runner names of Beam's DirectRunner (the default)
DIRECT_RUNNERS = ("direct", "directrunner", "switchingdirectrunner")


def runner_name(options: PipelineOptions) -> str:
    """``--runner`` as Beam matches it: the class name, in lower case; the DirectRunner's when none is given."""
    from apache_beam.options.pipeline_options import StandardOptions

    return str(options.view_as(StandardOptions).runner or "DirectRunner").rsplit(".", 1)[-1].lower()


def job_runner(options: PipelineOptions):
    """The runner a job is built with: for ``--runner=DirectRunner`` (the
    default) on a batch job, Beam's FnApiRunner, which is what the
    DirectRunner's batch path runs; None otherwise (Beam resolves
    ``--runner``).

    Beam 2.77's DirectRunner first offers the job to Prism: it translates the
    whole graph for it, fetches Prism's binary from GitHub when none is
    installed, and on a machine without that download falls back silently.
    So the same ``mdfs run`` ran on a different engine depending on the
    network (Prism holds a job's collections in its own process, see
    docs/PERFORMANCE.md), and every run paid a translation and a job-server
    start it then discarded, plus the DoFn introspection of two support
    checks (about half a CPU second of each run here).  ``--runner=PrismRunner``
    still runs Prism."""
    from apache_beam.options.pipeline_options import StandardOptions

    if runner_name(options) not in DIRECT_RUNNERS or options.view_as(StandardOptions).streaming:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    # as the DirectRunner builds it: the options reach the workers through the provision info
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
