"""Per-source corpus statistics, computed in the pipeline as Beam combiners
(never by re-reading the corpus on one machine) and written to
``OUTPUT/stats/pipeline_stats.json``:

* documents, bytes (UTF-8 of the text; payload bytes at ``read``), characters
  and tokens per source after every stage;
* for kept documents: token-length quantiles and a log2 histogram, the
  language mix, and histograms of every classifier score.
"""
from __future__ import annotations

import math

import apache_beam as beam

from apache_beam.transforms.stats import ApproximateQuantilesCombineFn

from .io.sinks import WriteJson
from .stage import BundleTotals
from .tokens import TokenCounter


class SumTuples(beam.CombineFn):
    """Element-wise sum of fixed-length tuples of numbers."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, x):
        return tuple(x) if acc is None else tuple(a + b for a, b in zip(acc, x))

    def merge_accumulators(self, accs):
        acc = None
        for a in accs:
            if a is not None:
                acc = self.add_input(acc, a)
        return acc

    def extract_output(self, acc):
        return acc


QUANTILES = 11  # token-length quantiles of the kept documents: min, deciles, max


def _text_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


class CountTokensDoFn(beam.DoFn):
    """Sets ``token_count`` on the documents a stage that may change the text
    passes on; a count already set is of the same text (``Document.replace``
    forgets it when the text changes): kept, not counted again."""

    def __init__(self, tokenizer: str | None):
        self.tokenizer = tokenizer

    def setup(self):
        self._counter = TokenCounter(self.tokenizer)

    def process(self, doc):
        yield doc if doc.token_count is not None else doc.replace(token_count=self._counter.count(doc.text))


class StageStatsDoFn(BundleTotals):
    """doc -> ((source, stage), (docs, bytes, chars, tokens)), summed per
    bundle; tokens from the column when set, else counted here."""

    def __init__(self, stage: str, tokenizer: str | None):
        super().__init__()
        self.stage = stage
        self.tokenizer = tokenizer

    def setup(self):
        self._counter = TokenCounter(self.tokenizer)

    def pairs_of(self, doc):
        tokens = doc.token_count if doc.token_count is not None else self._counter.count(doc.text)
        return [((doc.source, self.stage), (1, _text_bytes(doc.text), len(doc.text), tokens))]


def raw_stats(rec):
    n = len(rec.payload) if rec.payload is not None else _text_bytes(rec.text or "")
    return (rec.source, "read"), (1, n, 0, 0)


def kept_details(doc):
    """Small keyed counts for the kept documents."""
    tokens = doc.token_count or 0
    yield ("length_log2", doc.source, int(math.log2(tokens)) if tokens > 0 else -1), 1
    yield ("language", doc.source, doc.language or "und"), 1
    for key, p in (doc.scores or {}).items():
        yield ("score", doc.source, key, min(19, int(float(p) * 20))), 1


def assemble(items: list) -> dict:
    out = {"stages": {}, "length_quantiles": {}, "length_log2_histogram": {}, "languages": {}, "scores": {}}
    for kind, key, value in items:
        if kind == "stage":
            (source, stage) = key
            docs, nbytes, chars, tokens = value
            out["stages"].setdefault(source, {})[stage] = {"documents": docs, "bytes": nbytes, "chars": chars,
                                                           "tokens": tokens}
        elif kind == "quantiles":
            out["length_quantiles"][key] = value
        elif kind == "detail":
            name, source, *rest = key
            if name == "length_log2":
                out["length_log2_histogram"].setdefault(source, {})[str(rest[0])] = value
            elif name == "language":
                out["languages"].setdefault(source, {})[rest[0]] = value
            elif name == "score":
                hist = out["scores"].setdefault(source, {}).setdefault(rest[0], [0] * 20)
                hist[rest[1]] += value
    return out


class WriteStats(beam.PTransform):
    """{"front": [totals PCollections], "stages": {stage name: documents}, "kept": documents (optional)}
    -> stats JSON; with ``raw``, the summed items themselves (``{"items": [...]}``, kept
    token lengths counted per value instead of their quantiles), which ``assemble_totals``
    turns into the same statistics after summing several jobs'."""

    def __init__(self, path: str, tokenizer: str | None, raw: bool = False):
        super().__init__()
        self.path = path
        self.tokenizer = tokenizer
        self.raw = raw

    def expand(self, inputs):
        stage_docs, kept = inputs["stages"], inputs.get("kept")
        # "front": ((source, stage), totals) of the streams before the document stages, summed per
        # bundle where they are produced ("read" counts every record a source offered, as the funnel
        # does; its bytes are payload bytes): only totals are flattened
        parts = [inputs["front"]]
        for stage, docs in [*stage_docs.items(), *([("kept", kept)] if kept is not None else [])]:
            parts.append(docs | f"Totals[{stage}]" >> beam.ParDo(StageStatsDoFn(stage, self.tokenizer)))
        items = [parts | "AllStageStats" >> beam.Flatten() | "SumStage" >> beam.CombinePerKey(SumTuples())
                 | "TagStage" >> beam.MapTuple(lambda k, v: ("stage", k, v))]
        if kept is not None:
            if self.raw:  # quantiles do not add up over jobs: the lengths do
                items.append(kept | "Lengths" >> beam.Map(lambda d: ((d.source, d.token_count or 0), 1))
                             | "SumLengths" >> beam.CombinePerKey(sum)
                             | "TagLengths" >> beam.MapTuple(lambda k, v: ("lengths", k, v)))
            else:
                items.append(kept | "Lengths" >> beam.Map(lambda d: (d.source, d.token_count or 0))
                             | "Quantiles" >> beam.ApproximateQuantiles.PerKey(QUANTILES)
                             | "TagQuantiles" >> beam.MapTuple(lambda k, v: ("quantiles", k, v)))
            items.append(kept | "Details" >> beam.FlatMap(kept_details) | "SumDetails" >> beam.CombinePerKey(sum)
                         | "TagDetails" >> beam.MapTuple(lambda k, v: ("detail", k, v)))
        path = self.path
        build = (lambda items: {"items": items}) if self.raw else assemble
        return (items | "AllStats" >> beam.Flatten()
                | "GatherStats" >> beam.combiners.ToList()  # sources x stages x bins: small
                | "WriteStatsJson" >> WriteJson(path, build))


def assemble_totals(items: list) -> dict:
    """Raw items of several jobs (``WriteStats(raw=True)``, read back from JSON) -> the
    statistics one job over all their documents writes: stage totals and details summed,
    the token-length quantiles computed from the summed lengths with the combiner that
    ``ApproximateQuantiles`` uses."""
    sums: dict = {}
    for kind, key, value in items:
        key = (kind, tuple(key) if isinstance(key, list) else key)
        if kind == "stage":
            old = sums.get(key)
            sums[key] = tuple(value) if old is None else tuple(a + b for a, b in zip(old, value))
        else:
            sums[key] = sums.get(key, 0) + value
    lengths: dict = {}
    out = []
    for (kind, key), value in sums.items():
        if kind == "lengths":
            lengths.setdefault(key[0], []).extend([key[1]] * value)
        else:
            out.append((kind, key, value))
    for source, values in lengths.items():
        fn = ApproximateQuantilesCombineFn.create(QUANTILES)
        acc = fn.create_accumulator()
        for v in sorted(values):
            acc = fn.add_input(acc, v)
        out.append(("quantiles", source, fn.extract_output(acc)))
    return assemble(out)
