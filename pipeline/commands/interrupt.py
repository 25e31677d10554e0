"""SIGINT and SIGTERM as an exception (``Interrupted``), so every command ends
an interruption with one line and exit 128 + the signal's number, wherever it
lands: configuration, preflight, the job, the report (pipeline/commands/cli/__init__.py main,
pipeline/commands/run.py run)."""
from __future__ import annotations

import signal


class Interrupted(BaseException):  # not an Exception: library code that catches those must not swallow it
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


SIGNALLED: list[int] = []


def raise_interrupted(signum, _frame):
    SIGNALLED.append(signum)  # remembered even if some thread's handler swallows the exception
    raise Interrupted(signum)


def signum_of(exc: BaseException) -> int:
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def install() -> dict:
    """Our handler for SIGINT and SIGTERM; returns the previous handlers."""
    return {s: signal.signal(s, raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)
