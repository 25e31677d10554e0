"""Live progress: each worker logs how many records passed a point, per source,
and the rate, every few seconds.  Exact totals come from the funnel."""
from __future__ import annotations

import logging
import time

import apache_beam as beam

log = logging.getLogger("mdfs.progress")


class LogProgress(beam.DoFn):
    def __init__(self, label: str, every_s: float = 10.0):
        self.label = label
        self.every_s = every_s

    def setup(self):
        self._t0 = self._last = time.monotonic()
        self._counts: dict[str, int] = {}

    def process(self, rec):
        self._counts[rec.source] = self._counts.get(rec.source, 0) + 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._report(now)
        yield rec

    def _report(self, now):
        total = sum(self._counts.values())
        per_source = ", ".join(f"{s}={n}" for s, n in sorted(self._counts.items()))
        log.info("%s: %d (%.1f/s on this worker) [%s]", self.label, total, total / max(now - self._t0, 1e-9),
                 per_source)
