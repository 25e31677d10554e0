"""The one shape of a coarse rule: a name, a pure measure of the text, and the
thresholds it is held to.

``Rule("zh_too_short", char_count, min=200)`` drops a text whose ``char_count``
is under 200 with reason ``too_short`` and the measured value in the detail
(``"150<200"``).  The measure knows nothing of thresholds, so the same
function can report the value of every rule for a document (quality signals)
and the verdict follows from the threshold alone.  Rules know nothing about
Beam; ``pipeline/stages/coarse.py`` measures every rule of the document's language
(``measure_all``: the signals) and the first that fires drops the document.  The reason is the counter's and the funnel's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .common import TextView, char_count


@dataclass(frozen=True)
class Rule:
    reason: str  # drop reason, counter name, signal name
    measure: Callable[[TextView], float]
    min: Optional[float] = None  # drop when the measure is below
    max: Optional[float] = None  # drop when the measure is above
    fmt: str = "{:.3f}"  # how the measured value is shown in the detail
    unit: str = ""  # appended to the detail, e.g. " chars"
    # the stable name of the measured value in the signals column (``zh.han_share``); rules that
    # hold one measure to two thresholds (too few / too many words) share it
    signal: str = ""

    def __post_init__(self):
        if not self.signal:
            object.__setattr__(self, "signal", self.reason)

    def value(self, v: TextView) -> float:
        return self.measure(v)

    def verdict(self, value: float) -> Optional[tuple[str, str]]:
        if self.fmt == "{}" and isinstance(value, float) and value.is_integer():
            value = int(value)  # a count read back from the signals column (a double)
        if self.min is not None and value < self.min:
            return self.reason, f"{self.fmt.format(value)}<{self.min:g}{self.unit}"
        if self.max is not None and value > self.max:
            return self.reason, f"{self.fmt.format(value)}>{self.max:g}{self.unit}"
        return None

    def __call__(self, v: TextView) -> Optional[tuple[str, str]]:
        return self.verdict(self.measure(v))


def measure_all(rules, v: TextView) -> tuple[dict[str, float], Optional[tuple[str, str]]]:
    """Every signal of ``rules`` (each measured once) and the verdict of the
    first rule that fires, in order: the same verdict ``first_verdict`` gives,
    with all the measurements kept (the signals column)."""
    values: dict[str, float] = {}
    verdict = None
    for rule in rules:
        value = values.get(rule.signal)
        if value is None:
            value = values[rule.signal] = rule.measure(v)
        if verdict is None:
            verdict = rule.verdict(value)
    return values, verdict


def verdict_from_signals(rules, values: dict[str, float]) -> Optional[tuple[str, str]]:
    """The first rule's verdict from stored signals (``mdfs refilter``); a rule
    whose signal is missing raises KeyError (refused before the job)."""
    for rule in rules:
        verdict = rule.verdict(values[rule.signal])
        if verdict:
            return verdict
    return None


def first_verdict(rules, v: TextView) -> Optional[tuple[str, str]]:
    for rule in rules:
        verdict = rule(v)
        if verdict:
            return verdict
    return None


def too_short(v: TextView, min_chars: int):
    """Fewer than ``min_chars`` characters (ChineseWebText: 200; any language)."""
    return Rule("too_short", char_count, min=min_chars, fmt="{}", unit=" chars")(v)
