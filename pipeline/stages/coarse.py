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
   (``rules/en.py``: Gopher, C4, FineWeb), others (length only).  Every rule
   of the language is measured (the signals, ``docs/SIGNALS.md``), and the
   first one that fires drops the document.

The kept document carries the cleaned text and its signals.  A document that
reached step 6 is a *candidate*: with ``output.candidates`` it is written to
``candidates/documents/`` as the rules saw it, whatever happens to it later,
which is what ``mdfs refilter`` re-thresholds.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam

from ..records import Candidate, Document
from .rules import en as en_rules
from .rules import zh as zh_rules
from .rules.common import TextView
from .rules.lines import LineCleaner
from .rules.rule import measure_all
from .rules.url import UrlFilter
from ..records import DROPPED, FAILED
from .rules.rule import verdict_from_signals
from ..stage import REUSE, COUNT, BuildContext, Stage, StageContext, StageResult, apply_stage
from ..textnorm import ChineseScript, normalise, remove_replacement_chars

if TYPE_CHECKING:
    from ..schema import Coarse, MdfsConfig

STAGE = "coarse"
CANDIDATES = "candidates"  # the stage's extra output with output.candidates
# reasons this stage gives before the document rules: such documents are not candidates
PRE_RULE_REASONS = frozenset({"url_blocked", "language", "traditional_chinese"})
LID_TOP_K = 3  # language-ID signals per document: lid.<code> for the top 3 (p >= 0.01)


class CoarseRules:
    """Everything the stage needs, built once per worker (in ``setup()``).
    ``apply`` is deterministic: same document in, same verdict out."""

    def __init__(self, cfg: Coarse, source_langs: dict[str, tuple[list, float]], on_lines_removed=None):
        from mdfs.classifiers.langid import FastTextLangID

        self.on_lines_removed = on_lines_removed  # (language, {kind: lines}) -> None
        self.cfg = cfg
        self.source_langs = source_langs
        self.url = UrlFilter(cfg.url.blocklists, cfg.url.allowlists)
        self.lid = FastTextLangID(cfg.langid.model, cfg.langid.max_chars)
        self.fix_mojibake = cfg.normalise.fix_mojibake
        self.trad_policy = cfg.traditional_chinese  # convert, keep or drop (the schema's choices)
        self.trad_min_share = cfg.traditional_min_share
        self.script = ChineseScript()
        self.cleaners = {lang: LineCleaner.from_config(cfg.lines, lang) for lang in ("zh", "en", "other")}
        en_sensitive = None
        if cfg.en.sensitive_lexicons:
            en_sensitive = zh_rules.SensitiveWords(cfg.en.sensitive_lexicons, 1, word_boundaries=True)
        self.rules = rule_sets(cfg, en_sensitive)

    def apply(self, doc: Document):
        """(Document, None) if kept, else (None, (reason, detail))."""
        kept, _, verdict, _ = self.evaluate(doc)
        return kept, verdict

    def evaluate(self, doc: Document, keep_lines: bool = False):
        """(kept, dropped, verdict, candidate): ``kept`` the document with its cleaned
        text and signals, or None; else ``dropped`` (the input with the signals
        measured so far) and ``verdict`` (reason, detail).  ``candidate``: the
        document as the rules saw it when it reached them (else None); with
        ``keep_lines`` it lists the removed lines."""
        hit = self.url.check(doc.url)
        if hit:
            return None, doc, hit, None
        text, replaced = remove_replacement_chars(doc.text)
        text = normalise(text, self.fix_mojibake)
        top = self.lid.predict_top(text, LID_TOP_K)
        lang, score = top[0]
        signals = {f"lid.{code}": round(p, 4) for code, p in top if p >= 0.01}
        wanted, min_score = self.source_langs.get(doc.source, (None, 0.0))
        if (wanted and lang not in wanted) or score < min_score:
            return None, doc.replace(signals=signals), ("language", f"{lang}:{score:.2f}"), None
        if lang == "zh" and self.trad_policy != "keep":
            sample = text[:3000]
            simplified = self.script.to_simplified(sample)
            share = self.script.traditional_share(sample, simplified)
            signals["zh.traditional_share"] = round(share, 4)
            if share >= self.trad_min_share:
                if self.trad_policy == "drop":
                    return None, doc.replace(signals=signals), ("traditional_chinese", None), None
                text = self.script.to_simplified(text)
        removed_lines = [] if keep_lines else None
        text, removed = self.cleaners.get(lang, self.cleaners["other"]).clean(text, removed_lines)
        if self.on_lines_removed is not None and removed:
            self.on_lines_removed(lang, removed)
        values, verdict = measure_all(self.rules.get(lang, self.rules["other"]), TextView(text))
        signals.update(values)
        candidate = Candidate(key=doc.key, id=doc.id, source=doc.source, text=text, language=lang,
                              language_score=round(score, 4), signals=signals, removed_lines=removed_lines or [],
                              coarse_reason=verdict[0] if verdict else None,
                              coarse_detail=verdict[1] if verdict else None, replacement_chars_removed=replaced,
                              url=doc.url, date=doc.date, raw_byte_count=doc.raw_byte_count, file=doc.file,
                              offset=doc.offset)
        if verdict:
            return None, doc.replace(signals=signals, language=lang, language_score=round(score, 4)), verdict, \
                candidate
        extra = {**doc.extra, "replacement_chars_removed": replaced} if replaced else doc.extra
        return (doc.replace(text=text, language=lang, language_score=round(score, 4), extra=extra, signals=signals),
                None, None, candidate)


