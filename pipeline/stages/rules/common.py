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


class NgramRepeats:
    """Gopher's word n-gram measures of one document, level by level.

    An n-gram that occurs twice has an (n-1)-gram prefix that occurs twice, so
    level n hashes and sorts only the positions whose (n-1)-gram repeated:
    one sort per level over a shrinking set (most 5-grams of real text are
    unique), where a sort of every position per threshold took nine.  The
    hashes are ``ngram_hashes``'s, extended one word at a time, so each level
    counts what hashing every n-gram from scratch counts; the one difference is
    a 64-bit hash collision between two n-grams whose shorter prefixes differ,
    which hashing from scratch took for a repeat and this does not.  ``ids``
    are small non-negative integers (``TextView.word_ids``)."""

    def __init__(self, ids: np.ndarray, weights: np.ndarray):
        self.ids, self.weights = ids.astype(np.uint64, copy=False), weights
        self.total = float(weights.sum())
        # level 1 without hashing or sorting: ids are small integers, and a
        # word's 1-gram hash is its id + 1 (ngram_hashes from 0, one step)
        counts = np.bincount(ids) if len(ids) else np.zeros(0, dtype=np.int64)
        pos = np.flatnonzero(counts[ids] > 1)
        order = np.argsort(ids[pos], kind="stable")
        pos = pos[order]
        same = np.zeros(len(pos), dtype=bool)
        same[1:] = ids[pos[1:]] == ids[pos[:-1]]
        self._n, self._pos, self._hash = 1, pos, self.ids[pos] + np.uint64(1)
        self._levels: dict[int, tuple[np.ndarray, np.ndarray]] = {1: (pos, same)}

    def _level(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The occurrences of the n-grams that occur more than once: their
        positions ordered by (hash, position), and True where the one before
        has the same hash (a repeat occurrence)."""
        while self._n < n:
            ok = self._pos + self._n < len(self.ids)  # an (n+1)-gram starts here
            pos, h = self._pos[ok], self._hash[ok]
            with np.errstate(over="ignore"):
                h = h * _P + self.ids[pos + self._n] + np.uint64(1)
            order = np.lexsort((pos, h))
            pos, h = pos[order], h[order]
            same = np.zeros(len(h), dtype=bool)
            same[1:] = h[1:] == h[:-1]
            repeats = same.copy()
            repeats[:-1] |= same[1:]
            self._n += 1
            self._pos, self._hash = pos[repeats], h[repeats]
            self._levels[self._n] = (self._pos, same[repeats])
        return self._levels[n]

    def top_share(self, n: int) -> float:
        """Characters in all occurrences of the most frequent n-gram (the lowest
        hash among equals, as ``np.unique`` orders them), over all characters."""
        if self.total == 0 or len(self.ids) < n:
            return 0.0
        pos, same = self._level(n)
        if not len(pos):
            return 0.0
        starts = np.flatnonzero(~same)
        counts = np.diff(np.append(starts, len(pos)))
        best = int(np.argmax(counts))
        start = int(pos[starts[best]])  # its first occurrence
        return float(self.weights[start:start + n].sum()) * int(counts[best]) / self.total

    def duplicated_coverage(self, n: int) -> float:
        """Characters covered by the repeat occurrences of n-grams (every
        occurrence after the first, as in datatrove's GopherRepetitionFilter),
        each word counted once, over all characters."""
        if self.total == 0 or len(self.ids) < n:
            return 0.0
        pos, same = self._level(n)
        starts = pos[same]
        if not len(starts):
            return 0.0
        edges = np.zeros(len(self.ids) + 1, dtype=np.int32)
        np.add.at(edges, starts, 1)
        np.add.at(edges, starts + n, -1)
        return float(self.weights[np.cumsum(edges[:-1]) > 0].sum()) / self.total
