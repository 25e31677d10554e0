"""Text normalisation before the coarse rules.

* broken text: mojibake repaired with ftfy, but only when a cheap pattern says
  there is some (ftfy costs ~2 ms per 1,000 characters, ten times the budget
  of all rules together); control and zero-width characters removed;
* Unicode NFC (not NFKC: NFKC would turn Chinese full-width punctuation such
  as ，。！？ into ASCII); full-width ASCII letters and digits to half-width;
* whitespace: runs of spaces, tabs and U+3000 collapsed, lines stripped, at
  most one blank line in a row;
* Traditional Chinese detected (share of characters OpenCC's t2s changes) and
  converted to Simplified, kept, or dropped, as config says (Yuan 1.0
  converts Traditional to Simplified).
"""
from __future__ import annotations

import re
import unicodedata

import regex

# typical mojibake: UTF-8 read as Latin-1/cp1252 (Ã©, â€™, Â ...), and the
# "锟斤拷"/"烫烫烫" sequences left by UTF-8 -> GBK round trips
_MOJIBAKE = re.compile("[ÃÂâ][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]"
                       "|锟斤拷|烫烫烫|屯屯屯")
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029"
                      "\u202a-\u202e\u2060-\u2064\ufeff]")
# a run of spaces becomes one " ": runs that are already one " " are not matched
# (most of them, in English), so the substitution does not rebuild each of them
_SPACES = re.compile("[ \t\u00a0\u3000\u2002-\u200a\u202f\u205f]{2,}|[\t\u00a0\u3000\u2002-\u200a\u202f\u205f]")
_BLANKS = re.compile("\n{3,}")
_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(r[0], r[1] + 1)}
_FULLWIDTH_ALNUM[0x3000] = 0x20
_FULLWIDTH_ANY = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000]")


_SURROGATE = re.compile("[\ud800-\udfff]")
# well-formed character references only: named (&middot;), decimal (&#183;) or hex
# (&#xB7;), each ending in ';' - html.unescape would also rewrite the "&para"
# of "?a=1&para=2" into a pilcrow
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")


def unescape_entities(text: str) -> str:
    """Resolve HTML character references left in text that arrives already
    extracted (CCNet-style JSONL, Parquet dumps, WET); unknown names stay."""
    if "&" not in text:
        return text
    import html

    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)


def clean_surrogates(text: str) -> str:
    """Lone surrogates (from JSON escapes such as "\\ud800") cannot be written as
    UTF-8; replace them with U+FFFD so later rules see them as broken text."""
    return replace_surrogates(text)[0]


def replace_surrogates(text: str) -> tuple[str, int]:
    """``clean_surrogates`` with the number of code points replaced: a lone
    surrogate is an ill-formed code unit, replaced as an invalid UTF-8 byte is
    (Unicode 15, 3.9 "U+FFFD Substitution")."""
    return _SURROGATE.subn("\ufffd", text) if _SURROGATE.search(text) else (text, 0)


# Unicode's stream-safe text format (UAX #15) bounds a run of non-starters at 30;
# normalisation reorders a run by insertion sort, quadratic in its length, so an
# unbounded run ("Zalgo" text, a 600 KB run of combining marks) would cost minutes
STREAM_SAFE_MAX_MARKS = 30
_MARK_RUN = regex.compile(r"\p{M}{%d,}" % (STREAM_SAFE_MAX_MARKS + 1))


def stream_safe(text: str) -> str:
    """Cut every run of combining marks to 30 (the marks past it carry no text)."""
    if not _MARK_RUN.search(text):
        return text
    return _MARK_RUN.sub(lambda m: m.group(0)[:STREAM_SAFE_MAX_MARKS], text)


def remove_replacement_chars(text: str) -> tuple[str, int]:
    """U+FFFD marks a character lost before mdfs saw the page (an emoji the
    source could not store, a byte its encoder dropped): isolated damage that
    carries no text.  Removed here and counted; a page that is mostly damage is
    still caught by the garbled-text rule on what remains (mojibake, private-use
    and unassigned code points)."""
    n = text.count("\ufffd")
    return (text.replace("\ufffd", ""), n) if n else (text, 0)


def normalise(text: str, fix_mojibake: bool = True) -> str:
    text = stream_safe(clean_surrogates(text))
    if fix_mojibake and _MOJIBAKE.search(text):
        import ftfy

        text = ftfy.fix_text(text, normalization="NFC", fix_character_width=False, uncurl_quotes=False,
                             fix_latin_ligatures=False)
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n"))
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if _FULLWIDTH_ANY.search(text):
        text = text.translate(_FULLWIDTH_ALNUM)
    text = _SPACES.sub(" ", text)
    if " \n" in text or "\n " in text or text[:1] == " " or text[-1:] == " ":
        text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


class ChineseScript:
    """Traditional/Simplified detection and conversion with OpenCC."""

    def __init__(self):
        import opencc

        self._t2s = opencc.OpenCC("t2s")

    def to_simplified(self, text: str) -> str:
        return self._t2s.convert(text)

    def traditional_share(self, text: str, simplified: str | None = None) -> float:
        """Share of Han characters that t2s changes: ~0 for Simplified text,
        typically 0.15-0.35 for Traditional text."""
        simplified = self.to_simplified(text) if simplified is None else simplified
        han = changed = 0
        for a, b in zip(text, simplified):
            if "\u4e00" <= a <= "\u9fff":
                han += 1
                changed += a != b
        return changed / han if han else 0.0
