"""Coarse filtering: the MDFS rule stage, after extraction and before dedup.

Per document, in order (the first rule that fires drops the document, with its
reason in the dropped dataset, the funnel and a Beam counter):

1. URL rules: block lists / allow lists of domains and host keywords.
2. Normalisation: mojibake repair, control characters, NFC, full-width
   letters and digits, whitespace (``textnorm.normalise``).
3. Language ID with fastText lid.176; per source, the languages to keep and
   the minimum score (``language``).  The language and score become columns.
4. Chinese script: Traditional text converted to Simplified, kept, or dropped
   (``traditional_chinese``), per ``coarse.traditional_chinese``.
5. Line cleaning: boilerplate lines from the language's pattern file, symbol
   lines, navigation fragments (``rules/lines.py``).
6. Document rules of the language: Chinese (``rules/zh.py``), English
   (``rules/en.py``: Gopher, C4, FineWeb), others (length only).

The kept document carries the cleaned text.
"""
from __future__ import annotations

import apache_beam as beam

from .records import Document
from .rules import en as en_rules
from .rules import zh as zh_rules
from .rules.common import TextView
from .rules.lines import LineCleaner
from .rules.url import UrlFilter
from .stage import StageContext, apply_stage
from .textnorm import ChineseScript, normalise, remove_replacement_chars

STAGE = "coarse"


class CoarseRules:
    """Everything the stage needs, built once per worker (in ``setup()``).
    ``apply`` is deterministic: same document in, same verdict out."""

    def __init__(self, cfg: dict, source_langs: dict[str, tuple[list, float]], on_lines_removed=None):
        from ..classifiers.langid import FastTextLangID

        self.on_lines_removed = on_lines_removed  # (language, {kind: lines}) -> None
        self.cfg = cfg
        self.source_langs = source_langs
        self.url = UrlFilter(cfg["url"]["blocklists"], cfg["url"]["allowlists"])
        lid = cfg["langid"]
        self.lid = FastTextLangID(lid["model"], int(lid["max_chars"]))
        self.fix_mojibake = bool(cfg["normalise"]["fix_mojibake"])
        self.trad_policy = cfg["traditional_chinese"]
        if self.trad_policy not in ("convert", "keep", "drop"):
            raise ValueError(f"coarse.traditional_chinese must be convert, keep or drop, not {self.trad_policy!r}")
        self.trad_min_share = float(cfg["traditional_min_share"])
        self.script = ChineseScript()
        lines_cfg = cfg["lines"]
        self.cleaners = {lang: LineCleaner.from_config(lines_cfg, lang) for lang in ("zh", "en", "other")}
        en_sensitive = None
        if cfg["en"]["sensitive_lexicons"]:
            en_sensitive = zh_rules.SensitiveWords(cfg["en"]["sensitive_lexicons"], 1, word_boundaries=True)
        self.rules = {"zh": zh_rules.build(cfg["zh"]), "en": en_rules.build(cfg["en"], en_sensitive),
                      "other": en_rules.build({"min_chars": cfg["other"]["min_chars"]})}

    def apply(self, doc: Document):
        """(Document, None) if kept, else (None, (reason, detail))."""
        hit = self.url.check(doc.url)
        if hit:
            return None, hit
        text, replaced = remove_replacement_chars(doc.text)
        text = normalise(text, self.fix_mojibake)
        lang, score = self.lid.predict(text)
        wanted, min_score = self.source_langs.get(doc.source, (None, 0.0))
        if (wanted and lang not in wanted) or score < min_score:
            return None, ("language", f"{lang}:{score:.2f}")
        if lang == "zh" and self.trad_policy != "keep":
            sample = text[:3000]
            simplified = self.script.to_simplified(sample)
            if self.script.traditional_share(sample, simplified) >= self.trad_min_share:
                if self.trad_policy == "drop":
                    return None, ("traditional_chinese", None)
                text = self.script.to_simplified(text)
        text, removed = self.cleaners.get(lang, self.cleaners["other"]).clean(text)
        if self.on_lines_removed is not None and removed:
            self.on_lines_removed(lang, removed)
        view = TextView(text)
        for rule in self.rules.get(lang, self.rules["other"]):
            verdict = rule(view)
            if verdict:
                return None, verdict
        extra = {**doc.extra, "replacement_chars_removed": replaced} if replaced else doc.extra
        return doc.replace(text=text, language=lang, language_score=round(score, 4), extra=extra), None


class CoarseFilterDoFn(beam.DoFn):
    def __init__(self, cfg: dict, source_langs: dict, ctx: StageContext = StageContext(STAGE)):
        self.cfg = cfg
        self.source_langs = source_langs
        self.ctx = ctx

    def setup(self):
        self._rules = CoarseRules(self.cfg, self.source_langs, self._count_lines)

    @staticmethod
    def _count_lines(lang: str, removed: dict) -> None:
        """Lines removed by line cleaning, per language and kind (one pattern
        file is one kind): Beam counters mdfs.lines_removed/<lang>.<kind>."""
        for kind, n in removed.items():
            beam.metrics.Metrics.counter("mdfs.lines_removed", f"{lang}.{kind}").inc(n)

    def process(self, doc: Document):
        try:
            kept, verdict = self._rules.apply(doc)
        except Exception as exc:  # noqa: BLE001 - a rule bug fails this record, not the job
            yield self.ctx.fail(doc, "rule_error", f"{type(exc).__name__}: {exc}")
            return
        if kept is not None:
            yield kept
        else:
            reason, detail = verdict
            yield self.ctx.drop(doc, reason, detail)


def source_languages(cfg: dict) -> dict[str, tuple[list, float]]:
    return {name: (list(src["languages"]), float(src["min_language_score"]))
            for name, src in cfg["sources"].items()}


class CoarseFilter(beam.PTransform):
    def __init__(self, cfg: dict, source_langs: dict, excerpt_chars: int = 200):
        super().__init__()
        self.cfg = cfg
        self.source_langs = source_langs
        self.ctx = StageContext(STAGE, excerpt_chars)

    def expand(self, docs):
        return apply_stage(docs, "Rules", CoarseFilterDoFn(self.cfg, self.source_langs, self.ctx))
