"""Fine filtering: the classifier stage (Yuan 1.0's BERT high/low/ad filter),
behind a fastText cascade.

* fastText scores every document (cheap, on CPU).  Where it is sure - the
  probability of a drop label at or above ``cascade.sure_drop``, or all drop
  labels together at or below ``1 - cascade.sure_keep`` - its decision stands.
* The rest go to BERT through Beam ``RunInference`` with our model handler.
  That transform alone carries the accelerator resource hint, so on Dataflow
  only this step runs on GPU machines.
* Every class probability of every model that scored a document goes into
  the ``scores`` column (``fasttext.<label>``, ``bert.<label>``), so users can
  re-threshold without rerunning.  A document is dropped when the probability
  of a drop label reaches its threshold; the reason is the label's name in
  ``drop_labels`` (``low_quality``, ``advertisement``).
With only one model configured, that model decides alone; with none, the
stage is not built and the run says so.

``mdfs refilter`` builds the stage with ``stored=True``: a document that
carries the scores the cascade needs (from the candidate store) is decided
from them with the new thresholds; only the others are scored, and they are
counted (``rescored`` in funnel.json).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import apache_beam as beam

from ..records import DROPPED, FAILED, Document, Dropped, ScoredCandidate
from ..stage import BY_NAME, REUSE, BuildContext, Stage, StageContext, StageResult, apply_stage

if TYPE_CHECKING:
    from ..schema import Cascade, Fine

STAGE = "fine"
TO_BERT = "to_bert"
NEED_SCORES, NEED_BERT = "need_scores", "need_bert"  # stored-score mode: what is still to be scored


def routes_to_bert(probs: dict[str, float], drop_labels, cascade: Cascade) -> bool:
    """Whether the fastText cascade leaves a document to BERT: neither a sure
    drop (a drop label at ``sure_drop``) nor a sure keep (drop labels together
    at ``1 - sure_keep`` or less)."""
    drop_mass = sum(probs.get(l, 0.0) for l in drop_labels)
    top_drop = max((probs.get(l, 0.0) for l in drop_labels), default=0.0)
    return not (top_drop >= cascade.sure_drop or drop_mass <= 1.0 - cascade.sure_keep)


def decide(probs: dict[str, float], drop_labels: dict[str, str], thresholds: dict[str, float]):
    """None (keep) or (reason, detail): the drop label with the highest
    probability among those at or above their threshold."""
    best = None
    for label, reason in drop_labels.items():
        p = probs.get(label, 0.0)
        if p >= thresholds[label] and (best is None or p > best[1]):
            best = (reason, p, label)
    return None if best is None else (best[0], f"{best[2]}={best[1]:.3f}")


def is_configured(cfg: Fine) -> bool:
    return bool(cfg.bert_model or cfg.fasttext_model)


UNSCORED = "unscored"


def fine_languages(cfg: Fine) -> list[str]:
    """The languages the classifiers judge ([] = every language): ``fine.languages``,
    else the training languages recorded with the models (those every configured
    model was trained on).  Raises ValueError when neither says."""
    from mdfs.classifiers.metadata import recorded_languages

    if cfg.languages is not None:
        return list(cfg.languages)
    found = []
    for kind, key, path in (("fasttext", "fasttext_model", cfg.fasttext_model), ("bert", "bert_model", cfg.bert_model)):
        if path:
            if not Path(path).exists():  # the cause first: nothing there to record languages
                raise ValueError(f"fine.{key}: not found: {path}")
            langs = recorded_languages(path, kind)
            if langs is None:
                raise ValueError(f"fine.languages: the model at {path} records no training languages (it was not "
                                 "trained by `mdfs train-classifier`); set fine.languages, e.g. [zh], or [] for every "
                                 "language")
            found.append(set(langs))
    return sorted(set.intersection(*found)) if found else []


class LanguageScopeDoFn(beam.DoFn):
    """Documents in the classifiers' languages go on to them; the rest pass the
    stage unscored (a Chinese advertisement model cannot judge an English essay).
    A document without a language label (coarse stage off) gets one from the
    bundled language-ID model."""

    def __init__(self, languages: list[str], lid_model: str):
        self.languages = frozenset(languages)
        self.lid_model = lid_model

    def setup(self):
        from mdfs.classifiers.langid import FastTextLangID

        self._lid = FastTextLangID(self.lid_model, 1000) if self.languages else None

    def process(self, doc: Document):
        if self._lid is None:
            yield doc
            return
        lang = doc.language or self._lid.predict(doc.text)[0]
        if lang in self.languages:
            yield doc
        else:
            yield beam.pvalue.TaggedOutput(UNSCORED, doc.replace(extra={**doc.extra, "passed_unscored": STAGE}))


class FastTextCascadeDoFn(beam.DoFn):
    def __init__(self, cfg: Fine, has_bert: bool, ctx: StageContext):
        self.cfg = cfg
        self.has_bert = has_bert
        self.ctx = ctx

    def setup(self):
        from mdfs.classifiers.fasttext_model import FastTextClassifier

        # checked against its recorded checksum here too; an unrecorded model's full-load check ran at preflight
        self._clf = FastTextClassifier(self.cfg.fasttext_model, verify_unrecorded=False)
        missing = set(self.cfg.drop_labels) - set(self._clf.labels)
        if missing:
            raise ValueError(f"fine.drop_labels {sorted(missing)} are not labels of the fastText model "
                             f"({self._clf.labels})")
        self._routed = beam.metrics.Metrics.counter("mdfs.fine", "to_bert")

    def process(self, doc: Document):
        try:
            probs = self._clf.predict_proba([doc.text])[0]
        except Exception as exc:  # noqa: BLE001
            yield self.ctx.fail(doc, "classifier_error", f"fastText: {type(exc).__name__}: {exc}")
            return
        scores = dict(doc.scores or {})
        scores.update({f"fasttext.{k}": round(v, 6) for k, v in probs.items()})
        doc = doc.replace(scores=scores)
        if self.has_bert and routes_to_bert(probs, self.cfg.drop_labels, self.cfg.cascade):
            self._routed.inc()
            yield beam.pvalue.TaggedOutput(TO_BERT, doc)
            return
        verdict = decide(probs, self.cfg.drop_labels, self.cfg.thresholds)
        if verdict:
            yield self.ctx.drop(doc, verdict[0], f"fasttext {verdict[1]}")
        else:
            yield doc


def _prefixed(scores: dict | None, prefix: str) -> dict[str, float]:
    return {k[len(prefix):]: v for k, v in (scores or {}).items() if k.startswith(prefix)}


class StoredScoresDoFn(beam.DoFn):
    """Refilter: decide from stored scores where they answer the cascade;
    send the rest to be scored (all models, or BERT only)."""

    def __init__(self, cfg: Fine, ctx: StageContext):
        self.cfg = cfg
        self.ctx = ctx

    def process(self, doc: Document):
        has_ft, has_bert = bool(self.cfg.fasttext_model), bool(self.cfg.bert_model)
        ft, bert = _prefixed(doc.scores, "fasttext."), _prefixed(doc.scores, "bert.")
        model, probs = None, None
        if has_ft:
            if not ft:
                yield beam.pvalue.TaggedOutput(NEED_SCORES, doc)
                return
            model, probs = "fasttext", ft
            if has_bert and routes_to_bert(ft, self.cfg.drop_labels, self.cfg.cascade):
                if not bert:
                    yield beam.pvalue.TaggedOutput(NEED_BERT, doc)
                    return
                model, probs = "bert", bert
        elif bert:
            model, probs = "bert", bert
        else:
            yield beam.pvalue.TaggedOutput(NEED_SCORES, doc)
            return
        verdict = decide(probs, self.cfg.drop_labels, self.cfg.thresholds)
        if verdict:
            yield self.ctx.drop(doc, verdict[0], f"{model} {verdict[1]}")
        else:
            yield doc


class BertDecisionDoFn(beam.DoFn):
    def __init__(self, cfg: Fine, ctx: StageContext):
        self.cfg = cfg
        self.ctx = ctx

    def process(self, result):
        from mdfs.classifiers.handler import ScoringFailure

        doc, probs = result.example, result.inference
        if isinstance(probs, ScoringFailure):
            yield self.ctx.fail(doc, "classifier_error", f"BERT: {probs.message}")
            return
        scores = dict(doc.scores or {})
        scores.update({f"bert.{k}": round(v, 6) for k, v in probs.items()})
        doc = doc.replace(scores=scores)
        verdict = decide(probs, self.cfg.drop_labels, self.cfg.thresholds)
        if verdict:
            yield self.ctx.drop(doc, verdict[0], f"bert {verdict[1]}")
        else:
            yield doc


class FineFilter(beam.PTransform):
    def __init__(self, cfg: Fine, excerpt_chars: int = 200, lid_model: str | None = None, stored: bool = False,
                 candidates: dict | None = None):
        """``stored``: a refilter (stored scores where there are some; the
        documents scored now are the declared output ``rescored``);
        ``candidates``: where the scores go for a later refilter (``build.candidate_sink``)."""
        super().__init__()
        self.stored = stored
        self.candidates = candidates
        if not is_configured(cfg):
            raise ValueError("fine filter needs fine.bert_model and/or fine.fasttext_model")
        self.cfg = cfg
        self.ctx = StageContext(STAGE, excerpt_chars)
        self.languages = fine_languages(cfg)  # on the launcher: refused before the job, not on a worker
        if self.languages and not lid_model:
            from mdfs.classifiers.langid import DEFAULT_LID_MODEL

            lid_model = str(DEFAULT_LID_MODEL)
        self.lid_model = lid_model
        if cfg.bert_model:  # fail at construction, on the launcher, not on a worker
            from mdfs.classifiers.bert import check_model_dir

            check_model_dir(cfg.bert_model, cfg.allow_pickle)

    def _bert(self, docs):
        from apache_beam.ml.inference.base import RunInference

        from mdfs.classifiers.handler import BertClassifierHandler

        b = self.cfg.bert
        handler = BertClassifierHandler(self.cfg.bert_model, device=b.device, dtype=b.dtype,
                                        max_length=b.max_length, batch_size=b.batch_size,
                                        aggregate=b.aggregate, max_segments=b.max_segments,
                                        allow_pickle=self.cfg.allow_pickle,
                                        max_batch_size=b.docs_per_batch, accelerator=b.accelerator)
        scored = docs | "BERT" >> RunInference(handler)
        return apply_stage(scored, "BertDecide", BertDecisionDoFn(self.cfg, self.ctx))

    def expand(self, docs):
        result = self._decide(docs)
        if self.candidates:
            write_scores(result, self.candidates)
        return result

    def _decide(self, docs):
        scope = docs | "Scope" >> beam.ParDo(LanguageScopeDoFn(self.languages, self.lid_model)).with_outputs(
            UNSCORED, main="in_scope")
        if not self.stored:
            judged = self._judge(scope.in_scope)
            return StageResult((judged.kept, scope[UNSCORED]) | "KeptAndUnscored" >> beam.Flatten(),
                               judged.dropped, judged.failed)
        st = apply_stage(scope.in_scope, "StoredScores", StoredScoresDoFn(self.cfg, self.ctx), NEED_SCORES,
                         NEED_BERT)
        judged = self._judge(st[NEED_SCORES], st[NEED_BERT])
        return StageResult((judged.kept, st.kept, scope[UNSCORED]) | "KeptAndUnscored" >> beam.Flatten(),
                           (judged.dropped, st[DROPPED]) | "DroppedAll" >> beam.Flatten(),
                           (judged.failed, st[FAILED]) | "FailedAll" >> beam.Flatten(),
                           {RESCORED: [st[NEED_SCORES], st[NEED_BERT]]})

    def _judge(self, docs, bert_only=None) -> StageResult:
        """The cascade over ``docs``; ``bert_only``: documents whose fastText
        scores are known and leave them to BERT (refilter)."""
        has_bert, has_ft = bool(self.cfg.bert_model), bool(self.cfg.fasttext_model)
        if not has_ft:
            return self._bert(docs)
        ft = apply_stage(docs, "FastText", FastTextCascadeDoFn(self.cfg, has_bert, self.ctx), TO_BERT)
        if not has_bert:
            return StageResult(ft.kept, ft[DROPPED], ft[FAILED])
        to_bert = ft[TO_BERT] if bert_only is None else (ft[TO_BERT], bert_only) | "ToBert" >> beam.Flatten()
        b_kept, b_dropped, b_failed, _ = self._bert(to_bert)
        return StageResult((ft.kept, b_kept) | "Kept" >> beam.Flatten(),
                           (ft[DROPPED], b_dropped) | "Dropped" >> beam.Flatten(),
                           (ft[FAILED], b_failed) | "Failed" >> beam.Flatten())


RESCORED = "rescored"  # FineFilter's declared output in a refilter: documents without stored scores
SCORE_PREFIXES = ("fasttext.", "bert.")


def _scored(d) -> ScoredCandidate | None:
    """The classifier scores a fine-stage document or dropped row carries."""
    if isinstance(d, Dropped):
        scores = {r["name"]: r["value"] for r in (d.signals or []) if r["name"].startswith(SCORE_PREFIXES)}
    else:
        scores = {k: v for k, v in (d.scores or {}).items() if k.startswith(SCORE_PREFIXES)}
    return ScoredCandidate(d.key, d.id, d.source, scores) if scores else None


def write_scores(result: StageResult, where: dict) -> None:
    """candidates/scores/: the scores of every candidate the fine stage scored
    (kept or dropped by it), for refilter to decide from."""
    from ..io.sinks import WriteRecords

    for label, pcoll in (("Kept", result.kept), ("Dropped", result.dropped)):
        (pcoll | f"Scored{label}" >> beam.FlatMap(lambda d: [s] if (s := _scored(d)) else [])
         | f"WriteScores{label}" >> WriteRecords("candidate_scores", where["output_dir"], where["compression"],
                                                 name=f"part-{label.lower()}", folder="candidates/scores"))


def decided_by(scores: dict | None) -> str:
    """The model that decided a kept document in the fine stage's cascade."""
    keys = scores or {}
    return "bert" if any(k.startswith("bert.") for k in keys) else "fasttext"


