"""Token counting for the statistics and the ``token_count`` column.

With ``stats.tokenizer`` set to a local Hugging Face ``tokenizer.json`` (or a
directory holding one), tokens are that tokenizer's (``tokenizers`` library,
no hub access).  Without one, the documented default ``cjk_chars_plus_words``
counts each CJK character (Han, kana, Hangul) as one token and each other
word (a run of letters/digits) and each punctuation mark as one token: close
to what BPE tokenizers trained on Chinese produce for Chinese (about one token
per character) and a lower bound for English (BPE gives ~1.3 tokens per
word).  The character count is always reported alongside.
"""
from __future__ import annotations

import os

import numpy as np
import regex

from . import charclass

# The default's definition: a token is one match of this pattern.  It decides by
# single characters, so count_units counts its matches from each character's
# class (charclass: whitespace, a letter or digit, a CJK character).
UNITS = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[\p{L}\p{N}]+|[^\s\p{L}\p{N}]")
DEFAULT = "cjk_chars_plus_words"


def count_units(text: str) -> int:
    """``len(UNITS.findall(text))`` without a string per token: every character
    that is neither whitespace nor a letter/digit is one token (a CJK mark
    among them); in a run of letters and digits, each CJK character before
    the run's first other letter is a token, and the rest of the run is one
    (a letter run takes in the CJK characters that follow it, as UNITS does)."""
    if not text:
        return 0
    cls = charclass.classes(charclass.codepoints(text))
    letter = (cls & charclass.LETTER) != 0
    alone = int(np.count_nonzero((cls & (charclass.SPACE | charclass.LETTER)) == 0))
    # the runs of letters and digits: [starts, ends)
    edges = np.flatnonzero(letter[1:] != letter[:-1]) + 1
    bounds = np.concatenate(([0], edges, [len(cls)]))
    first = 0 if letter[0] else 1
    starts, ends = bounds[first:-1:2], bounds[first + 1::2]
    # in each run, its first letter or digit that is not CJK (the run's end if none)
    other = np.flatnonzero(letter & ((cls & charclass.CJK) == 0))
    first_other = np.minimum(np.append(other, len(cls))[np.searchsorted(other, starts)], ends)
    # per run: the CJK characters before that one, each a token, and that one with the rest of the run
    return alone + int((first_other - starts).sum()) + int(np.count_nonzero(first_other < ends))


class TokenCounter:
    def __init__(self, tokenizer: str | None = None):
        self._tok = None
        if tokenizer:
            from tokenizers import Tokenizer

            path = os.path.join(tokenizer, "tokenizer.json") if os.path.isdir(tokenizer) else tokenizer
            if not os.path.isfile(path):
                raise FileNotFoundError(f"stats.tokenizer: no tokenizer.json at {tokenizer}")
            self._tok = Tokenizer.from_file(path)

    def count(self, text: str) -> int:
        if self._tok is not None:
            return len(self._tok.encode(text, add_special_tokens=False).ids)
        return count_units(text)