def rule_sets(cfg: Coarse, en_sensitive=None) -> dict:
    """The document rules per language ("zh", "en", "other") from ``coarse``."""
    if en_sensitive is None and cfg.en.sensitive_lexicons:
        en_sensitive = zh_rules.SensitiveWords(cfg.en.sensitive_lexicons, 1, word_boundaries=True)
    return {"zh": zh_rules.build(cfg.zh), "en": en_rules.build(cfg.en, en_sensitive),
            "other": en_rules.build(cfg.other, lang="other")}


class CoarseFilterDoFn(beam.DoFn):
    def __init__(self, cfg: Coarse, source_langs: dict, ctx: StageContext = StageContext(STAGE),
                 candidates: bool = False, tokenizer: str | None = None):
        self.cfg = cfg
        self.source_langs = source_langs
        self.ctx = ctx
        self.candidates = candidates
        self.tokenizer = tokenizer

    def setup(self):
        from ..tokens import TokenCounter

        self._rules = CoarseRules(self.cfg, self.source_langs, self._count_lines)
        self._tokens = TokenCounter(self.tokenizer) if self.candidates else None

    @staticmethod
    def _count_lines(lang: str, removed: dict) -> None:
        """Lines removed by line cleaning, per language and kind (one pattern
        file is one kind): Beam counters mdfs.lines_removed/<lang>.<kind>."""
        for kind, n in removed.items():
            beam.metrics.Metrics.counter("mdfs.lines_removed", f"{lang}.{kind}").inc(n)

    def process(self, doc: Document):
        try:
            kept, dropped, verdict, candidate = self._rules.evaluate(doc, keep_lines=self.candidates)
            if candidate is not None and self.candidates:
                candidate.token_count = self._tokens.count(candidate.text)
                if kept is not None:  # the same text: counted once (recounted only if a later stage changes it)
                    kept = kept.replace(token_count=candidate.token_count)
        except Exception as exc:  # noqa: BLE001 - a rule bug fails this record, not the job
            yield self.ctx.fail(doc, "rule_error", f"{type(exc).__name__}: {exc}")
            return
        if candidate is not None and self.candidates:
            yield beam.pvalue.TaggedOutput(CANDIDATES, candidate)
        if kept is not None:
            yield kept
        else:
            reason, detail = verdict
            yield self.ctx.drop(dropped, reason, detail)


def source_languages(cfg: MdfsConfig) -> dict[str, tuple[list, float]]:
    return {name: (list(src.languages), src.min_language_score) for name, src in cfg.sources.items()}