class FineStage(Stage):
    """The fastText -> BERT cascade (high quality / low quality / advertisement)."""

    name = section = "fine"
    refilter = REUSE  # stored scores decide; documents without any are scored now ("rescored")
    outputs = ("candidates",)  # candidates/scores, with output.candidates
    funnel_fields = {"passed_unscored": BY_NAME, "rescored": BY_NAME, "fine_decided_by": BY_NAME}
    output_events = {RESCORED: lambda d: [((d.source, "rescored", "fine"), 1)]}

    def why_off(self, cfg):
        return None if is_configured(cfg.fine) else \
            "no classifier configured (set fine.fasttext_model or fine.bert_model)"

    def check(self, cfg) -> list:
        if not is_configured(cfg.fine):
            return []
        problems = []
        try:  # the effective scope is what config.yaml records
            cfg.fine.languages = fine_languages(cfg.fine)
        except ValueError as exc:
            problems.append(str(exc))
        try:  # each configured model loaded once: one line per model that does not load
            labels = model_labels(cfg)
        except ValueError as exc:
            return [*problems, str(exc)]
        for model, names in labels.items():
            missing = sorted(set(cfg.fine.drop_labels) - set(names))
            if missing:
                problems.append(f"fine.drop_labels {missing} are not labels of the {model} model "
                                f"(it has {names}); set fine.drop_labels (and fine.thresholds) to its labels")
        return problems

    def transform(self, build: BuildContext) -> beam.PTransform:
        cfg = build.cfg
        return FineFilter(cfg.fine, build.excerpt_chars, cfg.coarse.langid.model,
                          stored=build.refilter is not None, candidates=build.candidates)

    def kept_events(self, doc):
        if doc.extra.get("passed_unscored") == "fine":  # outside the classifiers' languages
            return [((doc.source, "passed_unscored", "fine"), 1)]
        # the cascade: which model's verdict kept it (BERT's when it scored it)
        return [((doc.source, "fine_decided_by", decided_by(doc.scores)), 1)]

    def dropped_events(self, row):
        # the model whose verdict dropped it is the detail's first word
        return [((row.source, "fine_decided_by", (row.detail or "?").split(" ")[0]), 1)]


