"""What the ``mdfs`` commands print around a job: the log format, and the known
start-up chatter of Beam's workers and third-party libraries filtered out of
stderr at default verbosity (``-v``/``--verbose`` and ``--debug`` show it)."""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading

# -v, --verbose or --debug anywhere on the command line: set once by main, before the
# command runs, and read by the commands that start a Beam job
VERBOSE = False


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

        from ..interrupt import SIGNALLED

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


def quiet(verbose: bool):
    import contextlib

    return contextlib.nullcontext() if verbose else QuietChildren()


def setup_logging(verbose: bool = False, debug: bool = False):
    if not verbose:
        logging.getLogger().addFilter(_KnownNoise())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("mdfs")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)  # --debug: the tracebacks behind one-line errors
    logger.addHandler(handler)
    logger.propagate = False
