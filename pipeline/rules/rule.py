"""The one shape of a coarse rule: a name, a pure measure of the text, and the
thresholds it is held to.

``Rule("zh_too_short", char_count, min=200)`` drops a text whose ``char_count``
is under 200 with reason ``too_short`` and the measured value in the detail
(``"150<200"``).  The measure knows nothing of thresholds, so the same
function can report the value of every rule for a document (quality signals)
and the verdict follows from the threshold alone.  Rules know nothing about
Beam; ``pipeline/coarse.py`` applies them in order and the first that fires
drops the document.  The reason is the counter's and the funnel's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .common import TextView


@dataclass(frozen=True)
class Rule:
    reason: str  # drop reason, counter name, signal name
    measure: Callable[[TextView], float]
    min: Optional[float] = None  # drop when the measure is below
    max: Optional[float] = None  # drop when the measure is above
    fmt: str = "{:.3f}"  # how the measured value is shown in the detail
    unit: str = ""  # appended to the detail, e.g. " chars"

    def value(self, v: TextView) -> float:
        return self.measure(v)

    def verdict(self, value: float) -> Optional[tuple[str, str]]:
        if self.min is not None and value < self.min:
            return self.reason, f"{self.fmt.format(value)}<{self.min:g}{self.unit}"
        if self.max is not None and value > self.max:
            return self.reason, f"{self.fmt.format(value)}>{self.max:g}{self.unit}"
        return None

    def __call__(self, v: TextView) -> Optional[tuple[str, str]]:
        return self.verdict(self.measure(v))


def first_verdict(rules, v: TextView) -> Optional[tuple[str, str]]:
    for rule in rules:
        verdict = rule(v)
        if verdict:
            return verdict
    return None
