"""The coarse rule stage's configuration section (re-exported by ``schema.py``):
each threshold's default with the paper it comes from."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .schema_base import NonNeg, NonNegInt, Positive, PositiveInt, Share, Strict, section


class LangId(Strict):
    model: str = Field("{models}/lid.176.ftz", description="fastText lid.176 (CC BY-SA 3.0), bundled")
    max_chars: PositiveInt = Field(
        1000, description="characters read per document (language is settled long before)")


class Normalise(Strict):
    fix_mojibake: bool = Field(True, description="ftfy, only where a cheap pattern finds mojibake")


class UrlLists(Strict):
    blocklists: list[str] = Field(default_factory=lambda: ["{resources}/url_blocklist_seed.txt"],
                                  description="domains and kw:host-keywords")
    allowlists: list[str] = Field(default_factory=list)


class Lines(Strict):
    boilerplate_patterns: dict[str, list[str]] = Field(default_factory=lambda: {
        "zh": ["{resources}/boilerplate_zh.txt"],
        "en": ["{resources}/boilerplate_en.txt"]},
        description="per language; the English list includes C4's javascript/policy lines")
    max_boilerplate_line_chars: PositiveInt = Field(
        200, description="longer lines are never removed as boilerplate")
    min_content_share: Share = Field(
        0.5, description="lines with fewer letters/digits/Han than this are symbol lines")
    remove_navigation: bool = Field(True, description="\"首页 | 新闻 | 体育\"-style fragments")
    c4_terminal_punct: bool = Field(
        False, description="C4 keeps only lines ending in punctuation; FineWeb found it too strict")
    c4_min_words_per_line: NonNegInt = Field(
        0, description="with c4_terminal_punct: C4 also drops lines of fewer words (C4: 3)")


class ZhRules(Strict):
    min_chars: NonNegInt = Field(200, description="ChineseWebText (arXiv 2311.01149)")
    min_mean_line_chars: Optional[NonNeg] = Field(10, description="ChineseWebText")
    min_han_share: Optional[Share] = Field(0.3, description="ChineseWebText: Han characters / all characters")
    max_garbled_share: Optional[Share] = Field(
        0.01, description="mdfs default (Yuan 1.0 removes \"messy code\", no figure given)")
    max_symbol_share: Optional[Share] = Field(
        0.1, description="mdfs default: Unicode symbols / visible characters")
    max_punct_share: Share = Field(0.3, description="mdfs default: punctuation / visible characters")
    min_sentence_ends: Optional[NonNegInt] = Field(2, description=(
        "C4 asks for 3 sentences; for Chinese mdfs asks for 2 (counted with 。！？): every list, navigation "
        "and spam page this rule drops in docs/COARSE_FILTERING.md has 0 sentence ends, and 3 drops real "
        "two-sentence news briefs"))
    sensitive_lexicons: list[str] = Field(default_factory=lambda: ["{resources}/ldnoobw_zh.txt"])
    sensitive_min_term_chars: PositiveInt = Field(
        2, description="single characters match inside ordinary words")
    max_sensitive_per_line: NonNeg = Field(0.5, description="ChineseWebText")
    repetition_ngram: Optional[Annotated[int, Field(ge=2)]] = Field(
        13, description="ChineseWebText: character 13-grams")
    max_repetition_share: Share = Field(0.5, description="ChineseWebText")


class GopherQuality(Strict):
    """Gopher (arXiv 2112.11446, app. A.1.1)"""

    enabled: bool = True
    min_words: NonNegInt = 50
    max_words: PositiveInt = 100000
    min_mean_word_length: NonNeg = 3
    max_mean_word_length: Positive = 10
    max_symbol_word_ratio: Share = 0.1
    max_bullet_lines_ratio: Share = 0.9
    max_ellipsis_lines_ratio: Share = 0.3
    min_alpha_words_ratio: Share = 0.8
    min_stop_words: NonNegInt = 2


NgramFractions = dict[Annotated[int, Field(ge=1)], Share]


class GopherRepetition(Strict):
    """Gopher (arXiv 2112.11446, app. A.1.1)"""

    enabled: bool = True
    dup_line_frac: Share = 0.3
    dup_para_frac: Share = 0.3
    dup_line_char_frac: Share = 0.2
    dup_para_char_frac: Share = 0.2
    top_ngram_char_frac: NgramFractions = Field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    dup_ngram_char_frac: NgramFractions = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})


class C4(Strict):
    """C4 (arXiv 1910.10683)"""

    enabled: bool = True
    lorem_ipsum: bool = True
    curly_bracket: bool = True
    min_sentences: NonNegInt = 3


class FineWeb(Strict):
    """FineWeb (arXiv 2406.17557, sec. 3.4)"""

    enabled: bool = True
    line_punct_thr: Share = Field(0.12, description="lines ending in punctuation <= 0.12: drop")
    short_line_length: PositiveInt = 30
    short_line_thr: Share = Field(0.67, description="lines of <= 30 chars >= 0.67: drop")
    char_duplicates_ratio: Share = Field(0.1, description=(
        "chars in duplicated lines >= 0.1: drop (the paper's figure; datatrove's class default is 0.01)"))
    new_line_ratio: NonNeg = Field(0.3, description="newlines per word (datatrove FineWebQualityFilter)")


class EnRules(Strict):
    min_chars: NonNegInt = Field(0, description="Gopher's word count decides")
    gopher_quality: GopherQuality = section(GopherQuality)
    gopher_repetition: GopherRepetition = section(GopherRepetition)
    c4: C4 = section(C4)
    fineweb: FineWeb = section(FineWeb)
    sensitive_lexicons: list[str] = Field(default_factory=list, description=(
        "Off by default: C4's bad-words page filter removes disproportionately much text by and about "
        "minority groups (Dodge et al., arXiv 2104.08758).  To turn it on as a density rule: "
        "[\"{resources}/ldnoobw_en.txt\"]."))
    max_sensitive_per_line: NonNeg = 0.5


class OtherRules(Strict):
    """languages without their own rule set"""

    min_chars: NonNegInt = 200


class Coarse(Strict):
    """The MDFS rule stage (pipeline/stages/coarse.py).  "{resources}" is
    pipeline/resources/, "{models}" is classifiers/models/."""

    enabled: bool = True
    langid: LangId = section(LangId)
    normalise: Normalise = section(Normalise)
    traditional_chinese: Literal["convert", "keep", "drop"] = Field("convert", description=(
        "Traditional Chinese: convert (to Simplified, as Yuan 1.0 did), keep, or drop (reason "
        "traditional_chinese; ChineseWebText drops it).  A document is Traditional when OpenCC t2s changes "
        "at least traditional_min_share of its Han characters."))
    traditional_min_share: Share = 0.1
    url: UrlLists = section(UrlLists)
    lines: Lines = section(Lines)
    zh: ZhRules = section(ZhRules)
    en: EnRules = section(EnRules)
    other: OtherRules = section(OtherRules)
