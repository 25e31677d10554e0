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


def read_totals(folder: str) -> dict[str, int]:
    """label -> the sum over workers of each one's latest count."""
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
        totals[row["what"]] = totals.get(row["what"], 0) + int(row["count"])
    return totals


class ProgressWatcher:
    """The launcher's view of a local run: one line every ``every_s`` seconds."""

    def __init__(self, folder: str, every_s: float, stream=None):
        self.folder, self.every_s = folder, every_s
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
            print(f"mdfs: {now - self._t0:.0f} s: " + ", ".join(parts), file=self.stream, flush=True)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False