class CoarseFilter(beam.PTransform):
    """With ``candidates`` (an output directory), the candidates go to
    ``candidates/documents/`` there."""

    def __init__(self, cfg: Coarse, source_langs: dict, excerpt_chars: int = 200, candidates: dict | None = None,
                 tokenizer: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.source_langs = source_langs
        self.ctx = StageContext(STAGE, excerpt_chars)
        self.candidates = candidates  # {"output_dir": ..., "compression": ...} or None
        self.tokenizer = tokenizer

    def expand(self, docs):
        dofn = CoarseFilterDoFn(self.cfg, self.source_langs, self.ctx, bool(self.candidates), self.tokenizer)
        if not self.candidates:
            return apply_stage(docs, "Rules", dofn)
        out = apply_stage(docs, "Rules", dofn, CANDIDATES)
        write_candidates(out[CANDIDATES], self.candidates)
        return StageResult(out.kept, out[DROPPED], out[FAILED])


def write_candidates(candidates, where: dict):
    from ..io.sinks import WriteRecords

    return candidates | "WriteCandidates" >> WriteRecords("candidates", where["output_dir"], where["compression"],
                                                          name="part", folder="candidates/documents")


# --- a refilter: the rules over the signals an earlier run stored --------------------------

def candidate_document(row: dict, scores: dict | None, stored_tokens: bool = True) -> Document:
    """``stored_tokens``: the row's token count is of this text with this run's
    tokenizer (False when ``stats.tokenizer`` changed: counted again)."""
    extra = {"replacement_chars_removed": row["replacement_chars_removed"]} if row["replacement_chars_removed"] else {}
    return Document(key=row["key"], id=row["id"], source=row["source"], text=row["text"], url=row["url"],
                    date=row["date"], file=row["file"], offset=row["offset"], raw_byte_count=row["raw_byte_count"],
                    language=row["language"], language_score=round(row["language_score"], 4),
                    token_count=row["token_count"] if stored_tokens else None,
                    signals={s["name"]: s["value"] for s in row["signals"]}, scores=scores or None, extra=extra)


class RefilterRulesDoFn(beam.DoFn):
    """A candidate (row, stored scores) -> kept document, or dropped by the
    stricter language minimum or the first rule that fires on its stored signals."""

    def __init__(self, coarse_cfg: dict, source_langs: dict, ctx: StageContext, stored_tokens: bool = True):
        self.stored_tokens = stored_tokens
        self.coarse_cfg = coarse_cfg
        self.source_langs = source_langs
        self.ctx = ctx

    def setup(self):
        self._rules = rule_sets(self.coarse_cfg)

    def process(self, element):
        row, scores = element
        try:
            doc = candidate_document(row, scores, self.stored_tokens)
            below = below_language_minimum(row, self.source_langs)
            verdict = None if below else verdict_from_signals(self._rules.get(doc.language, self._rules["other"]),
                                                                doc.signals)
        except Exception as exc:  # noqa: BLE001 - a damaged candidate row fails, not the job
            yield self.ctx.fail(_Stub(row), "rule_error", f"{type(exc).__name__}: {exc}")
        else:
            if below:  # did not reach the rules: not a candidate of the new run
                yield self.ctx.drop(doc, "language", f"{doc.language}:{row['language_score']:.2f}")
            elif verdict:
                yield self.ctx.drop(doc, *verdict)
            else:
                yield doc


def below_language_minimum(row: dict, source_langs: dict) -> bool:
    """Under the source's (stricter) ``min_language_score``: dropped before the rules."""
    _, min_score = source_langs.get(row["source"], (None, 0.0))
    return row["language_score"] < min_score


class _Stub:
    """What a dead letter needs from a candidate row that could not be read as one."""

    def __init__(self, row: dict):
        self.source, self.key, self.id = row.get("source") or "?", row.get("key"), row.get("id")
        self.file, self.offset, self.url = row.get("file"), row.get("offset"), row.get("url")


class RefilterRules(beam.PTransform):
    """The coarse stage of a refilter (``Stage.refilter`` REUSE): (candidate row,
    stored scores) -> StageResult, decided from the row's stored signals."""

    def __init__(self, cfg: dict, stored_tokens: bool = True):
        super().__init__()
        self.stored_tokens = stored_tokens
        self.cfg = cfg
        self.ctx = StageContext("coarse", cfg.output.excerpt_chars)

    def expand(self, rows):
        return apply_stage(rows, "StoredSignals", RefilterRulesDoFn(
            self.cfg.coarse, source_languages(self.cfg), self.ctx, self.stored_tokens))


class CoarseStage(Stage):
    """The rules, Chinese first; a refilter decides from the stored signals."""

    name = section = "coarse"
    changes_text = True  # line cleaning, normalisation
    refilter = REUSE
    outputs = ("candidates",)  # output.candidates: what the rules saw, for a later refilter
    funnel_fields = {"replacement_chars_removed": COUNT}

    def why_off(self, cfg):
        return None if cfg.coarse.enabled else "disabled (coarse.enabled: false)"

    def transform(self, build: BuildContext) -> beam.PTransform:
        cfg = build.cfg
        if build.refilter is not None:
            return RefilterRules(cfg, build.refilter.stored_tokens)
        return CoarseFilter(cfg.coarse, source_languages(cfg), build.excerpt_chars, build.candidates,
                            cfg.stats.tokenizer)

    def kept_events(self, doc):
        return [((doc.source, "replacement_chars_removed"), 1)] if doc.extra.get("replacement_chars_removed") else []

    def carries(self, kind, row):
        # failures, and drops that happened before any rule (URL lists, language, script), are not re-decided
        return kind == "failed" or row["reason"] in PRE_RULE_REASONS
