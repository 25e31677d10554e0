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
Each rule is a ``rule.Rule``: a pure measure and its threshold.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import regex

from .common import TextView, char_count, memo, repeated_ngram_share
from .rule import Rule, first_verdict, too_short  # noqa: F401 - too_short re-exported
from .sensitive import SensitiveWords

if TYPE_CHECKING:
    from ...schema import ZhRules

_SYMBOL = regex.compile(r"\p{S}")
_PUNCT = regex.compile(r"\p{P}")
_GARBLED = regex.compile(r"[\ufffd\p{Co}\p{Cn}]|锟斤拷|烫烫烫|[ÃÂ][\u0080-\u00bf]")
_SENT_END = re.compile(r"[。！？!?]|\.{3}|…")
_SPACE = re.compile(r"\s+")


# --- measures: pure functions of the text ----------------------------------------

def mean_line_chars(v: TextView) -> float:
    lines = v.lines
    return sum(len(s) for s in lines) / len(lines) if lines else 0.0


def han_share(v: TextView) -> float:
    return v.han_count / max(len(v.text), 1)


def garbled_share(v: TextView) -> float:
    return sum(len(m) for m in _GARBLED.findall(v.text)) / max(len(v.text), 1)


def _visible(v: TextView) -> int:
    return memo(v, "visible_chars", lambda: len(v.text) - sum(len(m) for m in _SPACE.findall(v.text)))


def symbol_share(v: TextView) -> float:
    """Unicode S* (emoji, box drawing, currency, math) per visible character; 1 without any."""
    n = _visible(v)
    return len(_SYMBOL.findall(v.text)) / n if n > 0 else 1.0


def punct_share(v: TextView) -> float:
    n = _visible(v)
    return len(_PUNCT.findall(v.text)) / n if n > 0 else 1.0


def sentence_ends(v: TextView) -> int:
    return len(_SENT_END.findall(v.text))


def repeated_char_ngram_share(v: TextView, n: int) -> float:
    """Share of character n-gram occurrences that repeat within the document,
    whitespace removed and lower-cased."""
    compact = _SPACE.sub("", v.text).lower()
    ids = np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return repeated_ngram_share(ids, n)


# --- the rules (thresholds from coarse.zh; sources in the module docstring) ---------

def short_lines_rule(min_mean_line_chars: float) -> Rule:
    """Mean line length under the minimum (ChineseWebText: 10): lists of links,
    menus and tag clouds."""
    return Rule("short_lines", mean_line_chars, min=min_mean_line_chars, fmt="{:.1f}", signal="zh.mean_line_chars")


def low_han_share_rule(min_han_share: float) -> Rule:
    """Han characters under the share of all characters (ChineseWebText: 0.3)."""
    return Rule("low_cjk_share", han_share, min=min_han_share, signal="zh.han_share")


def garbled_rule(max_share: float) -> Rule:
    """Replacement characters, private-use or unassigned code points and leftover
    mojibake over the share (Yuan 1.0 removes "messy code"; mdfs: 0.01)."""
    return Rule("garbled_text", garbled_share, max=max_share, signal="zh.garbled_share")


def symbols_rule(max_symbol_share: float) -> Rule:
    return Rule("too_many_symbols", symbol_share, max=max_symbol_share, signal="zh.symbol_share")


def punctuation_rule(max_punct_share: float) -> Rule:
    return Rule("too_much_punctuation", punct_share, max=max_punct_share, signal="zh.punct_share")


def few_sentences_rule(min_sentence_ends: int) -> Rule:
    """Fewer sentence-final marks (。！？) than C4's 3 sentences: keyword and
    headline lists rather than prose."""
    return Rule("few_sentences", sentence_ends, min=min_sentence_ends, fmt="{}", unit=" sentence ends",
                signal="zh.sentence_ends")


def repetitive_rule(n: int, max_share: float) -> Rule:
    """Repeated character n-grams (ChineseWebText: 13-grams, 0.5): pages that
    repeat the same paragraph or keyword string."""
    return Rule("repetitive", lambda v: repeated_char_ngram_share(v, n), max=max_share, fmt="{:.2f}",
                unit=f" ({n}-gram repeat share)", signal=f"zh.repeated_{n}gram_share")


# the rules one call at a time (tests, notebooks)
def short_lines(v: TextView, min_mean_line_chars: float):
    return short_lines_rule(min_mean_line_chars)(v)


def low_han_share(v: TextView, min_han_share: float):
    return low_han_share_rule(min_han_share)(v)


def garbled(v: TextView, max_share: float):
    return garbled_rule(max_share)(v)


def symbol_heavy(v: TextView, max_symbol_share: float, max_punct_share: float):
    return first_verdict([symbols_rule(max_symbol_share), punctuation_rule(max_punct_share)], v)


def few_sentences(v: TextView, min_sentence_ends: int):
    return few_sentences_rule(min_sentence_ends)(v)


def repetitive(v: TextView, n: int, max_share: float):
    return repetitive_rule(n, max_share)(v)


def build(cfg: ZhRules) -> list[Rule]:
    """The enabled Chinese rules in order."""
    rules = [Rule("too_short", char_count, min=cfg.min_chars, fmt="{}", unit=" chars", signal="zh.char_count")]
    if cfg.min_mean_line_chars:
        rules.append(short_lines_rule(cfg.min_mean_line_chars))
    if cfg.min_han_share:
        rules.append(low_han_share_rule(cfg.min_han_share))
    if cfg.max_garbled_share is not None:
        rules.append(garbled_rule(cfg.max_garbled_share))
    if cfg.max_symbol_share is not None:
        rules += [symbols_rule(cfg.max_symbol_share), punctuation_rule(cfg.max_punct_share)]
    if cfg.min_sentence_ends:
        rules.append(few_sentences_rule(cfg.min_sentence_ends))
    if cfg.sensitive_lexicons:
        sw = SensitiveWords(cfg.sensitive_lexicons, cfg.sensitive_min_term_chars)
        rules.append(sw.rule(cfg.max_sensitive_per_line, "zh.sensitive_per_line"))
    if cfg.repetition_ngram:
        rules.append(repetitive_rule(cfg.repetition_ngram, cfg.max_repetition_share))
    return rules
