"""English (space-delimited) document rules, with a regex-free whitespace word
split instead of spaCy (the cost that makes datatrove's Gopher filter as slow
as extraction).

Gopher quality and repetition: Rae et al., arXiv 2112.11446, appendix A.1.1
(thresholds as in the paper and datatrove's GopherQualityFilter /
GopherRepetitionFilter).  C4: Raffel et al., arXiv 1910.10683, sec. 2.2.
FineWeb: Penedo et al., arXiv 2406.17557 (datatrove FineWebQualityFilter).
Each rule is a ``rule.Rule``: a pure measure and its threshold; the Gopher and
FineWeb filters are their individual checks, in the papers' order.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import regex

from .common import TERMINAL_PUNCT, NgramRepeats, TextView, char_count, memo
from .rule import Rule, first_verdict

if TYPE_CHECKING:
    from ...schema import C4, EnRules, FineWeb, GopherQuality, GopherRepetition, OtherRules

STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
_BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "–", "-", "*", "·", "‣", "⁃", "◦")
_ELLIPSIS = ("...", "…")
# The end of a sentence: a run of terminal marks after a non-mark.  (The
# pattern "[^.!?]+[.!?]+" counts the same runs but backtracks quadratically
# over a long tail without a full stop: 1.5 ms per page, a quarter of the stage.)
_SENTENCE_END = re.compile(r"(?<=[^.!?。！？])[.!?。！？]")
_STOP_WORD = re.compile(r"(?<![\w'])(?:the|be|to|of|and|that|have|with)(?![\w'])", re.IGNORECASE)
# a whitespace-delimited token without any letter
_NON_ALPHA_TOKEN = regex.compile(r"(?<!\S)[^\s\p{L}]+(?!\S)")


# --- measures: pure functions of the text ----------------------------------------

def word_count(v: TextView) -> int:
    return len(v.words)


def mean_word_length(v: TextView) -> float:
    words = v.words
    return sum(map(len, words)) / len(words) if words else 0.0


def symbol_word_ratio(v: TextView) -> float:
    """'#' and ellipses per word (Gopher)."""
    n = len(v.words)
    return (v.text.count("#") + v.text.count("...") + v.text.count("…")) / n if n else 0.0


def _line_share(v: TextView, pred) -> float:
    lines = v.lines
    return sum(1 for s in lines if pred(s)) / len(lines) if lines else 0.0


def bullet_line_share(v: TextView) -> float:
    return _line_share(v, lambda s: s.startswith(_BULLETS))


def ellipsis_line_share(v: TextView) -> float:
    return _line_share(v, lambda s: s.endswith(_ELLIPSIS))


def alpha_word_share(v: TextView) -> float:
    """Share of words with at least one letter (Gopher); 1 without words."""
    n = len(v.words)
    return 1.0 - len(_NON_ALPHA_TOKEN.findall(v.text)) / n if n else 1.0


def stop_word_count(v: TextView) -> int:
    return sum(1 for _ in _STOP_WORD.finditer(v.text))


def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """(share of items that repeat an earlier item, share of their characters)."""
    seen, dup_n, dup_chars = set(), 0, 0
    for it in items:
        if it in seen:
            dup_n += 1
            dup_chars += len(it)
        else:
            seen.add(it)
    total_chars = sum(len(i) for i in items)
    return dup_n / max(len(items), 1), dup_chars / max(total_chars, 1)


def dup_paragraphs(v: TextView) -> tuple[float, float]:
    return memo(v, "dup_paragraphs", lambda: _dup_fraction(v.paragraphs))


def dup_lines(v: TextView) -> tuple[float, float]:
    return memo(v, "dup_lines", lambda: _dup_fraction(v.lines))


def _ngram_repeats(v: TextView) -> NgramRepeats:
    return memo(v, "ngram_repeats", lambda: NgramRepeats(*v.word_ids))


def top_ngram_char_share(v: TextView, n: int) -> float:
    """Characters covered by the most frequent word n-gram (Gopher)."""
    if len(v.words) < 2:
        return 0.0
    return _ngram_repeats(v).top_share(n)


def dup_ngram_char_share(v: TextView, n: int) -> float:
    """Characters covered by word n-grams that occur more than once (Gopher)."""
    if len(v.words) < 2:
        return 0.0
    return _ngram_repeats(v).duplicated_coverage(n)


def has_lorem_ipsum(v: TextView) -> float:
    return float("lorem ipsum" in v.text.lower())


def has_curly_bracket(v: TextView) -> float:
    return float("{" in v.text)


def sentence_count(v: TextView) -> int:
    return sum(1 for _ in _SENTENCE_END.finditer(v.text))


def line_count(v: TextView) -> int:
    return len(v.lines)


def terminal_punct_line_share(v: TextView) -> float:
    return _line_share(v, lambda s: s.endswith(TERMINAL_PUNCT))


def duplicate_line_char_share(v: TextView) -> float:
    """Characters in duplicated lines per non-newline character (FineWeb)."""
    lines = v.lines
    return dup_lines(v)[1] * sum(len(s) for s in lines) / max(len(v.text.replace("\n", "")), 1)


def newlines_per_word(v: TextView) -> float:
    return v.text.count("\n") / max(len(v.words), 1)


# --- the rules -------------------------------------------------------------------------

def gopher_quality_rules(c: GopherQuality) -> list[Rule]:
    """Gopher's quality filter (Rae et al. 2021, app. A.1.1): 50-100,000 words,
    mean word length 3-10, symbol/word <= 0.1, bullet lines <= 90 %, ellipsis
    lines <= 30 %, words with a letter >= 80 %, at least 2 stop words."""
    return [Rule("gopher_too_few_words", word_count, min=c.min_words, fmt="{}", signal="gopher.word_count"),
            Rule("gopher_too_many_words", word_count, max=c.max_words, fmt="{}", signal="gopher.word_count"),
            Rule("gopher_mean_word_length", mean_word_length, min=c.min_mean_word_length,
                 max=c.max_mean_word_length, fmt="{:.1f}", signal="gopher.mean_word_length"),
            Rule("gopher_symbol_ratio", symbol_word_ratio, max=c.max_symbol_word_ratio, signal="gopher.symbol_word_ratio"),
            Rule("gopher_bullet_lines", bullet_line_share, max=c.max_bullet_lines_ratio, fmt="{:.2f}",
                 signal="gopher.bullet_line_share"),
            Rule("gopher_ellipsis_lines", ellipsis_line_share, max=c.max_ellipsis_lines_ratio, fmt="{:.2f}",
                 signal="gopher.ellipsis_line_share"),
            Rule("gopher_non_alpha_words", alpha_word_share, min=c.min_alpha_words_ratio, fmt="{:.2f}",
                 signal="gopher.alpha_word_share"),
            Rule("gopher_few_stop_words", stop_word_count, min=c.min_stop_words, fmt="{}",
                 signal="gopher.stop_word_count")]


def gopher_repetition_rules(c: GopherRepetition) -> list[Rule]:
    """Gopher's repetition filter: duplicated paragraphs/lines (share and their
    characters), then the top and duplicated word n-gram character shares."""
    rules = [Rule("gopher_dup_paragraphs", lambda v: dup_paragraphs(v)[0], max=c.dup_para_frac, fmt="{:.2f}",
                  signal="gopher.dup_para_share"),
             Rule("gopher_dup_paragraph_chars", lambda v: dup_paragraphs(v)[1], max=c.dup_para_char_frac,
                  fmt="{:.2f}", signal="gopher.dup_para_char_share"),
             Rule("gopher_dup_lines", lambda v: dup_lines(v)[0], max=c.dup_line_frac, fmt="{:.2f}",
                  signal="gopher.dup_line_share"),
             Rule("gopher_dup_line_chars", lambda v: dup_lines(v)[1], max=c.dup_line_char_frac, fmt="{:.2f}",
                  signal="gopher.dup_line_char_share")]
    rules += [Rule(f"gopher_top_{n}gram", lambda v, n=n: top_ngram_char_share(v, n), max=thr,
                   signal=f"gopher.top_{n}gram_char_share")
              for n, thr in c.top_ngram_char_frac.items()]
    rules += [Rule(f"gopher_dup_{n}gram", lambda v, n=n: dup_ngram_char_share(v, n), max=thr,
                   signal=f"gopher.dup_{n}gram_char_share")
              for n, thr in c.dup_ngram_char_frac.items()]
    return rules


def c4_rules(c: C4) -> list[Rule]:
    """C4's page rules (Raffel et al. 2020, sec. 2.2): no "lorem ipsum", no curly
    bracket, at least 3 sentences."""
    rules = []
    if c.lorem_ipsum:
        rules.append(Rule("c4_lorem_ipsum", has_lorem_ipsum, max=0, fmt="{:.0f}", signal="c4.lorem_ipsum"))
    if c.curly_bracket:
        rules.append(Rule("c4_curly_bracket", has_curly_bracket, max=0, fmt="{:.0f}", signal="c4.curly_bracket"))
    if c.min_sentences:
        rules.append(Rule("c4_few_sentences", sentence_count, min=c.min_sentences, fmt="{}",
                          signal="c4.sentence_count"))
    return rules


def fineweb_rules(c: FineWeb) -> list[Rule]:
    """FineWeb's quality filter (Penedo et al. 2024, sec. 3.4): lines ending in
    punctuation <= 0.12, short lines >= 0.67, duplicated-line characters >= 0.1,
    newlines per word > 0.3 drop the page."""
    return [Rule("fineweb_empty", line_count, min=1, fmt="{}", signal="fineweb.line_count"),
            Rule("fineweb_line_punct", terminal_punct_line_share, min=c.line_punct_thr, fmt="{:.2f}",
                 signal="fineweb.line_punct_share"),
            Rule("fineweb_short_lines", lambda v: _line_share(v, lambda s: len(s) <= c.short_line_length),
                 max=c.short_line_thr, fmt="{:.2f}",
                 signal="fineweb.short_line_share"),
            Rule("fineweb_dup_line_chars", duplicate_line_char_share, max=c.char_duplicates_ratio,
                 signal="fineweb.dup_line_char_share"),
            Rule("fineweb_newline_ratio", newlines_per_word, max=c.new_line_ratio, fmt="{:.2f}",
                 signal="fineweb.newline_ratio")]


# each filter as one call (tests, notebooks): the first of its checks that fires
def gopher_quality(v: TextView, c: GopherQuality):
    return first_verdict(gopher_quality_rules(c), v)


def gopher_repetition(v: TextView, c: GopherRepetition):
    return first_verdict(gopher_repetition_rules(c), v)


def c4_document(v: TextView, c: C4):
    return first_verdict(c4_rules(c), v)


def fineweb(v: TextView, c: FineWeb):
    return first_verdict(fineweb_rules(c), v)


def build(cfg: EnRules | OtherRules, sensitive=None, lang: str = "en") -> list[Rule]:
    """The enabled English rules in order (``other`` languages: ``min_chars`` only)."""
    rules = []
    if cfg.min_chars:
        rules.append(Rule("too_short", char_count, min=cfg.min_chars, fmt="{}", unit=" chars",
                          signal=f"{lang}.char_count"))
    for key, make in (("gopher_quality", gopher_quality_rules), ("c4", c4_rules), ("fineweb", fineweb_rules),
                      ("gopher_repetition", gopher_repetition_rules)):
        c = getattr(cfg, key, None)  # absent for the length-only rule set of other languages
        if c is not None and c.enabled:
            rules += make(c)
    if sensitive is not None:
        rules.append(sensitive.rule(cfg.max_sensitive_per_line, f"{lang}.sensitive_per_line"))
    return rules
