"""Both sides of decontamination in one view: normalisation (NFKC, case
folding), tokens (one per CJK character, one per run of other letters and
digits) and stable 64-bit hashes of tokens and n-grams (see the package
docstring for why)."""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass

import numpy as np

WINDOW, OVERLAP = 65536, 8192  # characters per hashing window, and their overlap (>> any n-gram's span)

_U64 = np.uint64
_B_CHAR = 0x100000001B3 * 2 + 1  # odd, so invertible mod 2**64
_B_TOKEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_SPLITMIX = (_U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB))

CHAR_SCRIPT_RANGES = (  # tokens of one character: scripts written without spaces between words
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B),
    (0x3040, 0x30FF),  # kana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF),  # Han
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x323AF),  # Han extensions B..H
)
SEP, WORD, CHAR = 0, 1, 2
_CLASSES = None
_CLASSES_LOCK = threading.Lock()


def char_classes() -> np.ndarray:
    """Code point -> SEP / WORD / CHAR, built once per process (~0.2 s)."""
    global _CLASSES
    with _CLASSES_LOCK:
        if _CLASSES is None:
            table = np.fromiter((c.isalnum() for c in map(chr, range(0x110000))), dtype=np.uint8,
                                count=0x110000)
            for lo, hi in CHAR_SCRIPT_RANGES:  # their letters are tokens of one character; marks separate
                part = table[lo:hi + 1]
                part[part == WORD] = CHAR
            _CLASSES = table
    return _CLASSES


def normalise(text: str) -> str:
    """The view both sides are matched in: NFKC and case folding (punctuation and
    whitespace are dropped by the tokenizer)."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise_aligned(text: str) -> tuple[str, np.ndarray]:
    """``normalise`` character by character, with the original index of every
    output character (for redaction when NFKC changes the length)."""
    parts, origin = [], []
    for i, c in enumerate(text):
        n = normalise(c)
        parts.append(n)
        origin.extend([i] * len(n))
    return "".join(parts), np.asarray(origin, dtype=np.int64)


class _Powers:
    """B**i and B**-i mod 2**64 for i < size."""

    def __init__(self, base: int, size: int):
        inv = pow(base, -1, 1 << 64)
        with np.errstate(over="ignore"):
            self.pow, self.inv = (np.cumprod(self._steps(b, size), dtype=_U64) for b in (base, inv))

    @staticmethod
    def _steps(b: int, size: int) -> np.ndarray:
        steps = np.full(size, b, dtype=_U64)
        steps[0] = 1
        return steps


_POWERS: dict = {}


def _powers(base: int, size: int) -> _Powers:
    p = _POWERS.get(base)
    if p is None or len(p.pow) < size:
        p = _POWERS[base] = _Powers(base, max(size, WINDOW + OVERLAP))
    return p


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hashes over all 64 bits."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _SPLITMIX[0]
        x = x ^ (x >> _U64(27))
        x = x * _SPLITMIX[1]
        return x ^ (x >> _U64(31))


def _window_sums(values: np.ndarray, width, starts: np.ndarray, base: int) -> np.ndarray:
    """sum(values[s + j] * base**j for j < width) for each start s (width: scalar or per start)."""
    pw = _powers(base, len(values) + 1)
    with np.errstate(over="ignore"):
        prefix = np.empty(len(values) + 1, dtype=_U64)
        prefix[0] = 0
        np.cumsum(values * pw.pow[:len(values)], dtype=_U64, out=prefix[1:])
        return (prefix[starts + width] - prefix[starts]) * pw.inv[starts]


@dataclass
class Tokens:
    starts: np.ndarray  # character offset of each token in the normalised text
    ends: np.ndarray
    values: np.ndarray  # uint64 per token
    char_tokens: int  # tokens of one CJK (or Thai, ...) character


def tokenize(norm: str) -> Tokens:
    cp = np.frombuffer(norm.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cls = char_classes()[cp]
    is_word = cls == WORD
    prev_word = np.concatenate([[False], is_word[:-1]])
    next_word = np.concatenate([is_word[1:], [False]])
    is_char = cls == CHAR
    starts = np.flatnonzero(is_char | (is_word & ~prev_word))
    word_ends = np.flatnonzero(is_word & ~next_word) + 1
    ends = starts + 1
    word_start = is_word[starts]
    ends[word_start] = word_ends  # runs of word characters start and end in order
    values = _mix(_window_sums(cp.astype(_U64), ends - starts, starts, _B_CHAR))
    return Tokens(starts, ends, values, int(is_char.sum()))


def ngram_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n consecutive token values (empty when there are fewer)."""
    if len(values) < n:
        return np.empty(0, dtype=_U64)
    starts = np.arange(len(values) - n + 1)
    with np.errstate(over="ignore"):
        return _mix(_window_sums(values, n, starts, _B_TOKEN) + _U64((n * 0x2545F4914F6CDD1D) & _MASK))

