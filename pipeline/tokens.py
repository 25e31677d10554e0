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

import regex

_UNITS = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[\p{L}\p{N}]+|[^\s\p{L}\p{N}]")
DEFAULT = "cjk_chars_plus_words"


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
        return len(_UNITS.findall(text))
