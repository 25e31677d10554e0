"""The Beam engines ``mdfs run`` starts itself: Prism, and Beam's Flink and
Spark job servers (Java), as built by ``deploy/local-engines.sh``.

``prepare_engine`` turns the user's Beam flags into ones those engines run
with: it finds the engine binary (the flag, then ``$MDFS_ENGINES``, then
``./.engines/``; never a download at run time), picks a harness log level
that both the Python and the Java SDK accept, keeps Spark's job server on
the loopback address, and keeps the job server's own output so that a failed
job is reported in one line with what the job server said.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import shutil

# runner -> (the Beam flag naming its binary, the file deploy/local-engines.sh builds)
ENGINE_FILES = {"FlinkRunner": ("flink_job_server_jar", "flink-job-server.jar"),
                "SparkRunner": ("spark_job_server_jar", "spark-job-server.jar"),
                "PrismRunner": ("prism_location", "prism")}
# Java's SdkHarnessOptions.LogLevel (the Flink and Spark job servers parse the
# flag as that enum and fail the job on any other name, e.g. WARNING); the
# Python harness reads the level with getattr(logging, NAME), which knows
# every one of these but TRACE and OFF
JAVA_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF")
PYTHON_ONLY = {"WARNING": "WARN"}  # the same level under Java's name
# Beam names a job server's logger after its class
JOB_SERVER_LOGGERS = ("FlinkJarJobServer", "SparkJarJobServer", "JavaJarJobServer", "PrismJobServer")


class EngineError(ValueError):
    """A Beam engine flag mdfs cannot run with (one line, exit 2)."""


def _flag(args: list[str], name: str) -> str | None:
    """The value of --name in Beam's flags (the last one wins, as in argparse)."""
    value = None
    for i, a in enumerate(args):
        if a == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
    return value


def engine_dirs() -> list[str]:
    """Where the built engines are looked for, in order."""
    dirs = [os.environ["MDFS_ENGINES"]] if os.environ.get("MDFS_ENGINES") else []
    return [*dirs, os.path.join(os.getcwd(), ".engines")]


def find_engine(runner: str) -> str:
    """The path of the runner's engine binary in the engine directories."""
    flag, name = ENGINE_FILES[runner]
    dirs = engine_dirs()
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise EngineError(f"--runner={runner} needs {name} (not in {' or '.join(dirs)}): build it with "
                      f"`bash deploy/local-engines.sh`, or pass --{flag}=PATH or set MDFS_ENGINES=DIR")


def _runner_name(args: list[str]) -> str:
    """The runner's class name; Beam also takes 'flink', 'spark', 'prism' in any case."""
    runner = (_flag(args, "runner") or "").rsplit(".", 1)[-1]
    for name in ENGINE_FILES:
        if runner.lower() in (name.lower(), name.lower().removesuffix("runner")):
            return name
    return runner


def prepare_engine(beam_args: list[str], debug: bool = False) -> list[str]:
    """Beam's flags with what the chosen engine needs added; raises EngineError."""
    args = list(beam_args)
    runner = _runner_name(args)
    java = runner in ("FlinkRunner", "SparkRunner")
    level = _flag(args, "default_sdk_harness_log_level")
    if level is None:
        # workers' INFO chatter out of the way unless --debug
        args.append("--default_sdk_harness_log_level=" + ("INFO" if debug else "WARN"))
    elif java and level.upper() not in JAVA_LOG_LEVELS:
        if level.upper() not in PYTHON_ONLY:
            raise EngineError(f"--default_sdk_harness_log_level={level}: {runner}'s job server knows only "
                              f"{', '.join(JAVA_LOG_LEVELS)}")
        args = [a for a in args if not a.startswith("--default_sdk_harness_log_level")]
        args.append(f"--default_sdk_harness_log_level={PYTHON_ONLY[level.upper()]}")
    if runner in ENGINE_FILES and not _flag(args, "job_endpoint"):
        flag, _ = ENGINE_FILES[runner]
        given = _flag(args, flag)
        if given is None:
            args.append(f"--{flag}={find_engine(runner)}")
        elif "://" not in given and not os.path.isfile(given):
            raise EngineError(f"--{flag}={given}: no such file")
        if java and shutil.which(_flag(args, "job_server_java_launcher") or "java") is None:
            raise EngineError(f"--runner={runner} starts its job server with Java 17, and `java` is not on PATH")
    if runner == "SparkRunner":
        master = _flag(args, "spark_master_url") or "local[4]"
        if master.startswith("local") or re.match(r"spark://(localhost|127\.0\.0\.1)[:/]", master):
            # else Spark binds its driver to the machine's network address
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if runner in ENGINE_FILES:
        keep_job_server_log(debug)
        if not debug:
            quiet_engine_noise()
    return args


