"""Unicode character classes as a per-code-point table, for measures that
count characters by class over a whole text in numpy instead of one regex
pass per line or a string per match.

Each class is decided by the same pattern (or ``str`` method) the measures
were defined with, once per character per process, the first time the
character is seen; the table (one byte per code point, 1.1 MB per process)
is filled in as texts arrive.
"""
from __future__ import annotations

import numpy as np
import regex

SPACE = 1  # regex ``\s``
LETTER = 2  # regex ``[\p{L}\p{N}]``: a letter or digit of any script
CJK = 4  # regex ``[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]``
STR_SPACE = 8  # ``str.isspace()``: what ``str.split()`` and ``str.strip()`` remove
_UNKNOWN = 255

_PATTERNS = ((regex.compile(r"\s"), SPACE), (regex.compile(r"[\p{L}\p{N}]"), LETTER),
             (regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"), CJK))
# built at import, not on first use: Beam runs a worker's bundles on several
# threads, and two threads building it at once could each fill their own
_TABLE = np.full(0x110000, _UNKNOWN, dtype=np.uint8)


def _class_of(ch: str) -> int:
    bits = sum(bit for pattern, bit in _PATTERNS if pattern.match(ch))
    return bits | (STR_SPACE if ch.isspace() else 0)


def codepoints(text: str) -> np.ndarray:
    """The text's code points (lone surrogates included)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def classes(cps: np.ndarray) -> np.ndarray:
    """The class bits of each code point (threads filling the same entry at
    once write the same value)."""
    cls = _TABLE[cps]
    unknown = cps[cls == _UNKNOWN]
    if unknown.size:
        for cp in np.unique(unknown).tolist():
            _TABLE[cp] = _class_of(chr(cp))
        cls = _TABLE[cps]
    return cls
