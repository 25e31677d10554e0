"""Measures rewritten for speed give exactly what their definitions give:
Gopher's word n-gram shares (``NgramRepeats``, level by level over the
repeated positions), the default token count (``count_units``, from
character classes) and the line cleaner's content share per line
(``content_shares``, one pass over the text).  Each is checked against a
plain implementation of its definition, on generated texts that crowd the
edge cases (repeats, scripts side by side, odd whitespace) and on real ones."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdfs.pipeline.stages.rules.common import NgramRepeats, TextView
from mdfs.pipeline.stages.rules.lines import content_shares
from mdfs.pipeline.tokens import UNITS, count_units

from helpers import real_en_texts, real_zh_texts

# letters of several scripts, CJK marks that are and are not letters (ー U+30FC
# is a letter, ・ U+30FB and ゠ U+30A0 are not), digits, combining marks, an
# astral Han character and an emoji, and whitespace str.split and regex \s disagree on
ALPHABET = list("ab xyZ中文字カナ한글ー・゠1２٣。,.!?é\u0301\u0e01_-|>") + [
    "\U00020000", "\U0001F600", " ", "\t", "\n", "\u3000", "\x1c", "\x85", "\u2028", "\u200b", "\ufeff",
    "\ud800", "\udfff", "\u2e80", "\u3005", "\u3007", "\u309b"]  # lone surrogates; Han radical, 々, 〇, ゛
TEXTS = st.lists(st.sampled_from(ALPHABET), max_size=60).map("".join)


def _top_share_by_definition(words: list[str], weights: list[int], n: int) -> float:
    """The most frequent n-gram's characters in all its occurrences over all
    characters; ties to the lowest polynomial hash (as np.unique orders them)."""
    total = sum(weights)
    grams: dict[tuple, list[int]] = {}
    for i in range(len(words) - n + 1):
        grams.setdefault(tuple(words[i:i + n]), []).append(i)
    if not total or not grams:
        return 0.0
    best = max(len(v) for v in grams.values())
    if best < 2:
        return 0.0
    ties = [v for v in grams.values() if len(v) == best]
    ids = {w: i for i, w in enumerate(dict.fromkeys(words))}

    def poly(start: int) -> int:  # ngram_hashes, in Python integers mod 2**64
        h = 0
        for w in words[start:start + n]:
            h = (h * 1_000_003 + ids[w] + 1) % 2 ** 64
        return h

    first = min(ties, key=lambda v: poly(v[0]))[0]
    return sum(weights[first:first + n]) * best / total


def _duplicated_coverage_by_definition(words: list[str], weights: list[int], n: int) -> float:
    """Words covered by an n-gram occurrence that repeats an earlier one."""
    total = sum(weights)
    seen, covered = set(), set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            covered.update(range(i, i + n))
        seen.add(gram)
    return sum(weights[i] for i in covered) / total if total else 0.0


WORD_LISTS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "dd", "e"]), st.integers(0, 4)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(pairs=WORD_LISTS, order=st.permutations([1, 2, 3, 4, 5, 6, 8, 10]))
def test_ngram_repeats_equal_the_gopher_definitions(pairs, order):
    words, weights = [w for w, _ in pairs], [k for _, k in pairs]  # weights 0 included
    ids = {w: i for i, w in enumerate(dict.fromkeys(words))}
    r = NgramRepeats(np.array([ids[w] for w in words], dtype=np.int64), np.array(weights, dtype=np.int64))
    for n in order:  # any order: levels are built once, in turn
        # the same arithmetic on the same integers: equal, not approximately equal
        assert r.top_share(n) == _top_share_by_definition(words, weights, n)
        assert r.duplicated_coverage(n) == _duplicated_coverage_by_definition(words, weights, n)


def test_ngram_repeats_on_real_texts():
    for text in real_en_texts()[:20] + [" ".join(real_en_texts()[0].split()[:300]) * 3]:
        words = text.lower().split()
        weights = [len(w) for w in words]
        r = NgramRepeats(*TextView(text).word_ids)
        for n in (2, 3, 4):
            assert r.top_share(n) == _top_share_by_definition(words, weights, n)
        for n in range(5, 11):
            assert r.duplicated_coverage(n) == _duplicated_coverage_by_definition(words, weights, n)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_token_count_is_the_number_of_matches(text):
    assert count_units(text) == len(UNITS.findall(text))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_token_count_on_any_unicode(text):
    assert count_units(text) == len(UNITS.findall(text))


def test_token_count_on_real_texts():
    for text in real_zh_texts()[:20] + real_en_texts()[:20]:
        assert count_units(text) == len(UNITS.findall(text))
    assert count_units("abc中文 中文") == 3  # a letter run takes in the Han after it; Han alone is one each


def _content_share_by_definition(line: str) -> float:
    import regex

    visible = len("".join(line.split()))
    return len(regex.sub(r"[^\p{L}\p{N}]+", "", line)) / visible if visible else 0.0


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_content_shares_per_line(text):
    assert content_shares(text) == [_content_share_by_definition(line) for line in text.split("\n")]


def test_content_shares_on_real_texts():
    for text in real_zh_texts()[:20] + real_en_texts()[:20]:
        assert content_shares(text) == [_content_share_by_definition(line) for line in text.split("\n")]
