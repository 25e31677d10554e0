"""Shared text statistics for the rules, computed once per document."""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import numpy as np

from ...config import resolve_placeholders


# Sentence-final punctuation: Chinese/Japanese full-width marks and ASCII.
ZH_SENTENCE_END = "。！？…"
TERMINAL_PUNCT = tuple(".!?\"'”’」』" + ZH_SENTENCE_END + "；;:：")
_WORD = re.compile(r"\S+")


class TextView:
    """A document's text with lazily computed lines and words."""

    __slots__ = ("text", "__dict__")

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def lines(self) -> list[str]:
        """Non-empty lines, stripped."""
        return [s for s in (line.strip() for line in self.text.split("\n")) if s]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in re.split(r"\n\s*\n", self.text) if p.strip()]

    @cached_property
    def words(self) -> list[str]:
        """Whitespace-separated tokens (Gopher's definition of a word)."""
        return self.text.split()

    @cached_property
    def codepoints(self) -> np.ndarray:
        return np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)

    @cached_property
    def han_count(self) -> int:
        cp = self.codepoints
        return int(np.count_nonzero(((cp >= 0x4E00) & (cp <= 0x9FFF)) | ((cp >= 0x3400) & (cp <= 0x4DBF))))

    @cached_property
    def word_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(an id per lower-cased word, its length): the input of the n-gram measures."""
        vocab: dict[str, int] = {}
        words = [w.lower() for w in self.words]
        ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int64)
        lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        return ids, lens


def memo(v: TextView, key: str, compute):
    """A measure shared by several rules, computed once per document."""
    cache = v.__dict__.setdefault("_memo", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def char_count(v: TextView) -> int:
    return len(v.text)


def read_list(path: str | Path, min_chars: int = 1) -> list[str]:
    """Lines of a list file, without comments ('#' first) and blanks."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            s = line.rstrip("\n").strip()
            if s and not s.startswith("#") and len(s) >= min_chars:
                out.append(s)
    return out


def resolve(path: str) -> str:
    """A list path from config; placeholders such as ``{resources}`` are
    resolved here too, for rules built outside ``load_config``."""
    return resolve_placeholders(str(path))


_P = np.uint64(1_000_003)


def ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every n-gram of an id sequence (uint64, wrapping)."""
    m = len(ids) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    ids = ids.astype(np.uint64, copy=False)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _P + ids[k:k + m] + np.uint64(1)
    return h


def repeated_ngram_share(ids: np.ndarray, n: int) -> float:
    """Share of n-gram occurrences whose n-gram occurs more than once
    (ChineseWebText's internal-duplication measure)."""
    h = ngram_hashes(ids, n)
    if h.size == 0:
        return 0.0
    _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    return float(np.count_nonzero(counts[inverse] > 1)) / h.size


def duplicated_ngram_coverage(ids: np.ndarray, weights: np.ndarray, n: int) -> float:
    """Gopher's duplicate n-gram character fraction: the characters (token
    weights) covered by the repeat occurrences of n-grams (every occurrence
    after the first), each token counted once, over all characters.  The
    first occurrence is not counted, as in datatrove's GopherRepetitionFilter."""
    total = float(weights.sum())
    h = ngram_hashes(ids, n)
    if h.size == 0 or total == 0:
        return 0.0
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    repeat_start = (first[inverse] != np.arange(h.size)).astype(np.int32)
    # token i is covered if a repeat occurrence starts in [i-n+1, i]
    cover = np.convolve(repeat_start, np.ones(n, dtype=np.int32))[: len(ids)] > 0
    return float(weights[cover].sum()) / total


def top_ngram_share(ids: np.ndarray, weights: np.ndarray, n: int) -> float:
    """Gopher's top n-gram character fraction: characters in all occurrences of
    the most frequent n-gram, over all characters."""
    total = float(weights.sum())
    h = ngram_hashes(ids, n)
    if h.size == 0 or total == 0:
        return 0.0
    uniq, first, counts = np.unique(h, return_index=True, return_counts=True)
    best = int(np.argmax(counts))
    if counts[best] < 2:
        return 0.0
    start = int(first[best])
    return float(weights[start:start + n].sum()) * int(counts[best]) / total
