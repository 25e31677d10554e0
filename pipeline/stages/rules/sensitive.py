"""Lexicon density: occurrences of lexicon terms per non-empty line
(ChineseWebText: 0.5 per line).  One Aho-Corasick pass per document."""
from __future__ import annotations

from .common import TextView, read_list, resolve
from .rule import Rule


class SensitiveWords:
    """Occurrences of lexicon terms per non-empty line (ChineseWebText: 0.5).

    ChineseWebText counts distinct terms present; mdfs counts occurrences
    (longest match, non-overlapping, one Aho-Corasick pass), so that one term
    repeated through a page counts as often as it appears.  Single-character
    terms are ignored by default (``min_term_chars: 2``): as substrings of
    Chinese text they match ordinary words (乳 in 乳业).  With
    ``word_boundaries`` (English), a match must not touch letters or digits."""

    def __init__(self, lexicons: list[str], min_term_chars: int = 2, word_boundaries: bool = False):
        import ahocorasick

        terms = {t.lower() for f in lexicons for t in read_list(resolve(f), min_chars=min_term_chars)}
        self.word_boundaries = word_boundaries
        self._automaton = None
        if terms:
            a = ahocorasick.Automaton()
            for t in terms:
                a.add_word(t, len(t))
            a.make_automaton()
            self._automaton = a

    def count(self, text: str) -> int:
        if self._automaton is None:
            return 0
        text = text.lower()
        if not self.word_boundaries:
            return sum(1 for _ in self._automaton.iter_long(text))
        n, last = 0, len(text) - 1
        for end, length in self._automaton.iter_long(text):
            start = end - length + 1
            if (start == 0 or not text[start - 1].isalnum()) and (end == last or not text[end + 1].isalnum()):
                n += 1
        return n

    def per_line(self, v: TextView) -> float:
        return self.count(v.text) / max(len(v.lines), 1)

    def rule(self, max_per_line: float, signal: str = "sensitive_per_line") -> Rule:
        return Rule("sensitive_words", self.per_line, max=max_per_line, fmt="{:.2f}", unit=" per line", signal=signal)

    def __call__(self, v: TextView, max_per_line: float):
        return self.rule(max_per_line)(v)
