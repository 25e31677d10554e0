"""Chinese document rules (character-based: Chinese has no word spaces).

Defaults and their sources (see ``coarse.zh`` in ``defaults.yaml``):
  min_chars 200, min_mean_line_chars 10, min_han_share 0.3,
  max_sensitive_per_line 0.5, repetition 13-gram share 0.5
      ChineseWebText / EvalWeb (arXiv 2311.01149; CASIA-LM/ChineseWebText preprocess.py)
  min_sentence_ends 3
      C4's "at least 3 sentences" (arXiv 1910.10683), counted with 。！？
  max_garbled_share 0.01, max_symbol_share 0.1, max_punct_share 0.3
      mdfs defaults (no published Chinese figure); Yuan 1.0 (arXiv 2110.04725)
      removes "messy code" without stating a threshold
Each rule returns None (keep) or (reason, detail).
"""
from __future__ import annotations

import re

import numpy as np
import regex

from .common import TextView, read_list, repeated_ngram_share, resolve

_SYMBOL = regex.compile(r"\p{S}")
_PUNCT = regex.compile(r"\p{P}")
_GARBLED = regex.compile(r"[\ufffd\p{Co}\p{Cn}]|锟斤拷|烫烫烫|[ÃÂ][\u0080-\u00bf]")
_SENT_END = re.compile(r"[。！？!?]|\.{3}|…")
_SPACE = re.compile(r"\s+")


def too_short(v: TextView, min_chars: int):
    """Fewer than ``min_chars`` characters (ChineseWebText: 200)."""
    n = len(v.text)
    return ("too_short", f"{n}<{min_chars} chars") if n < min_chars else None


def short_lines(v: TextView, min_mean_line_chars: float):
    """Mean line length under ``min_mean_line_chars`` (ChineseWebText: 10):
    lists of links, menus and tag clouds."""
    lines = v.lines
    mean = sum(len(s) for s in lines) / len(lines) if lines else 0.0
    return ("short_lines", f"mean {mean:.1f}<{min_mean_line_chars}") if mean < min_mean_line_chars else None


def low_han_share(v: TextView, min_han_share: float):
    """Han characters under ``min_han_share`` of all characters (ChineseWebText: 0.3)."""
    share = v.han_count / max(len(v.text), 1)
    return ("low_cjk_share", f"{share:.3f}<{min_han_share}") if share < min_han_share else None


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

    def __call__(self, v: TextView, max_per_line: float):
        if self._automaton is None:
            return None
        hits = self.count(v.text)
        per_line = hits / max(len(v.lines), 1)
        return ("sensitive_words", f"{hits} hits, {per_line:.2f}/line>{max_per_line}") if per_line > max_per_line else None


def repetitive(v: TextView, n: int, max_share: float):
    """Share of character n-gram occurrences that repeat within the document,
    on the text with whitespace removed and lower-cased (ChineseWebText: n=13,
    0.5).  Catches pages that repeat the same paragraph or keyword string."""
    compact = _SPACE.sub("", v.text).lower()
    ids = np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    share = repeated_ngram_share(ids, n)
    return ("repetitive", f"{n}-gram repeat share {share:.2f}>{max_share}") if share > max_share else None


def garbled(v: TextView, max_share: float):
    """Replacement characters, private-use or unassigned code points and
    leftover mojibake over ``max_share`` of the characters."""
    n = sum(len(m) for m in _GARBLED.findall(v.text))
    share = n / max(len(v.text), 1)
    return ("garbled_text", f"{share:.3f}>{max_share}") if share > max_share else None


def symbol_heavy(v: TextView, max_symbol_share: float, max_punct_share: float):
    """Symbols (Unicode S*: emoji, box drawing, currency, math) or punctuation
    over their share of the non-space characters."""
    nonspace = len(v.text) - sum(len(m) for m in _SPACE.findall(v.text))
    if nonspace <= 0:
        return ("too_many_symbols", "no visible characters")
    sym = len(_SYMBOL.findall(v.text)) / nonspace
    if sym > max_symbol_share:
        return ("too_many_symbols", f"symbol share {sym:.3f}>{max_symbol_share}")
    punct = len(_PUNCT.findall(v.text)) / nonspace
    if punct > max_punct_share:
        return ("too_much_punctuation", f"punctuation share {punct:.3f}>{max_punct_share}")
    return None


def few_sentences(v: TextView, min_sentence_ends: int):
    """Fewer than ``min_sentence_ends`` sentence-final marks (。！？): keyword
    lists and headline lists rather than prose."""
    n = len(_SENT_END.findall(v.text))
    return ("few_sentences", f"{n}<{min_sentence_ends} sentence ends") if n < min_sentence_ends else None


def build(cfg: dict) -> list:
    """The enabled Chinese rules in order, each a callable TextView -> None | (reason, detail)."""
    rules = [lambda v: too_short(v, int(cfg["min_chars"]))]
    if cfg.get("min_mean_line_chars"):
        rules.append(lambda v: short_lines(v, float(cfg["min_mean_line_chars"])))
    if cfg.get("min_han_share"):
        rules.append(lambda v: low_han_share(v, float(cfg["min_han_share"])))
    if cfg.get("max_garbled_share") is not None:
        rules.append(lambda v: garbled(v, float(cfg["max_garbled_share"])))
    if cfg.get("max_symbol_share") is not None:
        rules.append(lambda v: symbol_heavy(v, float(cfg["max_symbol_share"]), float(cfg["max_punct_share"])))
    if cfg.get("min_sentence_ends"):
        rules.append(lambda v: few_sentences(v, int(cfg["min_sentence_ends"])))
    if cfg.get("sensitive_lexicons"):
        sw = SensitiveWords(cfg["sensitive_lexicons"], int(cfg["sensitive_min_term_chars"]))
        rules.append(lambda v: sw(v, float(cfg["max_sensitive_per_line"])))
    if cfg.get("repetition_ngram"):
        rules.append(lambda v: repetitive(v, int(cfg["repetition_ngram"]), float(cfg["max_repetition_share"])))
    return rules