# --- the job server's output ----------------------------------------------------------------

class _Tail(logging.Handler):
    def __init__(self, size: int = 400):
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)

    def emit(self, record):
        self.lines.append(record.getMessage())


_TAIL = _Tail()


def keep_job_server_log(debug: bool) -> None:
    """Keep the job server's last lines (Beam logs its output line by line at
    INFO under the job server class's name); shown as well only with --debug.
    The lines of an earlier job in this process are forgotten."""
    _TAIL.lines.clear()
    for name in JOB_SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if _TAIL not in logger.handlers:
            logger.addHandler(_TAIL)
        logger.propagate = debug


_JAVA_PROBLEM = re.compile(r"(Exception|Error)\b[:\s]|\bERROR\b")


def job_server_tail(width: int = 400) -> str:
    """The job server's last word on a failure: the innermost cause of its last
    Java exception (the line that names the actual problem), else its last
    error line; '' when it said nothing of the kind."""
    lines = [ln.strip() for ln in _TAIL.lines]
    causes = [ln for ln in lines if ln.startswith("Caused by:")]
    if causes:
        return causes[-1][len("Caused by:"):].strip()[:width]
    problems = [ln for ln in lines if _JAVA_PROBLEM.search(ln) and not ln.startswith("at ")]
    return problems[-1][:width] if problems else ""


def failure_line(exc: BaseException) -> str:
    """One line for a failed job: the exception, and for a job service's gRPC
    error its status and details (its str() is a multi-line dump that ends
    in '>') plus the job server's last problem lines."""
    name = type(exc).__name__
    details = getattr(exc, "details", None)
    if callable(details) and callable(getattr(exc, "code", None)):
        try:
            text = exc.code().name + (f": {details()}" if details() else "")
        except Exception:  # noqa: BLE001 - an RpcError that is no Call
            text = ""
    else:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip() not in (">", "")]
        text = lines[-1] if lines else ""
    tail = job_server_tail() if _TAIL.lines else ""
    return f"{name}: {text}" + (f" (job server: {tail})" if tail else "")


# --- known noise ---------------------------------------------------------------------------

def _hang_up(exc: BaseException | None) -> bool:
    """A data stream the runner closed after its stage finished (Spark does so
    for every stage; the in-process LOOPBACK worker reports it as an error and
    its reader thread dies with it, though every bundle has completed)."""
    code = getattr(exc, "code", None)
    try:
        return callable(code) and code().name == "CANCELLED" and "hanging up" in str(exc.details())
    except Exception:  # noqa: BLE001 - not a gRPC call
        return False


class _EngineNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _hang_up(record.exc_info[1]):
            return False
        # Beam's notes of each job server start and stop, with its whole command line,
        # and of each look for it while the JVM starts (several seconds)
        return not str(record.msg).startswith(("Really starting service", "Really destroying service",
                                               "Waiting for grpc channel to be ready"))


_NOISE = _EngineNoise()


def quiet_engine_noise() -> None:
    """At default verbosity, drop what the engines' normal operation logs as
    warnings and errors (shown with --debug)."""
    import threading

    for name in ("apache_beam.runners.worker.data_plane", "apache_beam.utils.subprocess_server", None):
        logger = logging.getLogger(name)
        if _NOISE not in logger.filters:
            logger.addFilter(_NOISE)
    hook = threading.excepthook
    if getattr(hook, "_mdfs", False):
        return

    def excepthook(args):
        if not _hang_up(args.exc_value):
            hook(args)

    excepthook._mdfs = True
    threading.excepthook = excepthook
