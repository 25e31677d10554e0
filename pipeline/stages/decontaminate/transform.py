"""The decontaminate stage in the Beam graph: each document looked up in the
index, dropped or redacted as its set says, and ``decontamination.json``
written from what was found."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import apache_beam as beam

from ...stage import BuildContext, BundleTotals, Stage, StageContext, StageResult
from .index import loaded_index, prepared_index
from .tokens import char_classes, normalise, normalise_aligned

if TYPE_CHECKING:
    from ...schema import Decontamination

STAGE = "decontaminate"
REASON = "contaminated"
FOUND = "found"  # output tag: per-document (key, count) pairs for decontamination.json


def is_configured(cfg: Decontamination) -> bool:
    return bool(cfg.sets)


def _has_content(text: str) -> bool:
    return any(c.isalnum() for c in text)


class DecontaminateDoFn(beam.DoFn):
    def __init__(self, index_path: str, ctx: StageContext = StageContext(STAGE)):
        self.index_path, self.ctx = index_path, ctx

    def setup(self):
        self.index = loaded_index(self.index_path)
        char_classes()

    def process(self, doc):
        try:
            yield from self._decide(doc)
        except Exception as exc:  # noqa: BLE001 - never pass a document whose check failed
            yield self.ctx.fail(doc, "decontamination_error", f"{type(exc).__name__}: {exc}")

    def _decide(self, doc):
        ix = self.index
        norm = normalise(doc.text)
        found, hits = ix.find(norm)
        if not found:
            yield doc
            return
        sets = ix.sets
        by_set: dict[int, list[int]] = {}
        for item in found:
            by_set.setdefault(int(ix.item_set[item]), []).append(item)
        events = []
        for si, items in by_set.items():
            name = sets[si]["name"]
            events.append(((name, doc.source, "documents"), 1))
            events += [((name, doc.source, "item", ix.item_ids[i]), 1) for i in items]
        drop_sets = [si for si in by_set if sets[si]["action"] == "drop"]
        if drop_sets:
            best = max((i for si in drop_sets for i in by_set[si]), key=lambda i: (found[i] / ix.total[i], -i))
            more = len(found) - 1
            detail = (f"{sets[ix.item_set[best]]['name']}:{ix.item_ids[best]} {found[best]}/{ix.total[best]} n-grams"
                      + (f" (+{more} more item{'s' if more > 1 else ''})" if more else ""))
            for si in drop_sets:
                events.append(((sets[si]["name"], doc.source, "dropped_documents"), 1))
            yield beam.pvalue.TaggedOutput(FOUND, events)
            yield self.ctx.drop(doc, REASON, detail)
            return
        text, spans = self._redact(doc.text, norm, found, hits)
        for si in by_set:
            events.append(((sets[si]["name"], doc.source, "redacted_documents"), 1))
            events.append(((sets[si]["name"], doc.source, "redacted_spans"), len(spans)))
        yield beam.pvalue.TaggedOutput(FOUND, events)
        if not _has_content(text):
            yield self.ctx.drop(doc, REASON, f"nothing left after removing {len(spans)} matched span(s)")
            return
        signals = {**(doc.signals or {}), "contamination.redacted_spans": float(len(spans)),
                   "contamination.redacted_chars": float(len(doc.text) - len(text))}
        yield doc.replace(text=text, signals=signals)

    def _redact(self, text: str, norm: str, found: dict, hits):
        ix = self.index
        if len(norm) == len(text):  # NFKC and case folding kept every character in place
            spans = ix.spans(hits, set(found))
            origin = None
        else:
            norm, origin = normalise_aligned(text)
            found, hits = ix.find(norm)
            spans = ix.spans(hits, set(found)) if found else []
        parts, pos = [], 0
        for s, e in spans:
            if origin is not None:
                s, e = int(origin[s]), int(origin[e - 1]) + 1
            parts.append(text[pos:s])
            pos = max(pos, e)
        parts.append(text[pos:])
        return "".join(parts), spans


class Decontaminate(beam.PTransform):
    """Documents -> StageResult; writes ``decontamination.json`` (per set: items,
    too-short items, items found per source, documents dropped or redacted)."""

    def __init__(self, cfg: Decontamination, output_dir: str, traditional: str = "convert", excerpt_chars: int = 200):
        super().__init__()
        self.cfg, self.output_dir, self.traditional = cfg, output_dir.rstrip("/"), traditional
        self.ctx = StageContext(STAGE, excerpt_chars)

    def expand(self, docs):
        index = prepared_index(self.cfg, self.traditional)
        path = f"{self.output_dir}/decontamination/index.npz"
        index.save(path)
        from ...progress import timed

        out = docs | "Match" >> beam.ParDo(timed(DecontaminateDoFn(path, self.ctx), STAGE)).with_outputs(
            "dropped", "failed", FOUND, main="kept")
        summary, report = index.summary, f"{self.output_dir}/decontamination.json"
        (out[FOUND]
         | "TotalsFound" >> beam.ParDo(BundleTotals(lambda events: events))
         | "SumFound" >> beam.CombinePerKey(sum)
         | "GatherFound" >> beam.combiners.ToList()
         | "WriteReport" >> beam.Map(lambda totals: _write_report(summary, totals, report)))
        return StageResult(out.kept, out["dropped"], out["failed"])


def report_of(summary: dict, totals: list) -> dict:
    """decontamination.json: the index summary and what was found, per set and source."""
    sets = json.loads(json.dumps(summary["sets"]))
    for info in sets.values():
        info.update({"found_items": {}, "found_items_total": 0, "documents": {}, "dropped_documents": {},
                     "redacted_documents": {}, "redacted_spans": {}})
    found_ids: dict[str, set] = {name: set() for name in sets}
    for key, n in totals:
        name, source, kind = key[0], key[1], key[2]
        info = sets[name]
        if kind == "item":
            info["found_items"][source] = info["found_items"].get(source, 0) + 1
            found_ids[name].add(key[3])
        else:
            info[kind][source] = info[kind].get(source, 0) + n
    for name, info in sets.items():
        info["found_items_total"] = len(found_ids[name])
        info["found_item_ids"] = sorted(found_ids[name])[:1000]
        for k in ("found_items", "documents", "dropped_documents", "redacted_documents", "redacted_spans"):
            info[k] = dict(sorted(info[k].items()))
    return {"settings": summary["settings"], "index_ngrams": summary.get("index_ngrams"),
            "index_bytes": summary.get("index_bytes"),
            "template_ngrams_left_out": summary.get("template_ngrams_left_out", 0),
            "items_only_template": summary.get("items_only_template", []), "sets": sets}


def _write_report(summary: dict, totals: list, path: str) -> None:
    from ...io.sinks import write_json

    write_json(report_of(summary, totals), path)


class DecontaminateStage(Stage):
    """Benchmark text (evaluation sets) found by n-gram overlap: dropped or cut out."""

    name, section = STAGE, "decontamination"
    header = "decontam"
    changes_text = True  # mode "remove" cuts the matched spans
    optional = True  # off unless sets are configured
    outputs = ("decontamination", "decontamination.json")
    in_units = False  # decontamination.json is written per job from that job's totals (and the index built per job)

    def why_off(self, cfg):
        return None if cfg.decontamination.sets else "no evaluation sets (decontamination.sets)"

    def check(self, cfg) -> list:
        if not cfg.decontamination.sets:
            return []
        try:  # every set read and indexed now: a bad file is an error before anything is written
            prepared_index(cfg.decontamination, cfg.coarse.traditional_chinese)
        except (ValueError, OSError) as exc:
            return [str(exc)]
        return []

    def runs(self, build: BuildContext) -> bool:
        return build.output_dir is not None and super().runs(build)  # its index is prepared in the output

    def transform(self, build: BuildContext) -> beam.PTransform:
        cfg = build.cfg
        return Decontaminate(cfg.decontamination, build.output_dir, cfg.coarse.traditional_chinese,
                             build.excerpt_chars)
