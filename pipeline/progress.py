"""Live progress.  Each worker counts the records that pass a point (records
read, documents deduplicated, documents kept) and, every few seconds and at
the end of each bundle, appends its running count to a small file of its own
under ``RUN_DIR/_progress/`` (a local output; the side channel that the local
runners lack: their ``run()`` returns only at the end and counters live in the
worker processes).  The launcher's ``ProgressWatcher`` sums the latest count
of every file, prints one line with the totals and rates, and a line when the
job moves from reading to dedup and to writing.  Exact totals come from the
funnel; ``_progress/`` is removed when the run ends.  Remote outputs (gs://,
s3://) keep the per-worker log lines only: their runners have their own UI."""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid

import apache_beam as beam

log = logging.getLogger("mdfs.progress")
PROGRESS_DIR = "_progress"
POINTS = ("records read", "documents deduplicated", "documents kept")
STAGE_PREFIX = "stage:"
PHASES = {"documents deduplicated": "dedup and the later stages", "documents kept": "writing kept documents"}


def progress_dir(output_dir: str | None) -> str | None:
    return f"{output_dir.rstrip('/')}/{PROGRESS_DIR}" if output_dir and "://" not in output_dir else None


class LogProgress(beam.DoFn):
    def __init__(self, label: str, every_s: float = 10.0, folder: str | None = None):
        self.label = label
        self.every_s = every_s
        self.folder = folder

    def setup(self):
        self._t0 = self._last = time.monotonic()
        self._counts: dict[str, int] = {}
        self._file = None
        if self.folder:
            os.makedirs(self.folder, exist_ok=True)
            slug = self.label.replace(" ", "_")
            self._file = f"{self.folder}/{slug}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def process(self, rec):
        self._counts[rec.source] = self._counts.get(rec.source, 0) + 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._report(now)
        yield rec

    def finish_bundle(self):
        if self._counts:
            self._write()

    def _write(self):
        if self._file:
            try:
                with open(self._file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"what": self.label, "count": sum(self._counts.values())}) + "\n")
            except OSError:  # progress is a courtesy: never fail a record over it
                self._file = None

    def _report(self, now):
        total = sum(self._counts.values())
        self._write()
        per_source = ", ".join(f"{s}={n}" for s, n in sorted(self._counts.items()))
        # with the side channel the launcher prints the totals; the per-worker line is for -v
        (log.debug if self._file else log.info)("%s: %d (%.1f/s on this worker) [%s]", self.label, total,
                                                total / max(now - self._t0, 1e-9), per_source)


class TimedStage(beam.DoFn):
    """A stage's DoFn with the time it spends on each element summed, and written
    to the progress side channel like the counts (``stage:NAME``), so the
    launcher can say which stage is the slowest so far.  Wall time, because
    extraction's work happens in its child process."""

    def __init__(self, inner: beam.DoFn, stage: str, folder: str, every_s: float = 10.0):
        self.inner, self.stage, self.folder, self.every_s = inner, stage, folder, every_s

    def setup(self):
        self.inner.setup()
        self._spent, self._last = 0.0, time.monotonic()
        os.makedirs(self.folder, exist_ok=True)
        self._file = f"{self.folder}/stage_{self.stage}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def start_bundle(self):
        self.inner.start_bundle()

    def process(self, element):
        t = time.perf_counter()
        out = self.inner.process(element)
        results = list(out) if out is not None else []
        self._spent += time.perf_counter() - t
        if time.monotonic() - self._last >= self.every_s:
            self._write()
        yield from results

    def finish_bundle(self):
        t = time.perf_counter()
        out = self.inner.finish_bundle()
        results = list(out) if out is not None else []
        self._spent += time.perf_counter() - t
        self._write()
        yield from results

    def teardown(self):
        self.inner.teardown()

    def _write(self):
        self._last = time.monotonic()
        if self._file:
            try:
                with open(self._file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"what": STAGE_PREFIX + self.stage, "count": round(self._spent, 3)}) + "\n")
            except OSError:
                self._file = None


_TIMING: dict = {"folder": None, "every_s": 10.0}


def timed(dofn: beam.DoFn, stage: str) -> beam.DoFn:
    """``dofn`` wrapped in ``TimedStage`` while a local run's graph is built (``timing``), else itself."""
    return TimedStage(dofn, stage, _TIMING["folder"], _TIMING["every_s"]) if _TIMING["folder"] else dofn


class timing:
    """Within this block (graph construction), stage DoFns are timed into ``folder``."""

    def __init__(self, folder: str | None, every_s: float):
        self.folder, self.every_s = folder, every_s

    def __enter__(self):
        self._saved = dict(_TIMING)
        _TIMING.update(folder=self.folder, every_s=self.every_s)

    def __exit__(self, *exc):
        _TIMING.update(self._saved)
        return False


def read_totals(folder: str) -> dict[str, float]:
    """label -> the sum over workers of each one's latest count (seconds for ``stage:NAME``)."""
    totals: dict[str, int] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return totals
    for name in names:
        try:
            with open(f"{folder}/{name}", "rb") as fh:
                fh.seek(max(0, os.path.getsize(f"{folder}/{name}") - 256))
                last = fh.read().splitlines()[-1]
            row = json.loads(last)
        except (OSError, ValueError, IndexError):
            continue  # a line being written
        totals[row["what"]] = totals.get(row["what"], 0) + row["count"]
    return totals


class ProgressWatcher:
    """The launcher's view of a local run: one line every ``every_s`` seconds.
    ``line``: (totals, now) -> the line instead (a run in units says which pass,
    how many units are done, documents per second and an ETA)."""

    def __init__(self, folder: str, every_s: float, stream=None, line=None):
        self.folder, self.every_s, self.line = folder, every_s, line
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._phase = None

    def __enter__(self):
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _loop(self):
        last_read, last_t = 0, self._t0
        while not self._stop.wait(self.every_s):
            totals = read_totals(self.folder)
            now = time.monotonic()
            if self.line is not None:
                print(f"mdfs: {now - self._t0:.0f} s: {self.line(totals, now)}", file=self.stream, flush=True)
                continue
            for point in ("documents deduplicated", "documents kept"):
                if totals.get(point) and PHASES[point] != self._phase and \
                        POINTS.index(point) > (POINTS.index(self._point) if self._phase else 0):
                    self._phase, self._point = PHASES[point], point
                    print(f"mdfs: now {self._phase} ({now - self._t0:.0f} s)", file=self.stream, flush=True)
            if not totals:
                print(f"mdfs: {now - self._t0:.0f} s: starting the workers", file=self.stream, flush=True)
                continue
            read = totals.get("records read", 0)
            rate = (read - last_read) / max(now - last_t, 1e-9)
            last_read, last_t = read, now
            parts = [f"{read:,} records read" + (f" ({rate:,.0f}/s)" if rate else "")]
            parts += [f"{totals[p]:,} {p}" for p in POINTS[1:] if totals.get(p)]
            stages = {k[len(STAGE_PREFIX):]: v for k, v in totals.items() if k.startswith(STAGE_PREFIX)}
            if stages and sum(stages.values()) > 0:
                slow = max(stages, key=stages.get)
                parts.append(f"slowest stage so far: {slow} ({stages[slow] / sum(stages.values()):.0%} of stage time)")
            print(f"mdfs: {now - self._t0:.0f} s: " + ", ".join(parts), file=self.stream, flush=True)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False
