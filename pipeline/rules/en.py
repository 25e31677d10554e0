"""English (space-delimited) document rules, with a regex-free whitespace word
split instead of spaCy (the cost that makes datatrove's Gopher filter as slow
as extraction).

Gopher quality and repetition: Rae et al., arXiv 2112.11446, appendix A.1.1
(thresholds as in the paper and datatrove's GopherQualityFilter /
GopherRepetitionFilter).  C4: Raffel et al., arXiv 1910.10683, sec. 2.2.
FineWeb: Penedo et al., arXiv 2406.17557 (datatrove FineWebQualityFilter).
Each rule returns None (keep) or (reason, detail).
"""
from __future__ import annotations

import re

import numpy as np
import regex

from .common import TERMINAL_PUNCT, TextView, duplicated_ngram_coverage, top_ngram_share

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


def _word_ids(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int64)
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    return ids, lens


def gopher_quality(v: TextView, c: dict):
    words = v.words
    n = len(words)
    if n < c["min_words"]:
        return "gopher_too_few_words", f"{n}<{c['min_words']}"
    if n > c["max_words"]:
        return "gopher_too_many_words", f"{n}>{c['max_words']}"
    mean_len = sum(len(w) for w in words) / n
    if not c["min_mean_word_length"] <= mean_len <= c["max_mean_word_length"]:
        return "gopher_mean_word_length", f"{mean_len:.1f}"
    text = v.text
    symbols = text.count("#") + text.count("...") + text.count("…")
    if symbols / n > c["max_symbol_word_ratio"]:
        return "gopher_symbol_ratio", f"{symbols / n:.3f}"
    lines = v.lines
    if lines:
        bullets = sum(1 for s in lines if s.startswith(_BULLETS)) / len(lines)
        if bullets > c["max_bullet_lines_ratio"]:
            return "gopher_bullet_lines", f"{bullets:.2f}"
        ellipsis = sum(1 for s in lines if s.endswith(_ELLIPSIS)) / len(lines)
        if ellipsis > c["max_ellipsis_lines_ratio"]:
            return "gopher_ellipsis_lines", f"{ellipsis:.2f}"
    alpha = 1.0 - len(_NON_ALPHA_TOKEN.findall(text)) / n
    if alpha < c["min_alpha_words_ratio"]:
        return "gopher_non_alpha_words", f"{alpha:.2f}"
    need, stops = int(c["min_stop_words"]), 0
    for _ in _STOP_WORD.finditer(text):
        stops += 1
        if stops >= need:
            break
    if stops < need:
        return "gopher_few_stop_words", f"{stops}<{need}"
    return None


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


def gopher_repetition(v: TextView, c: dict):
    paras = v.paragraphs
    frac, chars = _dup_fraction(paras)
    if frac > c["dup_para_frac"]:
        return "gopher_dup_paragraphs", f"{frac:.2f}"
    if chars > c["dup_para_char_frac"]:
        return "gopher_dup_paragraph_chars", f"{chars:.2f}"
    frac, chars = _dup_fraction(v.lines)
    if frac > c["dup_line_frac"]:
        return "gopher_dup_lines", f"{frac:.2f}"
    if chars > c["dup_line_char_frac"]:
        return "gopher_dup_line_chars", f"{chars:.2f}"
    words = v.words
    if len(words) < 2:
        return None
    ids, lens = _word_ids([w.lower() for w in words])
    for n, thr in c["top_ngram_char_frac"].items():
        share = top_ngram_share(ids, lens, int(n))
        if share > thr:
            return f"gopher_top_{n}gram", f"{share:.3f}>{thr}"
    for n, thr in c["dup_ngram_char_frac"].items():
        share = duplicated_ngram_coverage(ids, lens, int(n))
        if share > thr:
            return f"gopher_dup_{n}gram", f"{share:.3f}>{thr}"
    return None


def c4_document(v: TextView, c: dict):
    low = v.text.lower()
    if c["lorem_ipsum"] and "lorem ipsum" in low:
        return "c4_lorem_ipsum", None
    if c["curly_bracket"] and "{" in v.text:
        return "c4_curly_bracket", None
    min_s = int(c["min_sentences"])
    if min_s:
        n = 0
        for _ in _SENTENCE_END.finditer(v.text):
            n += 1
            if n >= min_s:
                break
        if n < min_s:
            return "c4_few_sentences", f"<{min_s}"
    return None


def fineweb(v: TextView, c: dict):
    lines = v.lines
    if not lines:
        return "fineweb_empty", None
    punct = sum(1 for s in lines if s.endswith(TERMINAL_PUNCT)) / len(lines)
    if punct < c["line_punct_thr"]:
        return "fineweb_line_punct", f"{punct:.2f}<{c['line_punct_thr']}"
    short = sum(1 for s in lines if len(s) <= c["short_line_length"]) / len(lines)
    if short > c["short_line_thr"]:
        return "fineweb_short_lines", f"{short:.2f}>{c['short_line_thr']}"
    _, dup_chars = _dup_fraction(lines)
    dup_share = dup_chars * sum(len(s) for s in lines) / max(len(v.text.replace("\n", "")), 1)
    if dup_share > c["char_duplicates_ratio"]:
        return "fineweb_dup_line_chars", f"{dup_share:.3f}>{c['char_duplicates_ratio']}"
    nl = v.text.count("\n") / max(len(v.words), 1)
    if nl > c["new_line_ratio"]:
        return "fineweb_newline_ratio", f"{nl:.2f}>{c['new_line_ratio']}"
    return None


def build(cfg: dict, sensitive=None) -> list:
    """The enabled English rules in order, each a callable TextView -> None | (reason, detail)."""
    rules = []
    min_chars = int(cfg.get("min_chars", 0))
    if min_chars:
        rules.append(lambda v: ("too_short", f"{len(v.text)}<{min_chars} chars") if len(v.text) < min_chars else None)
    for key, fn in (("gopher_quality", gopher_quality), ("c4", c4_document), ("fineweb", fineweb),
                    ("gopher_repetition", gopher_repetition)):
        c = cfg.get(key) or {}
        if c.get("enabled", True) and c:
            rules.append(lambda v, fn=fn, c=c: fn(v, c))
    if sensitive is not None:
        rules.append(lambda v: sensitive(v, float(cfg["max_sensitive_per_line"])))
    return rules
