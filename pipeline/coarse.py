"""Coarse filtering: rule-based document filters applied after extraction.

Each rule is a small pure function ``text -> None | reason`` with its
thresholds taken from config; the stage applies the enabled rules in order and
drops a document with the first reason that fires.
"""
from __future__ import annotations

from typing import Callable, Optional

import apache_beam as beam

from .records import DROPPED, FAILED, Document, Dropped, Failed
from .stage import StageResult, count_drop, count_fail

STAGE = "coarse"


def too_short(text: str, min_chars: int) -> Optional[str]:
    """Fewer than ``min_chars`` characters (ChineseWebText, arXiv 2311.01149:
    200).  Characters, not words, so the rule means the same for Chinese."""
    return "too_short" if len(text) < min_chars else None


def build_rules(cfg: dict) -> list[tuple[str, Callable[[str], Optional[str]]]]:
    min_chars = int(cfg.get("min_chars", 0))
    return [("too_short", lambda text: too_short(text, min_chars))]


class CoarseFilterDoFn(beam.DoFn):
    def __init__(self, cfg: dict, excerpt_chars: int):
        self.cfg = cfg
        self.excerpt_chars = excerpt_chars

    def setup(self):
        self._rules = build_rules(self.cfg)

    def process(self, doc: Document):
        for name, rule in self._rules:
            try:
                reason = rule(doc.text)
            except Exception as exc:  # noqa: BLE001 - a rule bug is a failure of this record, not the job
                yield count_fail(Failed.of(doc, STAGE, "rule_error", f"{name}: {type(exc).__name__}: {exc}"))
                return
            if reason:
                yield count_drop(Dropped.of(doc, STAGE, reason, excerpt_chars=self.excerpt_chars))
                return
        yield doc


class CoarseFilter(beam.PTransform):
    def __init__(self, cfg: dict, excerpt_chars: int = 200):
        super().__init__()
        self.cfg = cfg
        self.excerpt_chars = excerpt_chars

    def expand(self, docs):
        out = docs | "Rules" >> beam.ParDo(CoarseFilterDoFn(self.cfg, self.excerpt_chars)).with_outputs(
            DROPPED, FAILED, main="kept")
        return StageResult(out.kept, out[DROPPED], out[FAILED])