def model_labels(cfg) -> dict[str, list[str]]:
    """Labels of each configured classifier, loading each model once (on the launcher)."""
    from mdfs.classifiers.bert import ModelError, check_model_dir, verify_weights
    from mdfs.classifiers.integrity import say_unverified

    fine, labels = cfg.fine, {}
    if fine.fasttext_model:
        from mdfs.classifiers.fasttext_model import FastTextClassifier

        try:
            clf = FastTextClassifier(fine.fasttext_model)
        except Exception as exc:  # noqa: BLE001 - missing file, not a fastText model, damaged
            raise ValueError(f"fine.fasttext_model: cannot load {fine.fasttext_model}: {exc}") from None
        labels["fastText"] = list(clf.labels)
        if not clf.verified:
            say_unverified("fine.fasttext_model", fine.fasttext_model)
    if fine.bert_model:
        try:
            path = check_model_dir(fine.bert_model, fine.allow_pickle)
            if not verify_weights(path):
                say_unverified("fine.bert_model", path)
            from transformers import AutoConfig  # after check_model_dir: it refuses when the [bert] extra is missing

            conf = AutoConfig.from_pretrained(str(path), local_files_only=True)
        except (ModelError, OSError, ValueError) as exc:
            raise ValueError(f"fine.bert_model: {exc}") from None
        labels["BERT"] = [conf.id2label[i] for i in range(conf.num_labels)]
    return labels
