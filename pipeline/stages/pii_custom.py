"""User-supplied PII detectors (``pii.custom``), bounded.

A user pattern is refused at preflight when it nests one unbounded (or
many-times) quantifier inside another, ``(a+)+``, ``(\\w+\\s?)*``: the shape
of catastrophic backtracking, where one unlucky page makes the scan take
exponential time (a fixed count such as ``(\\d{3}-){2}`` is not
nested in this sense: it gives nothing to backtrack over).  Possessive quantifiers and atomic groups, which never
backtrack, are allowed.  What the check cannot see (overlapping alternatives such as
``(a|aa)+``, a validator that blocks) is stopped by the time bound: the custom
patterns and validators of a record run in one persistent child process, as
extraction does, and the parent kills it when the record's scan passes
``CUSTOM_BUDGET_S`` (in-process limits do not hold: the ``regex`` module's own
timeout was measured to overshoot a 2 s limit by 3.4 s, and a blocked
validator cannot be stopped).  Such a record is a dead letter
(``pii_timeout``); the next record gets a fresh child.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import struct
import sys
import time
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..schema import CustomPii

from .bounded_child import BoundedChild, ChildExited, ChildTimeout, read_exact, write_answer

# Per record, all custom patterns and validator calls together.  The built-in detectors take
# ~0.1 ms per page (pii.py); 2 s is four orders of magnitude above a sane pattern on a 5 MB
# page (read.max_payload_bytes), and below extract.timeout_s (20 s), the other per-record bound.
CUSTOM_BUDGET_S = 2.0
START_S = 60.0  # starting the child (interpreter + the validators' modules); not a per-record cost


class CustomTimeout(Exception):
    """A record's custom patterns or validators overran CUSTOM_BUDGET_S."""


# --- preflight: nested quantifiers ----------------------------------------------------------

def nested_quantifier(pattern: str) -> Optional[str]:
    """The first repeat of a varying count nested in a repeat of several iterations, where
    nothing marks where one outer iteration ends (no literal character that every
    iteration must match and the inner repeat cannot): ``(a+)+``, ``(\\w+\\s?)*``
    are refused, ``[a-z]+(\\.[a-z]+)*`` and ``(\\w+@)+`` are not.  None when there is
    none (or Python's parser cannot read the pattern: compiling it reports why)."""
    import re._parser as P

    try:
        tree = P.parse(pattern)
    except Exception:  # noqa: BLE001 - a syntax error: compiling it reports it
        return None
    return _walk(list(tree), None)


def _varying(lo: int, hi: int) -> bool:
    """A repeat that may match a varying number of times, more than once (a fixed
    count, \\d{3}, or an optional part, x?, gives nothing to backtrack over)."""
    from re._constants import MAXREPEAT

    return lo != hi and (hi == MAXREPEAT or hi > 1)


def _walk(items, outer) -> Optional[str]:
    """``outer``: (text, body) of the varying repeat these items are inside, or None."""
    import re._constants as C

    for op, av in items:
        found = None
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            text = f"{{{lo},{'' if hi == C.MAXREPEAT else hi}}}"
            if _varying(lo, hi) and outer and all(_can_match(list(sub), ch) for ch in _separators(outer[1])):
                return f"a repeat {text} inside a repeat {outer[0]} with nothing between iterations"
            # any repeat of more than one iteration is an outer one: (.*a){20} takes n^20 steps
            found = _walk(list(sub), (text, list(sub)) if hi > 1 else outer)
        elif op == C.SUBPATTERN:
            found = _walk(list(av[3]), outer)
        elif op == C.BRANCH:
            found = next((f for f in (_walk(list(b), outer) for b in av[1]) if f), None)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            found = _walk(list(av[1]), outer)
        # POSSESSIVE_REPEAT and ATOMIC_GROUP never backtrack; literals, classes, anchors have no repeat
        if found:
            return found
    return None


def _separators(body) -> list[str]:
    """Literal characters every iteration of ``body`` must match (outside any repeat or branch)."""
    import re._constants as C

    out = []
    for op, av in body:
        if op == C.LITERAL:
            out.append(chr(av))
        elif op == C.SUBPATTERN:
            out += _separators(list(av[3]))
    return out


_CATEGORIES = {"CATEGORY_DIGIT": str.isdigit, "CATEGORY_SPACE": str.isspace,
               "CATEGORY_WORD": lambda c: c.isalnum() or c == "_"}


def _can_match(items, ch: str) -> bool:
    """Whether ``items`` may match ``ch`` anywhere (conservative: True when unsure)."""
    import re._constants as C

    for op, av in items:
        if op == C.LITERAL and chr(av) == ch or op == C.NOT_LITERAL and chr(av) != ch:
            return True
        if op == C.ANY and ch != "\n" or op == C.IN and _in_class(av, ch):
            return True
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and _can_match(list(av[2]), ch):
            return True
        if op == C.SUBPATTERN and _can_match(list(av[3]), ch):
            return True
        if op == C.BRANCH and any(_can_match(list(b), ch) for b in av[1]):
            return True
        if op not in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN, C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT,
                      C.SUBPATTERN, C.BRANCH, C.AT):
            return True  # something this check does not model
    return False


def _in_class(members, ch: str) -> bool:
    import re._constants as C

    hit, negate = False, False
    for op, av in members:
        if op == C.NEGATE:
            negate = True
        elif op == C.LITERAL:
            hit |= chr(av) == ch
        elif op == C.RANGE:
            hit |= av[0] <= ord(ch) <= av[1]
        elif op == C.CATEGORY:
            name = str(av)
            base = name.replace("NOT_", "")
            test = _CATEGORIES.get(base)
            if test is None:
                return True
            hit |= (not test(ch)) if "NOT_" in name else test(ch)
        else:
            return True
    return hit != negate


# --- the scan, in a child process -------------------------------------------------------------

def _compile(entries: list[dict]) -> list[tuple]:
    """(type, compiled pattern, validator or None) per entry (imports the validators)."""
    out = []
    for e in entries:
        validator = None
        if e.get("validator"):
            mod, _, fn = e["validator"].partition(":")
            validator = getattr(importlib.import_module(mod), fn)
        out.append((e["type"], re.compile(e["pattern"]), validator))
    return out


def main() -> None:
    """The child: argv[1] is the entries as JSON; each request is 4-byte length + UTF-8 text,
    each answer 1 status byte (O: JSON [[entry, start, end], ...], E: error) + 4-byte length + body."""
    detectors = _compile(json.loads(sys.argv[1]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")  # ready: starting (the validators' imports) is not charged to the first record
    stdout.flush()
    while True:
        try:
            (n,) = struct.unpack(">I", read_exact(stdin, 4))
            view = read_exact(stdin, n).decode("utf-8", "surrogatepass")
        except EOFError:
            return
        try:
            found = [[i, m.start(), m.end()] for i, (_t, pattern, validator) in enumerate(detectors)
                     for m in pattern.finditer(view) if validator is None or validator(m.group())]
            status, out = b"O", json.dumps(found).encode()
        except Exception as exc:  # noqa: BLE001 - the validator's own error: reported for that record
            status, out = b"E", f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000]
        write_answer(stdout, status, out)


class CustomScanner:
    """Every ``pii.custom`` type of a job, scanned in one persistent child process
    with a hard limit per record (the child is killed past it: the only way to
    stop a regex engine or a validator stuck in C code or a blocking call)."""

    def __init__(self, entries: list[dict], budget_s: Optional[float] = None):
        self.entries = [{k: e.get(k) for k in ("type", "pattern", "validator")} for e in entries]
        self.types = [(e["type"], e.get("placeholder") or f"<{e['type'].upper()}>") for e in entries]
        self.budget_s = float(CUSTOM_BUDGET_S if budget_s is None else budget_s)
        # the validators import in the child from where they import here (PYTHONPATH, read when it starts)
        self._child = BoundedChild([sys.executable, "-m", __name__, json.dumps(self.entries)])

    def __bool__(self) -> bool:
        return bool(self.entries)

    def close(self) -> None:
        self._child.close()

    def find(self, view: str) -> list[tuple[int, int, str, str]]:
        """(start, end, type, placeholder) of every validated match; raises CustomTimeout."""
        try:
            if not self._child.running:
                self._child.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
                self._child.start()
                self._child.read(1, time.monotonic() + START_S)  # ready: the validators' imports are done
        except (ChildTimeout, ChildExited):
            raise RuntimeError(f"pii.custom process did not start in {START_S:g} s") from None
        try:
            status, raw = self._child.request(self.budget_s, view.encode("utf-8", "surrogatepass"))
        except OSError as exc:
            raise RuntimeError(f"pii.custom process died: {exc}") from None
        except ChildTimeout:
            raise CustomTimeout(f"pii.custom patterns and validators ran past {self.budget_s:g} s on this record") from None
        except ChildExited as exc:
            raise RuntimeError(f"pii.custom process {exc}") from None
        out = raw.decode("utf-8", "replace")
        if status != b"O":
            raise RuntimeError(f"pii.custom: {out}")
        return [(s, e, *self.types[i]) for i, s, e in json.loads(out)]


def load_custom(entries: list[CustomPii]) -> CustomScanner:
    """``pii.custom`` entries (``schema.CustomPii``) -> their scanner.  Raises ValueError for a nested
    quantifier, and the validators are imported here too (a wrong module:function
    is an error at preflight, not in every worker)."""
    entries = [e.model_dump() for e in entries]  # plain mappings: the JSON the child process reads
    for i, e in enumerate(entries):
        nested = nested_quantifier(e["pattern"])
        if nested:
            raise ValueError(f"pii.custom[{i}] ({e['type']}): pattern {e['pattern']!r} has {nested}, which can "
                             "backtrack catastrophically; use a possessive quantifier (a++), an atomic group "
                             "(?>...) or a bounded repeat")
    _compile(entries)
    return CustomScanner(entries)


if __name__ == "__main__":
    main()
